"""Schema versions and migrations."""

from __future__ import annotations

import re
import sqlite3
import sys
from decimal import Decimal
from pathlib import Path

import pytest
import trio

from actors.errors import SchemaVersionError, StoreError
from store import SCHEMA_VERSION, NewRun, journal_stats, open_journal
from store import events as store_events
from store import exceptions as store_exceptions
from store import runs as store_runs
from store.connection import connect
from store.schema import MIGRATIONS, migrate, read_version

from .conftest import event

REPO = Path(__file__).resolve().parents[2]


async def test_new_file_gets_the_current_schema(journal_path: str) -> None:
    async with open_journal(journal_path):
        pass

    conn = sqlite3.connect(journal_path)
    assert read_version(conn, journal_path) == SCHEMA_VERSION
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


async def test_newer_file_is_refused_with_both_versions_named(journal_path: str) -> None:
    async with open_journal(journal_path) as journal:
        await journal.append([event("a")])
    conn = sqlite3.connect(journal_path)
    conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (SCHEMA_VERSION + 1,))
    conn.commit()
    conn.close()

    with pytest.raises(SchemaVersionError) as raised:
        async with open_journal(journal_path):
            pass
    message = str(raised.value)
    assert journal_path in message
    assert f"version {SCHEMA_VERSION + 1}" in message
    assert f"schema version {SCHEMA_VERSION})" in message
    with pytest.raises(SchemaVersionError):
        await journal_stats(journal_path)


async def test_migration_upgrades_an_older_file_and_keeps_its_data(journal_path: str) -> None:
    async with open_journal(journal_path) as journal:
        await journal.append([event("a")])
    v2 = (SCHEMA_VERSION + 1, "ALTER TABLE events ADD COLUMN tenant TEXT NOT NULL DEFAULT 't1';")
    conn = sqlite3.connect(journal_path, isolation_level=None)

    assert migrate(conn, journal_path, now=0.0, migrations=[*MIGRATIONS, v2]) == v2[0]
    assert migrate(conn, journal_path, now=0.0, migrations=[*MIGRATIONS, v2]) == v2[0]

    assert read_version(conn, journal_path) == v2[0]
    assert conn.execute("SELECT id, tenant FROM events").fetchall() == [("a", "t1")]
    conn.close()


async def test_failed_migration_leaves_the_file_at_its_old_version(journal_path: str) -> None:
    async with open_journal(journal_path):
        pass
    broken = (SCHEMA_VERSION + 1, "CREATE TABLE extra (x INT);\nSELECT * FROM nowhere;")
    conn = sqlite3.connect(journal_path, isolation_level=None)

    with pytest.raises(StoreError, match=f"migration to schema version {broken[0]}"):
        migrate(conn, journal_path, now=0.0, migrations=[*MIGRATIONS, broken])

    assert read_version(conn, journal_path) == SCHEMA_VERSION
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    assert "extra" not in tables
    conn.close()


async def test_foreign_database_and_garbage_are_store_errors(tmp_path) -> None:
    foreign = str(tmp_path / "other.db")
    conn = sqlite3.connect(foreign)
    conn.execute("CREATE TABLE customers (id INT)")
    conn.commit()
    conn.close()
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not sqlite" * 100)

    with pytest.raises(StoreError, match="not a pssync journal"):
        async with open_journal(foreign):
            pass
    with pytest.raises(StoreError, match=re.escape("garbage.db")) as raised:
        async with open_journal(str(garbage)):
            pass
    assert isinstance(raised.value.__cause__, sqlite3.Error)


# --- v1 -> v2 -----------------------------------------------------------------------

V1 = MIGRATIONS[:1]
V2_INDEXES = {
    "events_by_recorded_at",
    "run_triggers_by_seq",
    "runs_by_status",
    "exceptions_by_workflow",
}
T0 = 1_700_000_000.0


def build_v1_journal(path: str, count: int = 30) -> None:
    """A journal as pssync with schema v1 wrote it: the v1 migration only, then events,
    runs (a grouped one, a replay) and an exception through the store's own writes."""
    conn = connect(path)
    try:
        assert migrate(conn, path, now=T0, migrations=V1) == 1
        conn.execute("BEGIN IMMEDIATE")
        store_events.insert_batch(conn, [event(f"e{i}", key=f"P-{i % 3}") for i in range(count)])
        store_runs.create(
            conn,
            [
                NewRun(workflow="w", key="P-0", trigger_seqs=(1, 4), correlation_id="c"),
                NewRun(workflow="w", key="P-1", trigger_seqs=(2,), correlation_id="c"),
                NewRun(workflow="w", key="P-1", trigger_seqs=(2,), correlation_id="c", replay=True),
            ],
            T0,
        )
        store_exceptions.open_(
            conn,
            run_id=None,
            workflow="w",
            category="mismatch",
            owner="fin",
            amount=Decimal("12.34"),
            currency="EUR",
            message="m",
            detail=b"",
            correlation_id="c",
            now=T0,
        )
        conn.execute("COMMIT")
    finally:
        conn.close()


