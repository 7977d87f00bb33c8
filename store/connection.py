"""Opening SQLite connections with the journal's pragmas, and translating sqlite3 errors.

Connections run in autocommit mode (``isolation_level=None``): the journal issues
``BEGIN IMMEDIATE`` / ``COMMIT`` itself, so that the module never opens a transaction
behind our back and a write never silently waits for a lock it did not ask for.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

from actors.errors import StoreError

Synchronous = Literal["FULL", "NORMAL"]

BUSY_TIMEOUT_MS = 5_000
"""How long a connection waits for another connection's lock before SQLITE_BUSY."""


@contextmanager
def translate(what: str, path: str) -> Iterator[None]:
    """Turn a sqlite3 (or OS) error into a StoreError naming the operation and the file."""
    try:
        yield
    except (sqlite3.Error, OSError) as exc:
        raise StoreError(f"{path}: {what} failed: {exc}") from exc


def connect(
    path: str,
    *,
    synchronous: Synchronous = "FULL",
    busy_timeout_ms: int = BUSY_TIMEOUT_MS,
    readonly: bool = False,
) -> sqlite3.Connection:
    """Open ``path`` with WAL, the given durability, a busy timeout and foreign keys on.

    The connection may be used from any thread (``check_same_thread=False``); the caller
    guarantees one thread at a time (the writer thread, or one reader per pool slot).
    """
    if synchronous not in ("FULL", "NORMAL"):
        raise StoreError(f"synchronous must be FULL or NORMAL, not {synchronous!r}")
    with translate("open", path):
        conn = sqlite3.connect(
            path,
            isolation_level=None,
            check_same_thread=False,
            timeout=busy_timeout_ms / 1000,
            cached_statements=256,
        )
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            if not readonly:
                # journal_mode is persistent in the file; setting it needs a write lock, so
                # only writers do it and readers inherit it.
                mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                if mode.lower() != "wal":
                    raise StoreError(f"{path}: cannot switch to WAL mode (got {mode!r})")
            conn.execute(f"PRAGMA synchronous = {synchronous}")
            conn.execute("PRAGMA foreign_keys = ON")
            if readonly:
                conn.execute("PRAGMA query_only = ON")
        except BaseException:
            conn.close()
            raise
    return conn
