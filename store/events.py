"""Events: append a batch (deduplicated by envelope id) and read them back by seq.

Functions here take a sqlite3 connection and run on whichever thread owns it: the
writer thread for ``insert_batch``, a reader thread for the rest.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from itertools import chain

import msgspec
from msgspec.structs import astuple

from .records import EventRecord

_json = msgspec.json.Encoder()

# json_each keeps the statement text constant, so it is prepared once and cached.
_COLUMNS = (
    "seq, id, type, key, source, correlation_id, causation_id,"
    " occurred_at, recorded_at, schema_version, body"
)
_INSERT_PREFIX = (
    "INSERT INTO events (id, type, key, source, correlation_id, causation_id,"
    " occurred_at, recorded_at, schema_version, body) VALUES "
)
# Only a repeated id is skipped; any other constraint violation still raises.
_ON_DUPLICATE = " ON CONFLICT (id) DO NOTHING"
# Multi-row INSERTs of a few fixed sizes: one sqlite3_step (one GIL release) per chunk
# instead of one per row, and few distinct statements, so all stay prepared in the cache.
_CHUNKS = (64, 16, 4, 1)
_INSERT_N = {
    n: _INSERT_PREFIX + ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"] * n) + _ON_DUPLICATE
    for n in _CHUNKS
}
_WIDTH = 10  # inserted columns: every EventRecord field but the trailing seq
_LAST_SEQ = "SELECT seq FROM sqlite_sequence WHERE name = 'events'"
_SEQS_OF = "SELECT id, seq FROM events WHERE id IN (SELECT value FROM json_each(?))"


def insert_batch(
    conn: sqlite3.Connection, records: Sequence[EventRecord]
) -> tuple[list[int], list[bool]]:
    """Insert the records whose id is new; return (seq per record, new per record).

    Must run inside the writer's transaction. Under its exclusive lock, rows inserted with
    no conflict get consecutive AUTOINCREMENT seqs right after ``sqlite_sequence``, so in
    the common case (no duplicates) no lookup is needed. A skipped duplicate may still
    consume a seq: seqs increase monotonically but can have gaps.
    """
    count = len(records)
    before_row = conn.execute(_LAST_SEQ).fetchone()
    before = before_row[0] if before_row else 0
    params = list(chain.from_iterable(astuple(record)[:_WIDTH] for record in records))
    inserted = 0
    done = 0
    while done < count:
        size = next(n for n in _CHUNKS if n <= count - done)
        cursor = conn.execute(_INSERT_N[size], params[done * _WIDTH : (done + size) * _WIDTH])
        inserted += cursor.rowcount
        done += size
    if inserted == count:
        return list(range(before + 1, before + count + 1)), [True] * count
    # Some ids were already there (or repeated within the batch): ask which.
    stored = dict(conn.execute(_SEQS_OF, (_json.encode([r.id for r in records]),)))
    seqs: list[int] = []
    new: list[bool] = []
    seen: set[str] = set()
    for record in records:
        seq = stored[record.id]
        seqs.append(seq)
        new.append(seq > before and record.id not in seen)
        seen.add(record.id)
    return seqs, new


def _record(row: tuple) -> EventRecord:
    return EventRecord(
        seq=row[0],
        id=row[1],
        type=row[2],
        key=row[3],
        source=row[4],
        correlation_id=row[5],
        causation_id=row[6],
        occurred_at=row[7],
        recorded_at=row[8],
        schema_version=row[9],
        body=row[10],
    )


def read_after(
    conn: sqlite3.Connection,
    after_seq: int,
    limit: int,
    types: Sequence[str] | None,
    key: str | None = None,
    since: float | None = None,
) -> list[EventRecord]:
    """Events with ``seq > after_seq`` in seq order, optionally only the given types, one
    key, or those recorded at or after ``since`` (epoch seconds, ``recorded_at``)."""
    if since is not None:
        skipped = _skip_to_since(conn, after_seq, since)
        if skipped is None:
            return []
        after_seq = skipped
    where, params = _filters(after_seq, types, key)
    if since is not None:
        where += " AND recorded_at >= ?"
        params.append(since)
    cursor = conn.execute(
        f"SELECT {_COLUMNS} FROM events WHERE {where} ORDER BY seq LIMIT ?", (*params, limit)
    )
    return [_record(row) for row in cursor]


def count_after(
    conn: sqlite3.Connection, after_seq: int, types: Sequence[str] | None, key: str | None
) -> int:
    """How many events have ``seq > after_seq`` (optionally of the given types, one key).

    Counted over the seq range past ``after_seq`` (a cursor's distance from the end, not
    the whole journal); there is deliberately no index on type or key (see schema v2).
    """
    where, params = _filters(after_seq, types, key)
    return conn.execute(f"SELECT COUNT(*) FROM events WHERE {where}", params).fetchone()[0]


def _filters(
    after_seq: int, types: Sequence[str] | None, key: str | None
) -> tuple[str, list[object]]:
    """The WHERE clause (and parameters) of a read or a count past ``after_seq``."""
    where = "seq > ?"
    params: list[object] = [after_seq]
    if key is not None:
        where += " AND key = ?"
        params.append(key)
    if types is not None:
        where += " AND type IN (SELECT value FROM json_each(?))"
        params.append(_json.encode(list(types)))
    return where, params


def _skip_to_since(conn: sqlite3.Connection, after_seq: int, since: float) -> int | None:
    """A seq to read after that skips the events recorded before ``since``, or None if
    none after ``after_seq`` was recorded since then.

    recorded_at is the append time, so it rises with seq (but for clock steps). If the
    next event is already recent enough the caller is inside the range: keep
    ``after_seq``, the seq-ordered read filters any stragglers. Otherwise look the first
    seq up in the recorded_at index instead of scanning the older events' rows.
    """
    row = conn.execute(
        "SELECT recorded_at FROM events WHERE seq > ? ORDER BY seq LIMIT 1", (after_seq,)
    ).fetchone()
    if row is None:
        return None
    if row[0] >= since:
        return after_seq
    first = conn.execute(
        "SELECT MIN(seq) FROM events INDEXED BY events_by_recorded_at"
        " WHERE recorded_at >= ? AND seq > ?",
        (since, after_seq),
    ).fetchone()[0]
    return None if first is None else first - 1


def by_ids(conn: sqlite3.Connection, ids: Sequence[str]) -> list[EventRecord]:
    """The stored events with these envelope ids, in seq order (missing ids are skipped)."""
    cursor = conn.execute(
        f"SELECT {_COLUMNS} FROM events WHERE id IN (SELECT value FROM json_each(?)) ORDER BY seq",
        (_json.encode(list(ids)),),
    )
    return [_record(row) for row in cursor]


def by_seqs(conn: sqlite3.Connection, seqs: Sequence[int]) -> list[EventRecord]:
    """The stored events with these seqs, in seq order (missing seqs are skipped)."""
    cursor = conn.execute(
        f"SELECT {_COLUMNS} FROM events WHERE seq IN (SELECT value FROM json_each(?)) ORDER BY seq",
        (_json.encode(list(seqs)),),
    )
    return [_record(row) for row in cursor]


def max_seq(conn: sqlite3.Connection) -> int:
    """The highest seq ever handed out (0 for an empty journal)."""
    row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'events'").fetchone()
    return row[0] if row else 0
