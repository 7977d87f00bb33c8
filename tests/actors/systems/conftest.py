"""Fixtures of the system actor tests: a real journal and a mock clock that suits it.

The journal does its work on a thread. pytest-trio's ``autojump_clock`` jumps the moment
every task is blocked, which includes waiting for that thread, so virtual time would race
ahead by whole heartbeat periods during every append. ``journal_clock`` (taken instead of
``autojump_clock`` by tests that use the journal) still autojumps, but only
after 20 ms of real idleness, which an append to a local file never takes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from trio.testing import MockClock

from store import Journal, open_journal


@pytest.fixture
def journal_clock() -> MockClock:
    return MockClock(autojump_threshold=0.02)


@pytest.fixture
async def journal(tmp_path) -> AsyncIterator[Journal]:
    async with open_journal(tmp_path / "journal.db", synchronous="NORMAL") as opened:
        yield opened
