"""Runs: create, claim under a lease, renew, complete, fail with backoff, park, expire.

Write functions run on the writer thread inside its transaction (``BEGIN IMMEDIATE``),
so a claim's SELECT and UPDATE are one atomic step: two claimers, even in two
processes, can never both get a run. A claimer owns a run while ``status = 'running'``
and ``lease_owner`` is its name; ``now`` always comes from the caller.

Per-key ordering: a run is claimable only when no earlier run (lower id) of the same
workflow and key is unfinished, so one project's runs execute in creation order.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

import msgspec

from actors.errors import LeaseLost, StoreError

from .records import FINAL_STATUSES, UNFINISHED_STATUSES, NewRun, RunRecord

ALL_STATUSES: tuple[str, ...] = UNFINISHED_STATUSES + FINAL_STATUSES
_json = msgspec.json.Encoder()

_UNFINISHED = "('pending', 'running', 'retry_wait', 'waiting')"
_COLUMNS = (
    "id, workflow, key, status, attempts, next_attempt_at, lease_owner, lease_expires_at,"
    " correlation_id, replay, last_error, created_at, updated_at"
)

_INSERT = (
    "INSERT INTO runs (workflow, key, trigger_seq, status, next_attempt_at, correlation_id,"
    " replay, created_at, updated_at) VALUES (?, ?, ?, 'pending', ?, ?, ?, ?, ?)"
    " ON CONFLICT DO NOTHING RETURNING id"
)

# A running run's next_attempt_at is its lease expiry: "due" covers pending runs whose
# time has come, retries whose backoff is over, and leases that have lapsed.
_CLAIM = f"""
UPDATE runs
   SET status = 'running', lease_owner = :owner, lease_expires_at = :expires,
       next_attempt_at = :expires, attempts = attempts + 1, updated_at = :now
 WHERE id IN (
    SELECT r.id FROM runs AS r INDEXED BY runs_due
     WHERE r.status IN ('pending', 'retry_wait', 'running') AND r.next_attempt_at <= :now
       AND (:workflow IS NULL OR r.workflow = :workflow)
       AND NOT EXISTS (
            SELECT 1 FROM runs AS e INDEXED BY runs_unfinished_by_key
             WHERE e.workflow = r.workflow AND e.key = r.key AND e.id < r.id
               AND e.status IN {_UNFINISHED})
     ORDER BY r.next_attempt_at, r.id
     LIMIT :limit)
RETURNING {_COLUMNS}
"""


def create(conn: sqlite3.Connection, runs: Sequence[NewRun], now: float) -> list[int | None]:
    """Insert runs; return each new id, or None where the run already existed."""
    ids: list[int | None] = []
    for run in runs:
        if not run.trigger_seqs:
            raise StoreError(f"run of {run.workflow} for {run.key} has no trigger seqs")
        trigger_seqs = sorted(set(run.trigger_seqs))
        row = conn.execute(
            _INSERT,
            (
                run.workflow,
                run.key,
                trigger_seqs[0],
                now if run.next_attempt_at is None else run.next_attempt_at,
                run.correlation_id,
                int(run.replay),
                now,
                now,
            ),
        ).fetchone()
        if row is None:
            ids.append(None)
            continue
        conn.executemany(
            "INSERT INTO run_triggers (run_id, seq) VALUES (?, ?)",
            [(row[0], seq) for seq in trigger_seqs],
        )
        ids.append(row[0])
    return ids


def create_and_advance(
    conn: sqlite3.Connection, workflow: str, runs: Sequence[NewRun], cursor_seq: int, now: float
) -> list[int | None]:
    """Create runs and move ``workflow``'s cursor to ``cursor_seq`` in one transaction.

    The cursor never moves backwards here: a dispatcher that re-reads after a crash gets
    StoreError rather than silently rewinding (use ``set_cursor`` to rewind on purpose).
    """
    ids = create(conn, runs, now)
    row = conn.execute("SELECT seq FROM cursors WHERE workflow = ?", (workflow,)).fetchone()
    if row is not None and row[0] > cursor_seq:
        raise StoreError(f"cursor of {workflow} is at {row[0]}, cannot move back to {cursor_seq}")
    set_cursor(conn, workflow, cursor_seq, now)
    return ids


def set_cursor(conn: sqlite3.Connection, workflow: str, seq: int, now: float) -> None:
    """Set the dispatcher's position for ``workflow`` (the last seq it has handled)."""
    conn.execute(
        "INSERT INTO cursors (workflow, seq, updated_at) VALUES (?, ?, ?)"
        " ON CONFLICT (workflow) DO UPDATE SET seq = excluded.seq,"
        " updated_at = excluded.updated_at",
        (workflow, seq, now),
    )


