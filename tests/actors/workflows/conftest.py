"""Fixtures of the workflow engine tests: a real journal file and the harness around it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from trio.testing import MockClock

from store import Journal, open_journal

from .harness import Harness


@pytest.fixture
def autojump_clock() -> MockClock:
    """pytest-trio's ``autojump_clock``, but jumping only after 20 ms of real idleness.

    The journal writes on a thread. With ``autojump_threshold=0`` the clock jumps to the
    next deadline (a lease renewal, a heartbeat, a test's ``fail_after``) whenever every
    task waits for a write, so virtual time runs ahead while the database works and
    timings (and deadlines) become meaningless. A write takes well under a millisecond
    (synchronous=NORMAL below); 20 ms lets it finish before the clock moves.
    """
    return MockClock(autojump_threshold=0.02)


@pytest.fixture
async def journal(tmp_path) -> AsyncIterator[Journal]:
    # NORMAL: no fsync per commit; durability is the store's tests' business, speed ours.
    async with open_journal(tmp_path / "journal.db", synchronous="NORMAL") as opened:
        yield opened


@pytest.fixture
def harness(journal: Journal) -> Harness:
    return Harness(journal)
