"""Memoised step results: (run, step name) -> status and opaque result bytes.

A completed step is never overwritten: a run that resumes after a crash must see the
result the vendor call produced the first time, not a second one.
"""

from __future__ import annotations

import sqlite3

from actors.errors import StoreError

from . import runs
from .records import StepRecord

_COLUMNS = "run_id, name, status, result, recorded_at"


def record(
    conn: sqlite3.Connection,
    run_id: int,
    name: str,
    status: str,
    result: bytes,
    now: float,
    owner: str | None,
) -> StepRecord:
    """Store a step result (fenced by the run's lease when ``owner`` is given).

    Returns what is stored: if the step had already completed, the earlier record.
    """
    if status not in ("completed", "failed"):
        raise StoreError(f"step status must be completed or failed, not {status!r}")
    if owner is not None:
        runs.check_owner(conn, run_id, owner)
    conn.execute(
        f"INSERT INTO steps ({_COLUMNS}) VALUES (?, ?, ?, ?, ?)"
        " ON CONFLICT (run_id, name) DO UPDATE SET status = excluded.status,"
        " result = excluded.result, recorded_at = excluded.recorded_at"
        " WHERE steps.status != 'completed'",
        (run_id, name, status, result, now),
    )
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM steps WHERE run_id = ? AND name = ?", (run_id, name)
    ).fetchone()
    return _record(row)


def for_run(conn: sqlite3.Connection, run_id: int) -> dict[str, StepRecord]:
    """Every recorded step of a run, by name."""
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM steps WHERE run_id = ? ORDER BY recorded_at, name", (run_id,)
    )
    return {row[1]: _record(row) for row in rows}


def _record(row: tuple) -> StepRecord:
    return StepRecord(run_id=row[0], name=row[1], status=row[2], result=row[3], recorded_at=row[4])