def get_cursor(conn: sqlite3.Connection, workflow: str) -> int:
    """The last seq handled for ``workflow``; 0 when it has never run."""
    row = conn.execute("SELECT seq FROM cursors WHERE workflow = ?", (workflow,)).fetchone()
    return row[0] if row else 0


def all_cursors(conn: sqlite3.Connection) -> dict[str, int]:
    """Every workflow's cursor."""
    return dict(conn.execute("SELECT workflow, seq FROM cursors ORDER BY workflow"))


def _records(conn: sqlite3.Connection, rows: list[tuple]) -> list[RunRecord]:
    if not rows:
        return []
    triggers: dict[int, list[int]] = {}
    for run_id, seq in conn.execute(
        "SELECT run_id, seq FROM run_triggers"
        " WHERE run_id IN (SELECT value FROM json_each(?)) ORDER BY run_id, seq",
        ("[" + ",".join(str(row[0]) for row in rows) + "]",),
    ):
        triggers.setdefault(run_id, []).append(seq)
    return [
        RunRecord(
            id=row[0],
            workflow=row[1],
            key=row[2],
            trigger_seqs=tuple(triggers.get(row[0], ())),
            status=row[3],
            attempts=row[4],
            # RETURNING yields values before REAL affinity applies: coerce.
            next_attempt_at=float(row[5]),
            lease_owner=row[6],
            lease_expires_at=None if row[7] is None else float(row[7]),
            correlation_id=row[8],
            replay=bool(row[9]),
            last_error=row[10],
            created_at=float(row[11]),
            updated_at=float(row[12]),
        )
        for row in rows
    ]


def claim(
    conn: sqlite3.Connection,
    owner: str,
    now: float,
    lease_s: float,
    limit: int,
    workflow: str | None,
) -> list[RunRecord]:
    """Lease up to ``limit`` due runs to ``owner`` until ``now + lease_s``."""
    rows = conn.execute(
        _CLAIM,
        {
            "owner": owner,
            "expires": now + lease_s,
            "now": now,
            "workflow": workflow,
            "limit": limit,
        },
    ).fetchall()
    rows.sort(key=lambda row: (row[5], row[0]))
    return _records(conn, rows)


def _owned_update(
    conn: sqlite3.Connection, run_id: int, owner: str, assignments: str, params: tuple
) -> None:
    """UPDATE a run the caller must own; LeaseLost when it does not."""
    cursor = conn.execute(
        f"UPDATE runs SET {assignments} WHERE id = ? AND status = 'running' AND lease_owner = ?",
        (*params, run_id, owner),
    )
    if cursor.rowcount != 1:
        _raise_lease_lost(conn, run_id, owner)


def _raise_lease_lost(conn: sqlite3.Connection, run_id: int, owner: str) -> None:
    row = conn.execute("SELECT status, lease_owner FROM runs WHERE id = ?", (run_id,)).fetchone()
    if row is None:
        raise StoreError(f"run {run_id} does not exist")
    raise LeaseLost(f"run {run_id} is not leased to {owner} (status {row[0]}, lease {row[1]})")


def check_owner(conn: sqlite3.Connection, run_id: int, owner: str) -> None:
    """LeaseLost unless ``owner`` holds the run's lease."""
    row = conn.execute(
        "SELECT 1 FROM runs WHERE id = ? AND status = 'running' AND lease_owner = ?",
        (run_id, owner),
    ).fetchone()
    if row is None:
        _raise_lease_lost(conn, run_id, owner)


def renew(conn: sqlite3.Connection, run_id: int, owner: str, now: float, lease_s: float) -> float:
    """Extend the lease to ``now + lease_s``; return the new expiry."""
    expires = now + lease_s
    _owned_update(
        conn,
        run_id,
        owner,
        "lease_expires_at = ?, next_attempt_at = ?, updated_at = ?",
        (expires, expires, now),
    )
    return expires


def complete(conn: sqlite3.Connection, run_id: int, owner: str, now: float) -> None:
    """Mark an owned run completed and drop its lease."""
    _owned_update(
        conn,
        run_id,
        owner,
        "status = 'completed', lease_owner = NULL, lease_expires_at = NULL,"
        " last_error = NULL, updated_at = ?",
        (now,),
    )


def fail_retryable(
    conn: sqlite3.Connection,
    run_id: int,
    owner: str,
    now: float,
    next_attempt_at: float,
    error: str,
) -> None:
    """Release an owned run to ``retry_wait`` until ``next_attempt_at`` (the backoff)."""
    _owned_update(
        conn,
        run_id,
        owner,
        "status = 'retry_wait', lease_owner = NULL, lease_expires_at = NULL,"
        " next_attempt_at = ?, last_error = ?, updated_at = ?",
        (next_attempt_at, error, now),
    )


