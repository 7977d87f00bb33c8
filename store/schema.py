"""The journal's schema, as an ordered list of migrations, and the code that applies them.

``meta.schema_version`` records the newest migration applied. Opening a file whose
version is newer than :data:`SCHEMA_VERSION` raises :class:`SchemaVersionError`: older
code must not write to a layout it does not know.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from actors.errors import SchemaVersionError, StoreError

from .connection import translate

Migration = tuple[int, str]
"""``(version, sql script)``; each script runs in its own transaction."""

_V1 = """
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
-- AUTOINCREMENT so that a seq is never reused, even after old events are pruned.
CREATE TABLE events (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    id             TEXT NOT NULL UNIQUE,
    type           TEXT NOT NULL,
    key            TEXT NOT NULL,
    source         TEXT NOT NULL,
    correlation_id TEXT NOT NULL,
    causation_id   TEXT,
    occurred_at    REAL NOT NULL,
    recorded_at    REAL NOT NULL,
    schema_version INTEGER NOT NULL,
    body           BLOB NOT NULL
);
CREATE TABLE cursors (
    workflow   TEXT PRIMARY KEY,
    seq        INTEGER NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE runs (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    workflow         TEXT NOT NULL,
    key              TEXT NOT NULL,
    trigger_seq      INTEGER NOT NULL REFERENCES events(seq),
    status           TEXT NOT NULL CHECK (status IN
        ('pending', 'running', 'retry_wait', 'waiting', 'completed', 'cancelled')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  REAL NOT NULL,
    lease_owner      TEXT,
    lease_expires_at REAL,
    correlation_id   TEXT NOT NULL,
    replay           INTEGER NOT NULL DEFAULT 0,
    last_error       TEXT,
    created_at       REAL NOT NULL,
    updated_at       REAL NOT NULL
);
-- One run per workflow x triggering event; replays are deliberate repeats.
CREATE UNIQUE INDEX runs_trigger ON runs (workflow, trigger_seq) WHERE replay = 0;
-- Partial indexes stay small however many finished runs pile up. For a running run
-- next_attempt_at is its lease expiry, so "due" is one range over one index.
CREATE INDEX runs_due ON runs (next_attempt_at, id)
    WHERE status IN ('pending', 'retry_wait', 'running');
CREATE INDEX runs_unfinished_by_key ON runs (workflow, key, id)
    WHERE status IN ('pending', 'running', 'retry_wait', 'waiting');
CREATE INDEX runs_by_key ON runs (workflow, key, id);
CREATE TABLE run_triggers (
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    seq    INTEGER NOT NULL REFERENCES events(seq),
    PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;
CREATE TABLE steps (
    run_id      INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('completed', 'failed')),
    result      BLOB NOT NULL,
    recorded_at REAL NOT NULL,
    PRIMARY KEY (run_id, name)
) WITHOUT ROWID;
CREATE TABLE watermarks (
    system     TEXT NOT NULL,
    feed       TEXT NOT NULL,
    value      TEXT NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (system, feed)
) WITHOUT ROWID;
CREATE TABLE id_map (
    kind         TEXT NOT NULL,
    canonical_id TEXT NOT NULL,
    system       TEXT NOT NULL,
    system_id    TEXT NOT NULL,
    created_at   REAL NOT NULL,
    PRIMARY KEY (kind, canonical_id, system),
    UNIQUE (kind, system, system_id)
) WITHOUT ROWID;
-- amount is TEXT: money never goes through a float.
CREATE TABLE exceptions (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id         INTEGER REFERENCES runs(id),
    workflow       TEXT NOT NULL,
    category       TEXT NOT NULL,
    owner          TEXT NOT NULL,
    amount         TEXT,
    currency       TEXT,
    message        TEXT NOT NULL,
    detail         BLOB NOT NULL,
    correlation_id TEXT NOT NULL,
    status         TEXT NOT NULL CHECK (status IN ('open', 'resolved', 'retry')),
    opened_at      REAL NOT NULL,
    updated_at     REAL NOT NULL,
    resolved_at    REAL,
    resolved_by    TEXT,
    resolution     TEXT
);
CREATE INDEX exceptions_status ON exceptions (status, opened_at);
CREATE INDEX exceptions_run ON exceptions (run_id);
"""

# Indexes for counting and selective reads. run_triggers is WITHOUT ROWID and its indexes
# end in the primary key (run_id, seq). No index on events (type) or (key): every append
# would pay for it (an index on key cost 20-28 % of append throughput, because each
# distinct key in a commit dirties its own index page), while a backlog count only scans
# the seq range past a cursor and replay --key is a rare operator action that may scan.
_V2 = """
-- Replay --since: skip the events recorded before a time without reading them.
CREATE INDEX events_by_recorded_at ON events (recorded_at);
-- Trigger seq -> runs. run_triggers is filled with every run since v1, so the index is
-- the whole lookup; it also serves the foreign-key check when events are deleted.
CREATE INDEX run_triggers_by_seq ON run_triggers (seq);
-- Runs counted by status (and workflow) in the index.
CREATE INDEX runs_by_status ON runs (status, workflow);
-- Exceptions grouped by workflow and category with their money, from the index alone.
CREATE INDEX exceptions_by_workflow
    ON exceptions (status, workflow, category, currency, opened_at, amount);
"""

MIGRATIONS: Sequence[Migration] = ((1, _V1), (2, _V2))
"""Every migration ever shipped, oldest first. Append; never edit a shipped one."""

SCHEMA_VERSION: int = MIGRATIONS[-1][0]
"""The schema version this code writes."""


def read_version(conn: sqlite3.Connection, path: str) -> int:
    """The file's schema version: 0 for an empty file; StoreError if it is not a journal."""
    with translate("reading the schema version", path):
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        if "meta" not in tables:
            if tables - {"sqlite_sequence"}:
                raise StoreError(f"{path}: not a pssync journal (no meta table)")
            return 0
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    if row is None:
        raise StoreError(f"{path}: meta table has no schema_version")
    return int(row[0])


def check_not_newer(version: int, path: str, code_version: int = SCHEMA_VERSION) -> None:
    """Raise SchemaVersionError if the file is newer than the code."""
    if version > code_version:
        raise SchemaVersionError(
            f"{path}: journal schema version {version} is newer than this pssync supports"
            f" (schema version {code_version}); run a newer pssync or restore an older backup"
        )


def migrate(
    conn: sqlite3.Connection,
    path: str,
    *,
    now: float,
    migrations: Sequence[Migration] = MIGRATIONS,
) -> int:
    """Bring the file up to the newest version in ``migrations``; return that version.

    Each step runs under ``BEGIN IMMEDIATE`` and re-reads the version inside the
    transaction, so two processes opening the same file cannot both apply a step.
    """
    target = migrations[-1][0]
    check_not_newer(read_version(conn, path), path, target)
    for version, script in migrations:
        with translate(f"migration to schema version {version}", path):
            conn.execute("BEGIN IMMEDIATE")
            try:
                current = read_version(conn, path)
                check_not_newer(current, path, target)
                if current >= version:
                    conn.execute("ROLLBACK")
                    continue
                # executescript would COMMIT first; run statements one by one instead.
                for statement in _statements(script):
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('schema_version', ?)"
                    " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (str(version),),
                )
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('created_at', ?)"
                    " ON CONFLICT (key) DO NOTHING",
                    (repr(now),),
                )
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
    return target


def _statements(script: str) -> list[str]:
    """Split a migration script into complete statements (sqlite3.complete_statement)."""
    statements: list[str] = []
    buffer = ""
    for line in script.splitlines(keepends=True):
        if not buffer and line.lstrip().startswith("--"):
            continue
        buffer += line
        if sqlite3.complete_statement(buffer):
            statements.append(buffer.strip())
            buffer = ""
    if buffer.strip():
        raise StoreError(f"incomplete statement in migration: {buffer.strip()[:80]}")
    return statements
