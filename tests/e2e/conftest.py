"""Fixtures of the end-to-end tests: the mock clock the journal's writer thread needs."""

from __future__ import annotations

import pytest
from trio.testing import MockClock


@pytest.fixture
def autojump_clock() -> MockClock:
    """pytest-trio's ``autojump_clock``, but jumping only after 20 ms of real idleness.

    The journal writes on a thread: with ``autojump_threshold=0`` the clock would jump to
    the next deadline (a poll interval, a lease renewal, ``until_idle``'s deadline)
    whenever every task waits for a write, and virtual time would run ahead of the
    database (see tests/actors/workflows/conftest.py).
    """
    return MockClock(autojump_threshold=0.02)