def park(conn: sqlite3.Connection, run_id: int, owner: str, now: float, error: str) -> None:
    """Move an owned run to ``waiting``: it stays unfinished (blocking its key) until the
    exception that parked it is resolved or marked for retry."""
    _owned_update(
        conn,
        run_id,
        owner,
        "status = 'waiting', lease_owner = NULL, lease_expires_at = NULL,"
        " last_error = ?, updated_at = ?",
        (error, now),
    )


def cancel(conn: sqlite3.Connection, run_id: int, now: float, reason: str) -> None:
    """Cancel an unfinished run that nobody is running (an operator's decision)."""
    cursor = conn.execute(
        "UPDATE runs SET status = 'cancelled', lease_owner = NULL, lease_expires_at = NULL,"
        f" last_error = ?, updated_at = ? WHERE id = ? AND status IN {_UNFINISHED}"
        " AND status != 'running'",
        (reason, now, run_id),
    )
    if cursor.rowcount != 1:
        row = conn.execute("SELECT status FROM runs WHERE id = ?", (run_id,)).fetchone()
        state = "does not exist" if row is None else f"is {row[0]}"
        raise StoreError(f"run {run_id} cannot be cancelled: it {state}")


def expire_leases(conn: sqlite3.Connection, now: float) -> int:
    """Return runs whose lease has expired to ``pending``; return how many.

    Claims already take expired runs; this makes a crash visible (status, metrics) and is
    what a restarting daemon calls first.
    """
    cursor = conn.execute(
        "UPDATE runs SET status = 'pending', lease_owner = NULL, lease_expires_at = NULL,"
        " next_attempt_at = ?, last_error = 'lease expired', updated_at = ?"
        " WHERE status = 'running' AND lease_expires_at <= ?",
        (now, now, now),
    )
    return cursor.rowcount


def get(conn: sqlite3.Connection, run_id: int) -> RunRecord | None:
    """One run by id."""
    rows = conn.execute(f"SELECT {_COLUMNS} FROM runs WHERE id = ?", (run_id,)).fetchall()
    records = _records(conn, rows)
    return records[0] if records else None


def select(
    conn: sqlite3.Connection,
    *,
    status: str | None,
    workflow: str | None,
    key: str | None,
    limit: int,
    after_id: int | None = None,
) -> list[RunRecord]:
    """Runs matching every given filter, oldest first; ``after_id`` pages by id."""
    # Only the given filters are in the SQL, so that the planner can pick their index.
    clauses: list[str] = []
    params: list[object] = []
    for column, value in (("status", status), ("workflow", workflow), ("key", key)):
        if value is not None:
            clauses.append(f"{column} = ?")
            params.append(value)
    if after_id is not None:
        clauses.append("id > ?")
        params.append(after_id)
    where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM runs{where} ORDER BY id LIMIT ?", (*params, limit)
    ).fetchall()
    return _records(conn, rows)


def count_by_status(
    conn: sqlite3.Connection, workflow: str | None, statuses: Sequence[str] | None
) -> dict[str, int]:
    """Runs per status (every asked-for status, zeros included), from runs_by_status."""
    wanted = list(dict.fromkeys(ALL_STATUSES if statuses is None else statuses))
    # The status list is given even when it is all of them: runs_by_status starts with
    # status, so each status is one index range, however many finished runs pile up.
    sql = "SELECT status, COUNT(*) FROM runs WHERE status IN (SELECT value FROM json_each(?))"
    params: list[object] = [_json.encode(wanted)]
    if workflow is not None:
        sql += " AND workflow = ?"
        params.append(workflow)
    counts = dict.fromkeys(wanted, 0)
    counts.update(conn.execute(sql + " GROUP BY status", params))
    return counts


def for_triggers(
    conn: sqlite3.Connection, workflow: str, seqs: Sequence[int]
) -> dict[int, list[int]]:
    """The ids of ``workflow``'s runs (replays included) that each seq triggered, oldest
    first; seqs that triggered none of its runs are left out."""
    found: dict[int, list[int]] = {}
    for seq, run_id in conn.execute(
        "SELECT t.seq, t.run_id FROM run_triggers AS t JOIN runs AS r ON r.id = t.run_id"
        " WHERE t.seq IN (SELECT value FROM json_each(?)) AND r.workflow = ?"
        " ORDER BY t.seq, t.run_id",
        (_json.encode(list(seqs)), workflow),
    ):
        found.setdefault(seq, []).append(run_id)
    return found
