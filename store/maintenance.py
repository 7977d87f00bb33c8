"""Operations on a journal file: online backup, verify, stats.

The functions take a connection and run on a reader thread, so they work both on an
open journal (``Journal.backup`` …) and offline from the CLI (``backup_journal`` …).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from decimal import Decimal, InvalidOperation

from actors.errors import StoreError

from . import events
from .connection import translate
from .records import BackupReport, JournalStats, Problem, VerifyReport
from .schema import SCHEMA_VERSION, read_version

TABLES = (
    "events",
    "runs",
    "run_triggers",
    "steps",
    "cursors",
    "watermarks",
    "id_map",
    "exceptions",
)


def backup(conn: sqlite3.Connection, source: str, destination: str) -> BackupReport:
    """Copy the journal with SQLite's online backup API to ``destination``.

    Writes go on meanwhile; the copy is one consistent snapshot. It is written to a
    temporary name, synced, then renamed, so ``destination`` is never a partial file.
    """
    if os.path.exists(destination):
        raise StoreError(f"{source}: backup destination {destination} already exists")
    partial = destination + ".partial"
    with translate(f"backup to {destination}", source):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(partial)
        target = sqlite3.connect(partial, isolation_level=None)
        try:
            conn.backup(target)
            pages = target.execute("PRAGMA page_count").fetchone()[0]
            # A single file is easier to move around than a WAL pair.
            target.execute("PRAGMA journal_mode = DELETE")
        finally:
            target.close()
        with open(partial, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(partial, destination)
        directory = os.open(os.path.dirname(os.path.abspath(destination)), os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
    return BackupReport(
        source=source,
        destination=destination,
        bytes=os.path.getsize(destination),
        pages=pages,
    )


# Each invariant: (name, SQL returning offending rows as (detail,)).
_INVARIANTS: tuple[tuple[str, str], ...] = (
    (
        "cursor_within_events",
        "SELECT 'cursor of ' || workflow || ' is at ' || seq || ', past the last event'"
        " FROM cursors WHERE seq > COALESCE("
        "(SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0)",
    ),
    (
        "events_seq_behind_sequence",
        "SELECT 'event seq ' || MAX(seq) || ' is past the AUTOINCREMENT counter' FROM events"
        " HAVING MAX(seq) > COALESCE("
        "(SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0)",
    ),
    (
        "running_runs_have_lease",
        "SELECT 'run ' || id || ' is running without a lease' FROM runs"
        " WHERE status = 'running' AND (lease_owner IS NULL OR lease_expires_at IS NULL)",
    ),
    (
        "idle_runs_have_no_lease",
        "SELECT 'run ' || id || ' is ' || status || ' but leased to ' || lease_owner"
        " FROM runs WHERE status != 'running' AND lease_owner IS NOT NULL",
    ),
    (
        "one_running_run_per_key",
        "SELECT workflow || '/' || key || ' has ' || COUNT(*) || ' running runs' FROM runs"
        " WHERE status = 'running' GROUP BY workflow, key HAVING COUNT(*) > 1",
    ),
    (
        "runs_have_triggers",
        "SELECT 'run ' || r.id || ' does not list its trigger seq ' || r.trigger_seq"
        " FROM runs AS r WHERE NOT EXISTS (SELECT 1 FROM run_triggers AS t"
        " WHERE t.run_id = r.id AND t.seq = r.trigger_seq)",
    ),
    (
        "run_triggers_exist",
        "SELECT 'run ' || t.run_id || ' refers to missing event seq ' || t.seq"
        " FROM run_triggers AS t WHERE NOT EXISTS (SELECT 1 FROM events AS e"
        " WHERE e.seq = t.seq)",
    ),
    (
        "waiting_runs_have_open_exception",
        "SELECT 'run ' || r.id || ' is waiting with no open exception' FROM runs AS r"
        " WHERE r.status = 'waiting' AND NOT EXISTS (SELECT 1 FROM exceptions AS x"
        " WHERE x.run_id = r.id AND x.status = 'open')",
    ),
    (
        "exception_amount_has_currency",
        "SELECT 'exception ' || id || ' has an amount without a currency' FROM exceptions"
        " WHERE amount IS NOT NULL AND (currency IS NULL OR currency = '')",
    ),
)


def verify(conn: sqlite3.Connection, path: str) -> VerifyReport:
    """``PRAGMA integrity_check`` plus the journal's invariants, in one read snapshot."""
    problems: list[Problem] = []
    checks = ["integrity_check", "schema_version", "foreign_key_check"]
    with translate("verify", path):
        integrity = tuple(row[0] for row in conn.execute("PRAGMA integrity_check"))
        version = read_version(conn, path)
        if version != SCHEMA_VERSION:
            problems.append(
                Problem("schema_version", f"file is at {version}, code at {SCHEMA_VERSION}")
            )
        for table, rowid, parent, _ in conn.execute("PRAGMA foreign_key_check"):
            problems.append(
                Problem("foreign_key_check", f"{table} row {rowid} refers to missing {parent}")
            )
        for name, sql in _INVARIANTS:
            checks.append(name)
            problems.extend(Problem(name, row[0]) for row in conn.execute(sql))
        checks.append("exception_amounts_are_decimal")
        for exception_id, amount in conn.execute(
            "SELECT id, amount FROM exceptions WHERE amount IS NOT NULL"
        ):
            try:
                valid = Decimal(amount).is_finite()
            except (InvalidOperation, TypeError):
                valid = False
            if not valid:
                problems.append(
                    Problem(
                        "exception_amounts_are_decimal",
                        f"exception {exception_id} amount {amount!r} is not a decimal",
                    )
                )
    return VerifyReport(
        path=path,
        ok=integrity == ("ok",) and not problems,
        integrity=integrity,
        problems=tuple(problems),
        checks=tuple(checks),
    )


def stats(conn: sqlite3.Connection, path: str) -> JournalStats:
    """Counts per table, events by type, runs and exceptions by status, sizes."""
    with translate("stats", path):
        tables = {
            table: conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] for table in TABLES
        }
        events_by_type = dict(
            conn.execute("SELECT type, COUNT(*) FROM events GROUP BY type ORDER BY type")
        )
        runs_by_status = dict(
            conn.execute("SELECT status, COUNT(*) FROM runs GROUP BY status ORDER BY status")
        )
        exceptions_by_status = dict(
            conn.execute("SELECT status, COUNT(*) FROM exceptions GROUP BY status ORDER BY status")
        )
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        page_count = conn.execute("PRAGMA page_count").fetchone()[0]
        freelist = conn.execute("PRAGMA freelist_count").fetchone()[0]
        version = read_version(conn, path)
        last_seq = events.max_seq(conn)
    return JournalStats(
        path=path,
        schema_version=version,
        file_bytes=_size(path),
        wal_bytes=_size(path + "-wal"),
        page_size=page_size,
        page_count=page_count,
        freelist_count=freelist,
        max_seq=last_seq,
        tables=tables,
        events_by_type=events_by_type,
        runs_by_status=runs_by_status,
        exceptions_by_status=exceptions_by_status,
    )


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except FileNotFoundError:
        return 0
