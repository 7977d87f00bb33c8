"""Appending events: durability contract, dedup, seqs, group commit, cancellation."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading

import pytest
import trio
import trio.testing
from structlog.testing import capture_logs

from actors.errors import StoreError
from store import CommitBatch, EventRecord, Journal, open_journal

from .conftest import event


async def test_append_assigns_increasing_seqs_and_reads_back(journal: Journal) -> None:
    result = await journal.append([event("a"), event("b"), event("c")])

    assert result.seqs == (1, 2, 3)
    assert result.new == (True, True, True)
    stored = await journal.read_events()
    assert [(e.seq, e.id, e.body) for e in stored] == [
        (1, "a", b"body:a"),
        (2, "b", b"body:b"),
        (3, "c", b"body:c"),
    ]
    assert stored[0].occurred_at == 1_700_000_000.0
    assert await journal.max_seq() == 3


async def test_duplicate_ids_are_reported_not_new_and_not_stored_twice(journal: Journal) -> None:
    await journal.append([event("a"), event("b")])

    result = await journal.append([event("b"), event("c"), event("c")])

    assert result.new == (False, True, False)
    # The repeat gets the seq of the row that is there; a skipped duplicate may leave a gap.
    assert result.seqs[0] == 2
    assert result.seqs[1] == result.seqs[2] > 2
    assert result.new_count == 1
    assert [e.id for e in await journal.read_events()] == ["a", "b", "c"]


async def test_read_events_filters_by_type_and_pages_by_seq(journal: Journal) -> None:
    await journal.append(
        [event("a", type="DealWon"), event("b"), event("c", type="DealWon"), event("d")]
    )

    assert [e.id for e in await journal.read_events(types=["DealWon"])] == ["a", "c"]
    assert [e.id for e in await journal.read_events(after_seq=1, limit=2)] == ["b", "c"]
    assert [e.id for e in await journal.get_events(["d", "zz", "a"])] == ["a", "d"]
    assert [e.id for e in await journal.get_events_by_seq([4, 2])] == ["b", "d"]


async def _hold_writer(journal: Journal, entered: threading.Event, release: threading.Event):
    """Queue a write that blocks the writer thread until ``release`` is set."""

    def block(_conn: sqlite3.Connection) -> None:
        entered.set()
        release.wait(timeout=10)

    await journal._writer.call(block)


async def test_concurrent_appends_share_one_commit(journal: Journal) -> None:
    entered, release = threading.Event(), threading.Event()
    before = journal.commit_stats()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_hold_writer, journal, entered, release)
        await trio.to_thread.run_sync(entered.wait)
        for index in range(50):
            nursery.start_soon(journal.append, [event(f"e{index}")])
        await trio.testing.wait_all_tasks_blocked()
        release.set()

    after = journal.commit_stats()
    # The blocker's transaction, then all 50 queued appends in a single one.
    assert after.commits - before.commits == 2
    assert after.requests - before.requests == 51
    assert after.events - before.events == 50
    assert after.mean_batch_size > 1
    assert len(await journal.read_events()) == 50


async def test_many_concurrent_appenders_need_fewer_commits_than_appends(
    journal: Journal,
) -> None:
    async def appender(index: int) -> None:
        for n in range(20):
            await journal.append([event(f"{index}-{n}")])

    async with trio.open_nursery() as nursery:
        for index in range(30):
            nursery.start_soon(appender, index)

    stats = journal.commit_stats()
    assert stats.events == 600
    assert stats.commits < 600
    assert await journal.max_seq() == 600


def _open_deleted_files() -> set[str]:
    """Files this process holds open that are already unlinked (SQLite's temp files)."""
    found: set[str] = set()
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # closed meanwhile
            target = os.readlink(f"/proc/self/fd/{fd}")
            if target.endswith(" (deleted)"):
                found.add(target)
    return found


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs Linux /proc")
async def test_a_merged_insert_over_many_index_pages_writes_no_temp_file(
    journal: Journal,
) -> None:
    def stream_id(stream: int, n: int) -> str:
        return f"psa:time_entry:{stream:04d}{n:09d}:v1"  # one ascending range per feed

    # 100 feeds of 50 events: the unique id index spans ~50-100 leaf pages.
    await journal.append([event(stream_id(s, n)) for n in range(50) for s in range(100)])
    entered, release = threading.Event(), threading.Event()
    during: list[set[str]] = []
    commits_before = journal.commit_stats().commits

    def probe(_conn: sqlite3.Connection) -> None:
        during.append(_open_deleted_files())  # inside the batch's transaction

    async with trio.open_nursery() as nursery:
        nursery.start_soon(_hold_writer, journal, entered, release)
        await trio.to_thread.run_sync(entered.wait)
        # The next event of each feed: the merged insert's statements modify one existing
        # index page per row or two, far more than 64 KiB of statement journal.
        nursery.start_soon(journal.append, [event(stream_id(s, 50)) for s in range(100)])
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(journal._writer.call, probe)
        await trio.testing.wait_all_tasks_blocked()
        before = _open_deleted_files()
        release.set()

    # The blocker's transaction, then the append and the probe in one: the append ran
    # first, and its statement journal stayed in memory (no temporary file was opened).
    assert journal.commit_stats().commits - commits_before == 2
    assert len(during) == 1
    assert during[0] - before == set()
    assert await journal.count_events(0) == 5_100


async def test_cancelled_waiter_still_gets_its_durable_result(journal: Journal) -> None:
    entered, release = threading.Event(), threading.Event()
    outcome: list[object] = []

    async def appender(scope_ready: trio.Event, scopes: list[trio.CancelScope]) -> None:
        with trio.CancelScope() as scope:
            scopes.append(scope)
            scope_ready.set()
            outcome.append(await journal.append([event("x")]))
            await trio.lowlevel.checkpoint()  # the deferred Cancelled lands here
            outcome.append("not reached")
        outcome.append(scope.cancelled_caught)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(_hold_writer, journal, entered, release)
        await trio.to_thread.run_sync(entered.wait)
        ready, scopes = trio.Event(), []
        nursery.start_soon(appender, ready, scopes)
        await ready.wait()
        await trio.testing.wait_all_tasks_blocked()
        scopes[0].cancel()  # while its append is queued behind the blocker
        await trio.testing.wait_all_tasks_blocked()
        release.set()

    assert outcome[0].new == (True,)
    assert outcome[1:] == [True]
    assert [e.id for e in await journal.read_events()] == ["x"]


async def test_cancelled_before_queueing_writes_nothing(journal: Journal) -> None:
    with trio.CancelScope() as scope:
        scope.cancel()
        await journal.append([event("x")])

    assert scope.cancelled_caught
    assert await journal.read_events() == []


async def test_a_failing_write_does_not_fail_its_batch_neighbours(journal: Journal) -> None:
    entered, release = threading.Event(), threading.Event()
    results: dict[str, object] = {}

    def broken(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO cursors (workflow, seq, updated_at) VALUES ('w', 1, 0)")
        conn.execute("INSERT INTO no_such_table VALUES (1)")

    async def run_broken() -> None:
        try:
            await journal._writer.call(broken)
        except StoreError as exc:
            results["broken"] = exc

    async def run_append(name: str) -> None:
        results[name] = await journal.append([event(name)])

    async with trio.open_nursery() as nursery:
        nursery.start_soon(_hold_writer, journal, entered, release)
        await trio.to_thread.run_sync(entered.wait)
        nursery.start_soon(run_append, "a")
        nursery.start_soon(run_broken)
        nursery.start_soon(run_append, "b")
        await trio.testing.wait_all_tasks_blocked()
        release.set()

    assert isinstance(results["broken"], StoreError)
    assert isinstance(results["broken"].__cause__, sqlite3.Error)
    assert "no_such_table" in str(results["broken"])
    assert {e.id for e in await journal.read_events()} == {"a", "b"}
    assert await journal.cursors() == {}  # the broken request's first insert rolled back


async def test_a_bad_record_fails_only_its_own_append(journal: Journal) -> None:
    entered, release = threading.Event(), threading.Event()
    bad = EventRecord(
        id="bad",
        type="T",
        key="k",
        source="s",
        correlation_id="c",
        occurred_at=0.0,
        recorded_at=0.0,
        body=object(),  # type: ignore[arg-type]
    )
    results: dict[str, object] = {}

    async def run(name: str, record: EventRecord) -> None:
        try:
            results[name] = await journal.append([record])
        except StoreError as exc:
            results[name] = exc

    async with trio.open_nursery() as nursery:
        nursery.start_soon(_hold_writer, journal, entered, release)
        await trio.to_thread.run_sync(entered.wait)
        nursery.start_soon(run, "good", event("good"))
        nursery.start_soon(run, "bad", bad)
        await trio.testing.wait_all_tasks_blocked()
        release.set()

    assert isinstance(results["bad"], StoreError)
    assert results["good"].new == (True,)
    assert [e.id for e in await journal.read_events()] == ["good"]


async def test_closed_journal_refuses_writes(journal_path: str) -> None:
    async with open_journal(journal_path) as journal:
        await journal.append([event("a")])

    with pytest.raises(StoreError, match="closed"):
        await journal.append([event("b")])
    with pytest.raises(StoreError, match="closed"):
        await journal.read_events()
    async with open_journal(journal_path) as reopened:
        assert [e.id for e in await reopened.read_events()] == ["a"]


# --- commit hook --------------------------------------------------------------------


async def test_on_commit_sees_each_commit_exactly_in_the_trio_thread(journal: Journal) -> None:
    seen: list[CommitBatch] = []
    threads: set[str] = set()

    def observe(batch: CommitBatch) -> None:
        trio.lowlevel.current_task()  # raises RuntimeError outside the trio run
        threads.add(threading.current_thread().name)
        seen.append(batch)

    journal.on_commit(observe)
    before = journal.commit_stats()
    entered, release = threading.Event(), threading.Event()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_hold_writer, journal, entered, release)
        await trio.to_thread.run_sync(entered.wait)
        for index in range(50):
            nursery.start_soon(journal.append, [event(f"e{index}"), event("dup")])
        await trio.testing.wait_all_tasks_blocked()
        release.set()
    await journal.append([event("last")])

    after = journal.commit_stats()
    assert [(b.requests, b.events) for b in seen] == [(1, 0), (50, 51), (1, 1)]
    assert sum(b.requests for b in seen) == after.requests - before.requests
    assert len(seen) == after.commits - before.commits
    assert all(b.duration_s >= 0 for b in seen)
    assert threads == {threading.main_thread().name}


async def test_on_commit_unregisters_and_drops_a_raising_callback(journal: Journal) -> None:
    kept: list[int] = []
    removed: list[int] = []

    def broken(_: CommitBatch) -> None:
        raise ValueError("metrics bug")

    journal.on_commit(lambda batch: kept.append(batch.requests))
    unregister = journal.on_commit(lambda batch: removed.append(batch.requests))
    journal.on_commit(broken)
    with capture_logs() as logs:
        await journal.append([event("a")])
        unregister()
        await journal.append([event("b")])

    assert kept == [1, 1]
    assert removed == [1]
    assert [entry["event"] for entry in logs] == ["journal.commit_hook_failed"]
    assert [e.id for e in await journal.read_events()] == ["a", "b"]
    unregister()  # twice is harmless


async def test_a_failed_transaction_is_not_reported_as_a_commit(journal: Journal) -> None:
    seen: list[CommitBatch] = []
    journal.on_commit(seen.append)

    def fail_commit(conn: sqlite3.Connection) -> None:
        conn.execute("ROLLBACK")  # the writer's transaction is gone: the batch fails

    with pytest.raises(StoreError):
        await journal._writer.call(fail_commit)
    await journal.append([event("a")])

    assert journal.commit_stats().failed_commits == 1
    assert [(b.requests, b.events) for b in seen] == [(1, 1)]
