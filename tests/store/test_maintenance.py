"""Backup, verify, stats (online and offline), and WAL checkpointing under readers."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from decimal import Decimal

import pytest
import trio

from actors.errors import StoreError
from store import (
    CheckpointPolicy,
    EventRecord,
    Journal,
    NewRun,
    backup_journal,
    journal_stats,
    open_journal,
    verify_journal,
)

from .conftest import event

T0 = 1_700_000_000.0


def size(path: str) -> int:
    """A file's size (a cheap stat; kept out of the async tests for ruff's ASYNC240)."""
    return os.path.getsize(path)


async def populate(journal: Journal) -> None:
    await journal.append(
        [event("a", type="DealWon"), event("b"), event("c"), event("d", key="P-2")]
    )
    await journal.create_runs_and_advance(
        "w",
        [
            NewRun(workflow="w", key="P-1", trigger_seqs=(2, 3), correlation_id="c"),
            NewRun(workflow="w", key="P-2", trigger_seqs=(4,), correlation_id="c"),
        ],
        4,
        now=T0,
    )
    [run, _] = await journal.claim_runs("x", now=T0, lease_s=60, limit=5)
    await journal.park_run(
        run.id,
        "x",
        T0,
        category="c",
        exception_owner="o",
        message="m",
        amount=Decimal("10.00"),
        currency="EUR",
    )
    await journal.record_step(2, "s", b"r", now=T0)
    await journal.map_id("account", "a1", "erp", "E1", now=T0)
    await journal.set_watermark("crm", "deals", "w1", now=T0)


async def test_stats_counts_are_right(journal: Journal) -> None:
    await populate(journal)

    stats = await journal.stats()

    assert stats.tables == {
        "events": 4,
        "runs": 2,
        "run_triggers": 3,
        "steps": 1,
        "cursors": 1,
        "watermarks": 1,
        "id_map": 1,
        "exceptions": 1,
    }
    assert stats.events_by_type == {"DealWon": 1, "TimeApproved": 3}
    assert stats.runs_by_status == {"running": 1, "waiting": 1}
    assert stats.exceptions_by_status == {"open": 1}
    assert stats.max_seq == 4
    assert stats.page_count > 0
    assert stats.page_size == 4096
    assert stats.wal_bytes > 0
    assert stats.file_bytes == size(journal.path)


async def test_verify_passes_on_a_healthy_journal(journal: Journal) -> None:
    await populate(journal)

    report = await journal.verify()

    assert report.integrity == ("ok",)
    assert report.problems == ()
    assert report.ok
    assert "one_running_run_per_key" in report.checks


@pytest.mark.parametrize(
    ("planted", "check"),
    [
        ("UPDATE cursors SET seq = 99", "cursor_within_events"),
        ("UPDATE runs SET lease_owner = NULL WHERE status = 'running'", "running_runs_have_lease"),
        ("UPDATE exceptions SET status = 'resolved'", "waiting_runs_have_open_exception"),
        ("DELETE FROM events WHERE seq = 4", "run_triggers_exist"),
        ("UPDATE exceptions SET amount = '12,50'", "exception_amounts_are_decimal"),
        (
            "UPDATE runs SET status = 'running', lease_owner = 'y', lease_expires_at = 1,"
            " key = 'P-1'",
            "one_running_run_per_key",
        ),
    ],
)
async def test_verify_detects_a_planted_inconsistency(
    journal_path: str, planted: str, check: str
) -> None:
    async with open_journal(journal_path) as journal:
        await populate(journal)
    conn = sqlite3.connect(journal_path)  # foreign keys off: plant what the store forbids
    conn.execute(planted)
    conn.commit()
    conn.close()

    report = await verify_journal(journal_path)

    assert not report.ok
    assert check in {problem.check for problem in report.problems}


async def test_backup_is_a_valid_consistent_copy(journal: Journal, tmp_path) -> None:
    await populate(journal)
    destination = str(tmp_path / "backup.db")

    report = await journal.backup(destination)
    await journal.append([event("after-backup")])

    assert report.pages > 0
    assert report.bytes == size(destination)
    assert (await verify_journal(destination)).ok
    async with open_journal(destination) as copy:
        assert [e.id for e in await copy.read_events()] == ["a", "b", "c", "d"]
        assert (await copy.stats()).runs_by_status == {"running": 1, "waiting": 1}
        await copy.append([event("copy-accepts-writes")])
    with pytest.raises(StoreError, match="already exists"):
        await journal.backup(destination)


async def test_offline_operations_on_a_closed_file(journal_path: str, tmp_path) -> None:
    async with open_journal(journal_path) as journal:
        await populate(journal)

    stats = await journal_stats(journal_path)
    report = await verify_journal(journal_path)
    backup = await backup_journal(journal_path, str(tmp_path / "copy.db"))

    assert stats.tables["events"] == 4
    assert report.ok
    assert (await journal_stats(backup.destination)).tables == stats.tables
    with pytest.raises(StoreError, match="no such journal"):
        await journal_stats(str(tmp_path / "missing.db"))


class OverlappingReaders:
    """Two connections taking turns so that a read transaction is always open: the
    pattern that starves PASSIVE checkpoints."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.stop = threading.Event()
        self.reads = 0

    def run(self) -> None:
        first = sqlite3.connect(self.path, isolation_level=None)
        second = sqlite3.connect(self.path, isolation_level=None)
        older, newer = first, second
        older.execute("BEGIN")
        older.execute("SELECT COUNT(*) FROM events").fetchone()
        while not self.stop.is_set():
            newer.execute("BEGIN")
            newer.execute("SELECT COUNT(*) FROM events").fetchone()
            older.execute("COMMIT")
            self.reads += 1
            older, newer = newer, older
            time.sleep(0.0005)  # pace the load generator; nothing waits on it
        older.execute("COMMIT")
        first.close()
        second.close()


@pytest.mark.parametrize("forced_checkpoint", [True, False])
async def test_wal_stays_bounded_while_readers_never_stop(
    journal_path: str, forced_checkpoint: bool
) -> None:
    limit = 512 * 1024
    policy = CheckpointPolicy(
        passive_every=1,
        truncate_bytes=limit if forced_checkpoint else 1 << 40,
        wait_ms=500,
        retry_s=0.0,
    )
    body = os.urandom(1024)
    largest = 0
    async with open_journal(journal_path, checkpoint=policy) as journal:
        await journal.append([event("first")])
        readers = OverlappingReaders(journal_path)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(trio.to_thread.run_sync, readers.run)
            for batch in range(60):
                await journal.append(
                    [
                        EventRecord(
                            id=f"{batch}-{n}",
                            type="T",
                            key="k",
                            source="s",
                            correlation_id="c",
                            occurred_at=0.0,
                            recorded_at=0.0,
                            body=body,
                        )
                        for n in range(50)
                    ]
                )
                largest = max(largest, size(journal_path + "-wal"))
            readers.stop.set()
        truncations = journal.commit_stats().truncations

    assert readers.reads > 0
    if forced_checkpoint:
        # One commit (~70 frames of 4 KiB) may land on top of the limit before it is cut.
        assert largest < limit + 512 * 1024
        assert truncations > 0
    else:
        # The control: without the forced checkpoint the same load starves the WAL.
        assert largest > 3 * limit
