"""Fixtures of the journal tests: a fresh journal file per test and an event factory."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from store import EventRecord, Journal, open_journal


def event(event_id: str, *, key: str = "P-1", type: str = "TimeApproved") -> EventRecord:
    """A small event; the body carries the id so tests can check what was stored."""
    return EventRecord(
        id=event_id,
        type=type,
        key=key,
        source="psa",
        correlation_id=f"corr-{key}",
        occurred_at=1_700_000_000.0,
        recorded_at=1_700_000_001.5,
        body=b"body:" + event_id.encode(),
    )


@pytest.fixture
def journal_path(tmp_path) -> str:
    return str(tmp_path / "journal.db")


@pytest.fixture
async def journal(journal_path) -> AsyncIterator[Journal]:
    async with open_journal(journal_path) as opened:
        yield opened
