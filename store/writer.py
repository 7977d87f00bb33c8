"""The writer thread: one connection, group commit, and the hand-back to trio.

Every write of an open journal is a request on one queue. The writer thread takes the
first request, drains whatever else is already queued, runs them all inside one
``BEGIN IMMEDIATE`` … ``COMMIT`` and then wakes every waiter of the batch with a single
``run_sync_soon`` into the trio run: one thread hop per batch, one reschedule per
waiter. The event appends of a batch are merged into a few multi-row INSERTs; other
writes run each in its own SAVEPOINT, so one failing request does not fail its
neighbours (if the merged insert fails, the batch is replayed request by request).

Commit hooks (``Journal.on_commit``) see each successful commit's batch. They are called
from that same ``run_sync_soon`` callback, right after the waiters are rescheduled: in
the trio thread, never on the writer thread, and at no cost to the commit itself.

Failure: a write that raises StoreError did not commit. The one ambiguous case is an
I/O error inside COMMIT itself (e.g. a failed fsync): SQLite rolls back, but a restart
may still recover the frames it wrote, so treat the outcome as unknown. The writes that
matter are safe to retry: events dedupe by id, runs by workflow and trigger, steps by
name; id map, watermarks and cursors are idempotent.

Cancellation: a caller cancelled before its request is queued raises Cancelled and
writes nothing. Once a request is queued, its caller cannot be cancelled out of the wait.
The write commits (or fails) exactly as if nobody had cancelled, the caller gets its
result, and trio delivers the pending ``Cancelled`` at the caller's next checkpoint. A
write therefore never half-happens and the caller never has to guess whether it did.
"""

from __future__ import annotations

import contextlib
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import Any

import structlog
import trio

from actors.errors import StoreError

from . import events
from .records import AppendResult, CommitBatch, CommitStats, EventRecord

CommitHook = Callable[[CommitBatch], None]

log = structlog.get_logger("store.writer")

MAX_BATCH_REQUESTS = 1_000
MAX_BATCH_EVENTS = 20_000
"""Upper bounds of one transaction (requests, appended events), so that a burst of big
appends is committed in steps instead of one huge transaction and one long wait."""


class CheckpointPolicy:
    """When the writer checkpoints the WAL.

    SQLite's automatic checkpoint runs inside COMMIT, so every waiter of that batch
    would wait for it. The writer turns it off and instead runs a PASSIVE checkpoint
    itself every ``passive_every`` commits, after it has woken the batch's waiters (the
    next batch queues up meanwhile and is group-committed).

    Continuous overlapping readers starve PASSIVE checkpoints: one cannot pass the oldest
    reader's snapshot, the WAL is never reset and grows without bound. So when the WAL
    file exceeds ``truncate_bytes`` the writer runs a TRUNCATE checkpoint that waits up
    to ``wait_ms`` for readers to move off the WAL. If readers still hold it, the writer
    tries again only after ``retry_s`` (monotonic housekeeping time, never a lease
    clock) so that it does not stall every commit.
    """

    def __init__(
        self,
        *,
        passive_every: int = 16,
        truncate_bytes: int = 64 * 1024 * 1024,
        wait_ms: int = 1_000,
        retry_s: float = 1.0,
    ) -> None:
        self.passive_every = passive_every
        self.truncate_bytes = truncate_bytes
        self.wait_ms = wait_ms
        self.retry_s = retry_s


class _Request:
    """One queued write: an append (``records``) or a function run in the transaction."""

    __slots__ = ("args", "error", "fn", "records", "result", "task")

    def __init__(
        self,
        task: trio.lowlevel.Task,
        records: list[EventRecord] | None,
        fn: Callable[..., Any] | None,
        args: tuple[Any, ...],
    ) -> None:
        self.task = task
        self.records = records
        self.fn = fn
        self.args = args
        self.result: Any = None
        self.error: BaseException | None = None


_STOP = object()