def indexes(path: str) -> set[str]:
    conn = sqlite3.connect(path)
    try:
        return {
            row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")
        }
    finally:
        conn.close()


def version_of(path: str) -> int:
    conn = sqlite3.connect(path)
    try:
        return read_version(conn, path)
    finally:
        conn.close()


async def test_this_code_writes_schema_version_2() -> None:
    assert [version for version, _ in MIGRATIONS] == [1, 2]
    assert SCHEMA_VERSION == 2


async def test_v1_file_upgrades_to_v2_keeping_data_and_indexing_it(journal_path: str) -> None:
    build_v1_journal(journal_path)
    assert version_of(journal_path) == 1
    assert not V2_INDEXES & indexes(journal_path)

    async with open_journal(journal_path) as journal:
        assert len(await journal.read_events(limit=100)) == 30
        assert [r.trigger_seqs for r in await journal.list_runs()] == [(1, 4), (2,), (2,)]
        # run_triggers has held every run's seqs since v1: the new index covers them.
        assert await journal.runs_for_triggers("w", [1, 2, 3, 4]) == {
            1: [1],
            2: [2, 3],
            4: [1],
        }
        assert await journal.count_events(0, key="P-1") == 10
        assert await journal.count_events(0, ["TimeApproved"]) == 30
        assert await journal.count_runs(statuses=["pending"]) == {"pending": 3}
        [counted] = await journal.count_exceptions()
        assert counted.money_at_risk == {"EUR": Decimal("12.34")}
        report = await journal.verify()
        assert report.ok, report.problems
        await journal.append([event("after-upgrade")])

    assert version_of(journal_path) == 2
    assert indexes(journal_path) >= V2_INDEXES


async def test_v3_file_is_refused_by_v2_code(journal_path: str) -> None:
    async with open_journal(journal_path):
        pass
    conn = sqlite3.connect(journal_path)
    conn.execute("UPDATE meta SET value = '3' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()

    with pytest.raises(SchemaVersionError, match=r"version 3 is newer .*schema version 2\)"):
        async with open_journal(journal_path):
            pass
    assert version_of(journal_path) == 3  # untouched


async def test_failing_v2_migration_leaves_the_file_at_v1(journal_path: str) -> None:
    build_v1_journal(journal_path)
    [(version, script)] = MIGRATIONS[1:]
    broken = (version, script + "\nSELECT * FROM nowhere;")
    conn = sqlite3.connect(journal_path, isolation_level=None)

    with pytest.raises(StoreError, match="migration to schema version 2"):
        migrate(conn, journal_path, now=T0, migrations=[*V1, broken])
    conn.close()

    assert version_of(journal_path) == 1
    assert not V2_INDEXES & indexes(journal_path)


_KILL_MID_MIGRATION = """
import os, sys
from store.connection import connect
from store.schema import migrate

path = sys.argv[1]
conn = connect(path)
armed = False

def arm(sql):
    # The third of v2's five indexes: two are built, uncommitted, when the crash comes.
    global armed
    armed = armed or sql.startswith("CREATE INDEX run_triggers_by_seq")

def crash():
    if armed:
        os._exit(9)  # like kill -9: no rollback, no close, the WAL left as it is
    return 0

conn.set_trace_callback(arm)
conn.set_progress_handler(crash, 1)
migrate(conn, path, now=0.0)
print("migration finished before the crash")
"""


@pytest.mark.slow
async def test_crash_during_v2_migration_leaves_v1_then_upgrade_succeeds(
    journal_path: str,
) -> None:
    build_v1_journal(journal_path, count=2_000)

    child = await trio.run_process(
        [sys.executable, "-c", _KILL_MID_MIGRATION, journal_path],
        cwd=REPO,
        capture_stdout=True,
        check=False,
    )

    assert child.returncode == 9, child.stdout
    assert version_of(journal_path) == 1
    assert not V2_INDEXES & indexes(journal_path)
    async with open_journal(journal_path) as journal:
        assert (await journal.verify()).ok
        assert await journal.count_events(0, key="P-2") == 666
    assert version_of(journal_path) == 2
