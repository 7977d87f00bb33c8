"""Schema versions and migrations."""

from __future__ import annotations

import re
import sqlite3

import pytest

from actors.errors import SchemaVersionError, StoreError
from store import SCHEMA_VERSION, journal_stats, open_journal
from store.schema import MIGRATIONS, migrate, read_version

from .conftest import event


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