class Writer:
    """Owns the write connection on a dedicated thread; see the module docstring."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        path: str,
        *,
        busy_timeout_ms: int,
        checkpoint: CheckpointPolicy,
    ) -> None:
        self._conn = conn
        self._path = path
        self._wal_path = path + "-wal"
        self._busy_timeout_ms = busy_timeout_ms
        self._policy = checkpoint
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._token = trio.lowlevel.current_trio_token()
        self._closed = False
        # Guards the hand-over between submitters and a dying thread: after ``_dead`` is
        # set under the lock, nothing more is queued, so nothing waits forever.
        self._lock = threading.Lock()
        self._dead = False
        self._broken: BaseException | None = None
        self._next_forced_checkpoint = 0.0
        self._commits = 0
        self._requests = 0
        self._events = 0
        self._failed_commits = 0
        self._checkpoints = 0
        self._truncations = 0
        self._events_in_batch = 0
        # Touched only in the trio thread: registered there, called from _deliver.
        self._hooks: list[CommitHook] = []
        conn.execute("PRAGMA wal_autocheckpoint = 0")
        # The statement journal of a multi-row INSERT (and of each request's SAVEPOINT)
        # holds the old content of every existing page the statement modifies. Past 64 KiB
        # SQLite moves it to a temporary file on disk: with ids spread over the unique
        # index (a feed per appender), every batch created, filled with ~0.5 MB and deleted
        # such a file, which cost as much as the inserts themselves (~20 % of append
        # throughput). In memory it is a copy, freed when the statement or savepoint ends,
        # bounded by the pages one statement or one request modifies. (The writer's own
        # sorts and temp b-trees, all over bounded result sets, stay in memory too.)
        conn.execute("PRAGMA temp_store = MEMORY")
        self._commits_since_checkpoint = 0
        self._thread = threading.Thread(
            target=self._run, name=f"journal-writer:{os.path.basename(path)}", daemon=True
        )
        self._thread.start()

    # --- trio side -------------------------------------------------------------------

    async def append(self, records: list[EventRecord]) -> AppendResult:
        """Queue an append and wait until it is durable."""
        return await self._submit(records, None, ())

    async def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run ``fn(conn, *args)`` inside a group-committed transaction; wait until durable."""
        return await self._submit(None, fn, args)

    async def _submit(
        self,
        records: list[EventRecord] | None,
        fn: Callable[..., Any] | None,
        args: tuple[Any, ...],
    ) -> Any:
        # Cancelled before anything is queued: nothing is written.
        await trio.lowlevel.checkpoint_if_cancelled()
        request = _Request(trio.lowlevel.current_task(), records, fn, args)
        with self._lock:
            if self._closed or self._dead:
                if self._broken is not None:
                    raise StoreError(f"{self._path}: journal writer died") from self._broken
                raise StoreError(f"{self._path}: journal is closed")
            self._queue.put(request)
        # Abort.FAILED: a cancelled caller keeps waiting for the writer's verdict.
        await trio.lowlevel.wait_task_rescheduled(_refuse_abort)
        if request.error is not None:
            raise request.error
        return request.result

    def stats(self) -> CommitStats:
        """Group-commit counters since the journal was opened."""
        return CommitStats(
            commits=self._commits,
            requests=self._requests,
            events=self._events,
            failed_commits=self._failed_commits,
            checkpoints=self._checkpoints,
            truncations=self._truncations,
            mean_batch_size=self._requests / self._commits if self._commits else 0.0,
        )

    def add_commit_hook(self, hook: CommitHook) -> Callable[[], None]:
        """Call ``hook`` after every successful commit; return what unregisters it."""
        self._hooks.append(hook)

        def remove() -> None:
            with contextlib.suppress(ValueError):  # already removed
                self._hooks.remove(hook)

        return remove

    def _deliver(self, batch: list[_Request], committed: CommitBatch | None) -> None:
        """Wake the batch's waiters, then tell the commit hooks (in the trio thread)."""
        reschedule = trio.lowlevel.reschedule
        for request in batch:
            reschedule(request.task)
        if committed is None:
            return
        for hook in tuple(self._hooks):
            try:
                hook(committed)
            except Exception:
                # Raising here would crash the trio run: drop the hook, say so once.
                with contextlib.suppress(ValueError):
                    self._hooks.remove(hook)
                log.exception("journal.commit_hook_failed", path=self._path, hook=repr(hook))

    async def aclose(self) -> None:
        """Finish every queued request, stop the thread, close the connection."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._queue.put(_STOP)
        # The thread ends within one batch; waiting must not be abandoned mid-write.
        await trio.to_thread.run_sync(self._thread.join)
        self._conn.close()

    # --- writer thread ---------------------------------------------------------------

    def _run(self) -> None:
        try:
            stopping = False
            while not stopping:
                first = self._queue.get()
                if first is _STOP:
                    break
                batch = [first]
                event_count = len(first.records) if first.records is not None else 0
                while len(batch) < MAX_BATCH_REQUESTS and event_count < MAX_BATCH_EVENTS:
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if item is _STOP:
                        stopping = True
                        break
                    batch.append(item)
                    if item.records is not None:
                        event_count += len(item.records)
                committed: CommitBatch | None = None
                try:
                    committed = self._commit(batch)
                except Exception as exc:
                    self._fail_batch(batch, "commit", exc)  # a bug: fail, never strand
                    raise
                finally:
                    self._wake(batch, committed)
                self._maybe_checkpoint()
        except Exception as exc:
            # A bug in the writer must not leave callers waiting forever.
            self._broken = exc
        self._fail_remaining()

    def _commit(self, batch: list[_Request]) -> CommitBatch | None:
        """Run the batch in one transaction; what was committed, or None if it failed."""
        conn = self._conn
        self._events_in_batch = 0
        started = time.perf_counter()
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            self._fail_batch(batch, "begin", exc)
            return None
        try:
            appends = [r for r in batch if r.records is not None]
            if appends and not self._apply_appends(appends):
                # Slow path: isolate the request that broke the merged insert.
                conn.execute("ROLLBACK")
                conn.execute("BEGIN IMMEDIATE")
                self._events_in_batch = 0
                for request in appends:
                    self._apply_call(request, append=True)
            for request in batch:
                if request.fn is not None:
                    self._apply_call(request)
            conn.execute("COMMIT")
        except Exception as exc:
            if conn.in_transaction:
                # The transaction is gone either way; the batch fails below.
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            self._fail_batch(batch, "commit", exc)
            return None
        duration_s = time.perf_counter() - started
        self._commits += 1
        self._requests += len(batch)
        self._events += self._events_in_batch
        return CommitBatch(requests=len(batch), events=self._events_in_batch, duration_s=duration_s)

    def _apply_appends(self, appends: list[_Request]) -> bool:
        """Insert every append of the batch with one merged statement sequence.

        Returns False if the merged insert failed; the caller then rolls the whole
        transaction back and replays the batch request by request, so the common path
        pays for no savepoint.
        """
        records = [r for request in appends for r in request.records]  # type: ignore[union-attr]
        try:
            seqs, new = events.insert_batch(self._conn, records)
        except Exception:
            return False
        start = 0
        for request in appends:
            end = start + len(request.records)  # type: ignore[arg-type]
            request.result = AppendResult(tuple(seqs[start:end]), tuple(new[start:end]))
            start = end
        self._events_in_batch = sum(new)
        return True

    def _apply_call(self, request: _Request, *, append: bool = False) -> None:
        conn = self._conn
        conn.execute("SAVEPOINT request")
        try:
            if append:
                seqs, new = events.insert_batch(conn, request.records)  # type: ignore[arg-type]
                request.result = AppendResult(tuple(seqs), tuple(new))
                self._events_in_batch += sum(new)
            else:
                request.result = request.fn(conn, *request.args)  # type: ignore[misc]
            conn.execute("RELEASE request")
        except Exception as exc:
            conn.execute("ROLLBACK TO request")
            conn.execute("RELEASE request")
            if not isinstance(exc, StoreError):
                name = "append" if append else getattr(request.fn, "__name__", "write")
                error: Exception = StoreError(f"{self._path}: {name} failed: {exc}")
                error.__cause__ = exc
            else:
                error = exc  # StoreError / LeaseLost raised on purpose by the operation
            request.error = error

    def _fail_batch(self, batch: list[_Request], stage: str, exc: Exception) -> None:
        self._failed_commits += 1
        for request in batch:
            error = StoreError(f"{self._path}: transaction {stage} failed, rolled back: {exc}")
            error.__cause__ = exc
            request.error = error
            request.result = None

    def _wake(self, batch: list[_Request], committed: CommitBatch | None = None) -> None:
        with contextlib.suppress(trio.RunFinishedError):  # nobody left to wake
            self._token.run_sync_soon(self._deliver, batch, committed)

    def _maybe_checkpoint(self) -> None:
        policy = self._policy
        conn = self._conn
        self._commits_since_checkpoint += 1
        if self._commits_since_checkpoint >= policy.passive_every:
            self._commits_since_checkpoint = 0
            with contextlib.suppress(sqlite3.Error):  # a missed PASSIVE is retried later
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                self._checkpoints += 1
        try:
            wal_bytes = os.stat(self._wal_path).st_size
        except OSError:
            return
        if wal_bytes <= policy.truncate_bytes:
            return
        now = time.monotonic()
        if now < self._next_forced_checkpoint:
            return
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(policy.wait_ms)}")
            busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        except sqlite3.Error:
            busy = 1
        finally:
            conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_ms)}")
        if busy:
            self._next_forced_checkpoint = now + policy.retry_s
        else:
            self._checkpoints += 1
            self._truncations += 1

    def _fail_remaining(self) -> None:
        with self._lock:
            self._dead = True
        leftover: list[_Request] = []
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not _STOP:
                item.error = StoreError(f"{self._path}: journal closed before the write")
                leftover.append(item)
        if leftover:
            self._wake(leftover)


def _refuse_abort(_: Any) -> trio.lowlevel.Abort:
    return trio.lowlevel.Abort.FAILED
