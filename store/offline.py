"""Journal operations for the CLI when no daemon has the file open.

Each function opens the file read-only (never creating or migrating it), does its job
on a worker thread and closes it again.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from typing import Any, TypeVar

import trio

from actors.errors import StoreError

from . import maintenance
from .connection import connect, translate
from .records import BackupReport, JournalStats, VerifyReport
from .schema import check_not_newer, read_version

T = TypeVar("T")


async def journal_stats(path: str) -> JournalStats:
    """Counts and sizes of the journal at ``path``."""
    return await _offline(path, maintenance.stats, path)


async def verify_journal(path: str) -> VerifyReport:
    """integrity_check and invariants of the journal at ``path``."""
    return await _offline(path, maintenance.verify, path)


async def backup_journal(path: str, destination: str) -> BackupReport:
    """Online backup of the journal at ``path`` to ``destination`` (must not exist)."""
    return await _offline(path, maintenance.backup, path, destination)


async def _offline(path: str, fn: Callable[..., T], *args: Any) -> T:
    path = str(path)

    def job() -> T:
        if not os.path.exists(path):
            raise StoreError(f"{path}: no such journal file")
        conn: sqlite3.Connection = connect(path, readonly=True)
        try:
            with translate("open", path):
                version = read_version(conn, path)
            if version == 0:
                raise StoreError(f"{path}: not a pssync journal (empty database)")
            check_not_newer(version, path)
            return fn(conn, *args)
        finally:
            conn.close()

    return await trio.to_thread.run_sync(job)
