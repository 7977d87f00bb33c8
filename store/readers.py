"""Read connections: a small pool used from trio worker threads.

Each read runs in its own short transaction (one consistent snapshot, released at
once): long-lived read transactions are what starves WAL checkpoints.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import trio

from actors.errors import StoreError

from .connection import Synchronous, connect

T = TypeVar("T")


class ReadPool:
    """Up to ``size`` read connections, each used by one thread at a time.

    A dedicated CapacityLimiter bounds the reads in flight, so journal reads neither
    starve nor are starved by other users of trio's default thread limiter. A cancelled
    reader waits for its (short) query to finish, then raises Cancelled.
    """

    def __init__(
        self, path: str, *, size: int, synchronous: Synchronous, busy_timeout_ms: int
    ) -> None:
        self._path = path
        self._synchronous = synchronous
        self._busy_timeout_ms = busy_timeout_ms
        self._limiter = trio.CapacityLimiter(size)
        self._idle: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._closed = False

    async def run(self, fn: Callable[..., T], *args: Any, transaction: bool = True) -> T:
        """Run ``fn(conn, *args)`` on a read connection in a worker thread."""
        if self._closed:
            raise StoreError(f"{self._path}: journal is closed")
        return await trio.to_thread.run_sync(
            self._call, fn, args, transaction, limiter=self._limiter
        )

    def _call(self, fn: Callable[..., T], args: tuple[Any, ...], transaction: bool) -> T:
        with self._lock:
            conn = self._idle.pop() if self._idle else None
        if conn is None:
            conn = connect(
                self._path,
                synchronous=self._synchronous,
                busy_timeout_ms=self._busy_timeout_ms,
                readonly=True,
            )
        try:
            if transaction:
                conn.execute("BEGIN")
            try:
                return fn(conn, *args)
            finally:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
        except sqlite3.Error as exc:
            name = getattr(fn, "__name__", "read")
            raise StoreError(f"{self._path}: {name} failed: {exc}") from exc
        finally:
            with self._lock:
                self._idle.append(conn)

    def close(self) -> None:
        """Close every pooled connection; call only when no read is in flight."""
        self._closed = True
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
