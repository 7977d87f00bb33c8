"""The journal: the async face of the store.

``async with open_journal(path) as journal:`` opens (creating and migrating if needed)
a SQLite file in WAL mode, starts its writer thread and read pool, and closes them on
exit. Every write is group-committed and durable when its ``await`` returns (see
:mod:`store.writer` for what cancellation does). Every time-dependent call takes
``now`` (epoch seconds) from the caller; the store never reads the clock for leases or
backoff, so tests are deterministic and leases survive a restart.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from decimal import Decimal
from functools import partial

import trio

from . import events, exceptions, maintenance, mapping, runs, steps
from .connection import BUSY_TIMEOUT_MS, Synchronous, connect
from .readers import ReadPool
from .records import (
    AppendResult,
    BackupReport,
    CommitBatch,
    CommitStats,
    EventRecord,
    ExceptionCount,
    ExceptionRecord,
    JournalStats,
    NewRun,
    RunRecord,
    StepRecord,
    VerifyReport,
)
from .schema import migrate
from .writer import CheckpointPolicy, Writer


class Journal:
    """An open journal. Obtain one with :func:`open_journal`; do not construct directly.

    It belongs to the trio run that opened it: the writer thread wakes waiters through
    that run's token. Share it between tasks freely, never between trio runs.
    """

    def __init__(self, path: str, writer: Writer, readers: ReadPool) -> None:
        self._path = path
        self._writer = writer
        self._readers = readers

    @property
    def path(self) -> str:
        """The journal file."""
        return self._path

    # --- events ----------------------------------------------------------------------

    async def append(self, records: Sequence[EventRecord]) -> AppendResult:
        """Append events, skipping ids already present; durable when it returns."""
        if not records:
            await trio.lowlevel.checkpoint()
            return AppendResult((), ())
        return await self._writer.append(list(records))

    async def read_events(
        self,
        after_seq: int = 0,
        limit: int = 1_000,
        types: Sequence[str] | None = None,
        *,
        key: str | None = None,
        since: float | None = None,
    ) -> list[EventRecord]:
        """Events after ``after_seq`` in seq order: optionally only some types, one key,
        or those recorded (``recorded_at``) at or after ``since``. ``key`` reads through
        its index; ``since`` skips the older events through the recorded_at index."""
        return await self._readers.run(events.read_after, after_seq, limit, types, key, since)

    async def count_events(
        self, after_seq: int, types: Sequence[str] | None = None, *, key: str | None = None
    ) -> int:
        """How many events come after ``after_seq`` (optionally of some types, one key),
        exactly: in the key index with ``key``, else over the seq range past
        ``after_seq`` only: cheap while a cursor is near the end of the journal."""
        return await self._readers.run(events.count_after, after_seq, types, key)

    async def get_events(self, ids: Sequence[str]) -> list[EventRecord]:
        """Events by envelope id, in seq order; unknown ids are left out."""
        return await self._readers.run(events.by_ids, ids)

    async def get_events_by_seq(self, seqs: Sequence[int]) -> list[EventRecord]:
        """Events by seq (a run's triggers), in seq order."""
        return await self._readers.run(events.by_seqs, seqs)

    async def max_seq(self) -> int:
        """The highest seq handed out so far (0 when empty)."""
        return await self._readers.run(events.max_seq)

    # --- cursors ---------------------------------------------------------------------

    async def get_cursor(self, workflow: str) -> int:
        """The last seq the dispatcher handled for ``workflow`` (0 if none)."""
        return await self._readers.run(runs.get_cursor, workflow)

    async def cursors(self) -> dict[str, int]:
        """Every workflow's cursor."""
        return await self._readers.run(runs.all_cursors)

    async def set_cursor(self, workflow: str, seq: int, now: float) -> None:
        """Set a cursor explicitly (also backwards, e.g. to replay)."""
        await self._writer.call(runs.set_cursor, workflow, seq, now)

    # --- runs ------------------------------------------------------------------------

    async def create_runs(self, new_runs: Sequence[NewRun], now: float) -> list[int | None]:
        """Create runs; each result is the new run's id, or None if it already existed
        (one run per workflow and triggering event, replays excepted)."""
        return await self._writer.call(runs.create, list(new_runs), now)

    async def create_runs_and_advance(
        self, workflow: str, new_runs: Sequence[NewRun], cursor_seq: int, now: float
    ) -> list[int | None]:
        """Create runs and move ``workflow``'s cursor to ``cursor_seq`` atomically."""
        return await self._writer.call(
            runs.create_and_advance, workflow, list(new_runs), cursor_seq, now
        )

    async def claim_runs(
        self,
        owner: str,
        now: float,
        lease_s: float,
        limit: int,
        workflow: str | None = None,
    ) -> list[RunRecord]:
        """Lease up to ``limit`` due runs to ``owner``: pending or retry_wait runs whose
        ``next_attempt_at`` has passed, and running runs whose lease has expired. A run
        is never handed out while an earlier run of its workflow and key is unfinished.
        ``owner`` must be unique per process incarnation (e.g. host:pid:random)."""
        return await self._writer.call(runs.claim, owner, now, lease_s, limit, workflow)

    async def renew_lease(self, run_id: int, owner: str, now: float, lease_s: float) -> float:
        """Extend an owned lease to ``now + lease_s``; LeaseLost if no longer owned."""
        return await self._writer.call(runs.renew, run_id, owner, now, lease_s)

    async def complete_run(self, run_id: int, owner: str, now: float) -> None:
        """Finish an owned run; LeaseLost if another claimer has taken it."""
        await self._writer.call(runs.complete, run_id, owner, now)

    async def fail_run(
        self, run_id: int, owner: str, now: float, next_attempt_at: float, error: str
    ) -> None:
        """Release an owned run for a retry at ``next_attempt_at`` (backoff chosen by the
        caller); LeaseLost if it is no longer owned."""
        await self._writer.call(runs.fail_retryable, run_id, owner, now, next_attempt_at, error)

    async def park_run(
        self,
        run_id: int,
        owner: str,
        now: float,
        *,
        category: str,
        exception_owner: str,
        message: str,
        amount: Decimal | None = None,
        currency: str | None = None,
        detail: bytes = b"",
    ) -> ExceptionRecord:
        """Park an owned run as ``waiting`` and open its exception in one transaction."""
        # The writer calls fn(conn, *args); partial carries the keyword arguments.
        return await self._writer.call(
            partial(
                exceptions.park_run,
                category=category,
                owner=exception_owner,
                amount=amount,
                currency=currency,
                message=message,
                detail=detail,
                now=now,
            ),
            run_id,
            owner,
        )

    async def cancel_run(self, run_id: int, now: float, reason: str) -> None:
        """Cancel an unfinished run that is not running (an operator's decision)."""
        await self._writer.call(runs.cancel, run_id, now, reason)

    async def expire_leases(self, now: float) -> int:
        """Return runs with expired leases to ``pending``; how many there were."""
        return await self._writer.call(runs.expire_leases, now)

    async def get_run(self, run_id: int) -> RunRecord | None:
        """One run by id."""
        return await self._readers.run(runs.get, run_id)

    async def list_runs(
        self,
        *,
        status: str | None = None,
        workflow: str | None = None,
        key: str | None = None,
        limit: int = 1_000,
        after_id: int | None = None,
    ) -> list[RunRecord]:
        """Runs matching the filters, oldest first; page with ``after_id`` (the last id
        of the previous page)."""
        return await self._readers.run(_select_runs, status, workflow, key, limit, after_id)

    async def count_runs(
        self, *, workflow: str | None = None, statuses: Sequence[str] | None = None
    ) -> dict[str, int]:
        """Runs per status, exact: every status in ``statuses`` (all six if None) is a
        key, zeros included; ``workflow`` narrows to one workflow."""
        return await self._readers.run(runs.count_by_status, workflow, statuses)

    async def runs_for_triggers(self, workflow: str, seqs: Sequence[int]) -> dict[int, list[int]]:
        """Trigger seq -> ids of ``workflow``'s runs over it (replays included), oldest
        first. A run over a group of events is listed under each of its seqs; seqs with
        no run of ``workflow`` are left out."""
        return await self._readers.run(runs.for_triggers, workflow, seqs)

    # --- steps -----------------------------------------------------------------------

    async def record_step(
        self,
        run_id: int,
        name: str,
        result: bytes,
        now: float,
        *,
        status: str = "completed",
        owner: str | None = None,
    ) -> StepRecord:
        """Memoise a step's result, durable on return. With ``owner``, only while that
        owner holds the run (LeaseLost otherwise). A completed step is never replaced:
        the stored record is returned."""
        return await self._writer.call(steps.record, run_id, name, status, result, now, owner)

    async def get_steps(self, run_id: int) -> dict[str, StepRecord]:
        """A run's recorded steps by name."""
        return await self._readers.run(steps.for_run, run_id)

    # --- exceptions ------------------------------------------------------------------

    async def open_exception(
        self,
        *,
        workflow: str,
        category: str,
        owner: str,
        message: str,
        correlation_id: str,
        now: float,
        run_id: int | None = None,
        amount: Decimal | None = None,
        currency: str | None = None,
        detail: bytes = b"",
    ) -> ExceptionRecord:
        """Open an exception not tied to a leased run (e.g. a reconcile mismatch)."""
        return await self._writer.call(
            partial(
                exceptions.open_,
                run_id=run_id,
                workflow=workflow,
                category=category,
                owner=owner,
                amount=amount,
                currency=currency,
                message=message,
                detail=detail,
                correlation_id=correlation_id,
                now=now,
            )
        )

    async def list_exceptions(
        self,
        *,
        status: str | None = "open",
        workflow: str | None = None,
        category: str | None = None,
        owner: str | None = None,
        older_than: float | None = None,
        limit: int = 1_000,
    ) -> list[ExceptionRecord]:
        """Exceptions matching the filters, oldest first (``status=None``: any)."""
        return await self._readers.run(
            _select_exceptions, status, workflow, category, owner, older_than, limit
        )

    async def count_exceptions(self, *, status: str | None = "open") -> list[ExceptionCount]:
        """Exceptions of ``status`` (None: any) per workflow and category, sorted by
        both: how many, the oldest ``opened_at``, and the money at risk per currency
        (exact Decimal sums of the absolute amounts). Uncapped, one index pass."""
        return await self._readers.run(exceptions.counts, status)

    async def get_exception(self, exception_id: int) -> ExceptionRecord | None:
        """One exception by id."""
        return await self._readers.run(exceptions.get, exception_id)

    async def resolve_exception(
        self, exception_id: int, by: str, resolution: str, now: float
    ) -> ExceptionRecord:
        """Close an open exception as handled; a run parked on it is cancelled."""
        return await self._writer.call(exceptions.resolve, exception_id, by, resolution, now)

    async def retry_exception(
        self, exception_id: int, by: str, note: str, now: float
    ) -> ExceptionRecord:
        """Close an open exception for retry; a run parked on it is claimable at ``now``."""
        return await self._writer.call(exceptions.retry, exception_id, by, note, now)

    async def assign_exception(self, exception_id: int, owner: str, now: float) -> ExceptionRecord:
        """Hand an exception to another owner."""
        return await self._writer.call(exceptions.assign, exception_id, owner, now)

    # --- id map and watermarks -------------------------------------------------------

    async def map_id(
        self, kind: str, canonical_id: str, system: str, system_id: str, now: float
    ) -> None:
        """Record canonical ⇄ system id; idempotent, StoreError on a conflicting pair."""
        await self._writer.call(mapping.map_id, kind, canonical_id, system, system_id, now)

    async def system_id(self, kind: str, canonical_id: str, system: str) -> str | None:
        """The system's id for a canonical entity, if mapped."""
        return await self._readers.run(mapping.system_id, kind, canonical_id, system)

    async def canonical_id(self, kind: str, system: str, system_id: str) -> str | None:
        """The canonical id of a system's record, if mapped."""
        return await self._readers.run(mapping.canonical_id, kind, system, system_id)

    async def ids_of(self, kind: str, canonical_id: str) -> dict[str, str]:
        """Every system's id for a canonical entity."""
        return await self._readers.run(mapping.ids_of, kind, canonical_id)

    async def set_watermark(self, system: str, feed: str, value: str, now: float) -> None:
        """Store a change feed's position."""
        await self._writer.call(mapping.set_watermark, system, feed, value, now)

    async def get_watermark(self, system: str, feed: str) -> str | None:
        """A change feed's stored position, if any."""
        return await self._readers.run(mapping.get_watermark, system, feed)

    # --- operations ------------------------------------------------------------------

    def commit_stats(self) -> CommitStats:
        """Group-commit counters since open (commits, requests, mean batch size…)."""
        return self._writer.stats()

    def on_commit(self, callback: Callable[[CommitBatch], None]) -> Callable[[], None]:
        """Call ``callback(batch)`` once per successful commit from now on, in this
        journal's trio run (never on the writer thread), right after that commit's
        waiters are woken; returns a function that unregisters it.

        It runs on the trio thread's hot path: keep it cheap and synchronous (observe a
        histogram, set an Event). One that raises is unregistered and logged.
        """
        return self._writer.add_commit_hook(callback)

    async def backup(self, destination: str) -> BackupReport:
        """Online backup to ``destination`` (must not exist) while writes continue."""
        return await self._readers.run(
            maintenance.backup, self._path, destination, transaction=False
        )

    async def verify(self) -> VerifyReport:
        """integrity_check plus the journal's invariants."""
        return await self._readers.run(maintenance.verify, self._path)

    async def stats(self) -> JournalStats:
        """Counts and sizes."""
        return await self._readers.run(maintenance.stats, self._path)


def _select_runs(
    conn: sqlite3.Connection,
    status: str | None,
    workflow: str | None,
    key: str | None,
    limit: int,
    after_id: int | None,
) -> list[RunRecord]:
    return runs.select(
        conn, status=status, workflow=workflow, key=key, limit=limit, after_id=after_id
    )


def _select_exceptions(
    conn: sqlite3.Connection,
    status: str | None,
    workflow: str | None,
    category: str | None,
    owner: str | None,
    older_than: float | None,
    limit: int,
) -> list[ExceptionRecord]:
    return exceptions.select(
        conn,
        status=status,
        workflow=workflow,
        category=category,
        owner=owner,
        older_than=older_than,
        limit=limit,
    )


@asynccontextmanager
async def open_journal(
    path: str | os.PathLike[str],
    *,
    synchronous: Synchronous = "FULL",
    busy_timeout_ms: int = BUSY_TIMEOUT_MS,
    readers: int = 2,
    checkpoint: CheckpointPolicy | None = None,
) -> AsyncIterator[Journal]:
    """Open (create, migrate) the journal at ``path`` for the duration of the block.

    Raises SchemaVersionError if the file was written by a newer pssync, StoreError if it
    cannot be opened. On exit, queued writes finish, then the connections close.
    """
    path = os.fspath(path)

    def _open() -> sqlite3.Connection:
        conn = connect(path, synchronous=synchronous, busy_timeout_ms=busy_timeout_ms)
        try:
            # created_at in meta is informational, so reading the clock here is harmless.
            migrate(conn, path, now=time.time())
        except BaseException:
            conn.close()
            raise
        return conn

    conn = await trio.to_thread.run_sync(_open)
    writer = Writer(
        conn,
        path,
        busy_timeout_ms=busy_timeout_ms,
        checkpoint=checkpoint or CheckpointPolicy(),
    )
    pool = ReadPool(path, size=readers, synchronous=synchronous, busy_timeout_ms=busy_timeout_ms)
    try:
        yield Journal(path, writer, pool)
    finally:
        await writer.aclose()
        pool.close()
