"""The canonical ⇄ system id map and the change-feed watermarks."""

from __future__ import annotations

import sqlite3

from actors.errors import StoreError


def map_id(
    conn: sqlite3.Connection,
    kind: str,
    canonical_id: str,
    system: str,
    system_id: str,
    now: float,
) -> None:
    """Record that ``canonical_id`` is ``system_id`` in ``system``.

    Idempotent for the same pair; StoreError if either side is already mapped to
    something else (one canonical entity per system record, and the other way round).
    """
    current = conn.execute(
        "SELECT system_id FROM id_map WHERE kind = ? AND canonical_id = ? AND system = ?",
        (kind, canonical_id, system),
    ).fetchone()
    if current is not None:
        if current[0] == system_id:
            return
        raise StoreError(
            f"{kind} {canonical_id} is already mapped to {system} id {current[0]}, not {system_id}"
        )
    other = conn.execute(
        "SELECT canonical_id FROM id_map WHERE kind = ? AND system = ? AND system_id = ?",
        (kind, system, system_id),
    ).fetchone()
    if other is not None:
        raise StoreError(
            f"{system} {kind} id {system_id} is already mapped to {other[0]}, not {canonical_id}"
        )
    conn.execute(
        "INSERT INTO id_map (kind, canonical_id, system, system_id, created_at)"
        " VALUES (?, ?, ?, ?, ?)",
        (kind, canonical_id, system, system_id, now),
    )


def system_id(conn: sqlite3.Connection, kind: str, canonical_id: str, system: str) -> str | None:
    """The system's id for a canonical entity, if mapped."""
    row = conn.execute(
        "SELECT system_id FROM id_map WHERE kind = ? AND canonical_id = ? AND system = ?",
        (kind, canonical_id, system),
    ).fetchone()
    return None if row is None else row[0]


def canonical_id(conn: sqlite3.Connection, kind: str, system: str, system_id: str) -> str | None:
    """The canonical id for a system's record, if mapped."""
    row = conn.execute(
        "SELECT canonical_id FROM id_map WHERE kind = ? AND system = ? AND system_id = ?",
        (kind, system, system_id),
    ).fetchone()
    return None if row is None else row[0]


def ids_of(conn: sqlite3.Connection, kind: str, canonical_id: str) -> dict[str, str]:
    """Every system's id for a canonical entity: system -> system id."""
    return dict(
        conn.execute(
            "SELECT system, system_id FROM id_map WHERE kind = ? AND canonical_id = ?"
            " ORDER BY system",
            (kind, canonical_id),
        )
    )


def set_watermark(conn: sqlite3.Connection, system: str, feed: str, value: str, now: float) -> None:
    """Store how far a change feed has been read (opaque to the store)."""
    conn.execute(
        "INSERT INTO watermarks (system, feed, value, updated_at) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (system, feed) DO UPDATE SET value = excluded.value,"
        " updated_at = excluded.updated_at",
        (system, feed, value, now),
    )


def get_watermark(conn: sqlite3.Connection, system: str, feed: str) -> str | None:
    """The stored watermark of a change feed, if any."""
    row = conn.execute(
        "SELECT value FROM watermarks WHERE system = ? AND feed = ?", (system, feed)
    ).fetchone()
    return None if row is None else row[0]
