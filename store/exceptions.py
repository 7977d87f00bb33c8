"""The exception queue: problems a person must decide on, with the money at risk.

Amounts are Decimal, stored as TEXT with their ISO currency; never REAL. An exception
that parked a run (``run_id`` set, run ``waiting``) releases it when closed: ``retry``
makes the run claimable again at once, ``resolve`` cancels it (handled by hand).
"""

from __future__ import annotations

import sqlite3
from decimal import MAX_PREC, Context, Decimal, Inexact, localcontext

from actors.errors import StoreError

from . import runs
from .records import ExceptionCount, ExceptionRecord

_COLUMNS = (
    "id, run_id, workflow, category, owner, amount, currency, message, detail,"
    " correlation_id, status, opened_at, updated_at, resolved_at, resolved_by, resolution"
)


def open_(
    conn: sqlite3.Connection,
    *,
    run_id: int | None,
    workflow: str,
    category: str,
    owner: str,
    amount: Decimal | None,
    currency: str | None,
    message: str,
    detail: bytes,
    correlation_id: str,
    now: float,
) -> ExceptionRecord:
    """Open an exception and return it."""
    if amount is not None:
        if not isinstance(amount, Decimal) or not amount.is_finite():
            raise StoreError(f"exception amount must be a finite Decimal, not {amount!r}")
        if not currency:
            raise StoreError("an exception with an amount needs its currency")
    row = conn.execute(
        "INSERT INTO exceptions (run_id, workflow, category, owner, amount, currency, message,"
        " detail, correlation_id, status, opened_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'open', ?, ?)"
        f" RETURNING {_COLUMNS}",
        (
            run_id,
            workflow,
            category,
            owner,
            None if amount is None else str(amount),
            currency,
            message,
            detail,
            correlation_id,
            now,
            now,
        ),
    ).fetchone()
    return _record(row)


def park_run(
    conn: sqlite3.Connection,
    run_id: int,
    run_owner: str,
    *,
    category: str,
    owner: str,
    amount: Decimal | None,
    currency: str | None,
    message: str,
    detail: bytes,
    now: float,
) -> ExceptionRecord:
    """Park an owned run as ``waiting`` and open its exception, atomically.

    The exception takes its workflow and correlation id from the run.
    """
    runs.park(conn, run_id, run_owner, now, message)
    workflow, correlation_id = conn.execute(
        "SELECT workflow, correlation_id FROM runs WHERE id = ?", (run_id,)
    ).fetchone()
    return open_(
        conn,
        run_id=run_id,
        workflow=workflow,
        category=category,
        owner=owner,
        amount=amount,
        currency=currency,
        message=message,
        detail=detail,
        correlation_id=correlation_id,
        now=now,
    )


def _close(
    conn: sqlite3.Connection, exception_id: int, status: str, by: str, note: str, now: float
) -> ExceptionRecord:
    row = conn.execute(
        "UPDATE exceptions SET status = ?, resolved_at = ?, resolved_by = ?, resolution = ?,"
        f" updated_at = ? WHERE id = ? AND status = 'open' RETURNING {_COLUMNS}",
        (status, now, by, note, now, exception_id),
    ).fetchone()
    if row is None:
        current = get(conn, exception_id)
        state = "does not exist" if current is None else f"is already {current.status}"
        raise StoreError(f"exception {exception_id} cannot be closed: it {state}")
    return _record(row)


def resolve(
    conn: sqlite3.Connection, exception_id: int, by: str, resolution: str, now: float
) -> ExceptionRecord:
    """Close as handled by hand; a run parked on it is cancelled."""
    record = _close(conn, exception_id, "resolved", by, resolution, now)
    if record.run_id is not None:
        conn.execute(
            "UPDATE runs SET status = 'cancelled', last_error = ?, updated_at = ?"
            " WHERE id = ? AND status = 'waiting'",
            (f"resolved by {by}: {resolution}", now, record.run_id),
        )
    return record


def retry(
    conn: sqlite3.Connection, exception_id: int, by: str, note: str, now: float
) -> ExceptionRecord:
    """Close for retry; a run parked on it becomes claimable at ``now``."""
    record = _close(conn, exception_id, "retry", by, note, now)
    if record.run_id is not None:
        conn.execute(
            "UPDATE runs SET status = 'pending', next_attempt_at = ?, updated_at = ?"
            " WHERE id = ? AND status = 'waiting'",
            (now, now, record.run_id),
        )
    return record


def assign(conn: sqlite3.Connection, exception_id: int, owner: str, now: float) -> ExceptionRecord:
    """Give an open exception to another owner."""
    row = conn.execute(
        f"UPDATE exceptions SET owner = ?, updated_at = ? WHERE id = ? RETURNING {_COLUMNS}",
        (owner, now, exception_id),
    ).fetchone()
    if row is None:
        raise StoreError(f"exception {exception_id} does not exist")
    return _record(row)


def get(conn: sqlite3.Connection, exception_id: int) -> ExceptionRecord | None:
    """One exception by id."""
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM exceptions WHERE id = ?", (exception_id,)
    ).fetchone()
    return None if row is None else _record(row)


def select(
    conn: sqlite3.Connection,
    *,
    status: str | None,
    workflow: str | None,
    category: str | None,
    owner: str | None,
    older_than: float | None,
    limit: int,
) -> list[ExceptionRecord]:
    """Exceptions matching every given filter, oldest first; ``older_than`` is an epoch
    time: only exceptions opened before it."""
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM exceptions WHERE (:status IS NULL OR status = :status)"
        " AND (:workflow IS NULL OR workflow = :workflow)"
        " AND (:category IS NULL OR category = :category)"
        " AND (:owner IS NULL OR owner = :owner)"
        " AND (:older_than IS NULL OR opened_at < :older_than)"
        " ORDER BY opened_at, id LIMIT :limit",
        {
            "status": status,
            "workflow": workflow,
            "category": category,
            "owner": owner,
            "older_than": older_than,
            "limit": limit,
        },
    )
    return [_record(row) for row in rows]


def counts(conn: sqlite3.Connection, status: str | None) -> list[ExceptionCount]:
    """Exceptions (of ``status``; None: any) per workflow and category, with the money
    at risk per currency and the oldest ``opened_at``; ordered by workflow, category.

    One pass over exceptions_by_workflow. Amounts come back as their TEXT, joined per
    group, and are summed as Decimal here: SQL's SUM would go through a float.
    """
    where = "" if status is None else " WHERE status = ?"
    rows = conn.execute(
        "SELECT workflow, category, currency, COUNT(*), MIN(opened_at),"
        f" group_concat(amount, ' ') FROM exceptions{where}"
        " GROUP BY workflow, category, currency",
        () if status is None else (status,),
    )
    groups: dict[tuple[str, str], tuple[int, float, dict[str, Decimal]]] = {}
    # Exact sums whatever the digits: the default context would round at 28 of them.
    with localcontext(Context(prec=MAX_PREC, traps=[Inexact])):
        for workflow, category, currency, count, oldest, amounts in rows:
            total, first, at_risk = groups.get((workflow, category), (0, oldest, {}))
            if amounts is not None and currency:
                at_risk[currency] = at_risk.get(currency, Decimal(0)) + sum(
                    (abs(Decimal(amount)) for amount in amounts.split(" ")), Decimal(0)
                )
            groups[workflow, category] = (total + count, min(first, oldest), at_risk)
    return [
        ExceptionCount(
            workflow=workflow,
            category=category,
            count=total,
            oldest_opened_at=float(oldest),
            money_at_risk=dict(sorted(at_risk.items())),
        )
        for (workflow, category), (total, oldest, at_risk) in sorted(groups.items())
    ]


def _record(row: tuple) -> ExceptionRecord:
    return ExceptionRecord(
        id=row[0],
        run_id=row[1],
        workflow=row[2],
        category=row[3],
        owner=row[4],
        amount=None if row[5] is None else Decimal(row[5]),
        currency=row[6],
        message=row[7],
        detail=row[8],
        correlation_id=row[9],
        status=row[10],
        # RETURNING yields values before REAL affinity applies: coerce.
        opened_at=float(row[11]),
        updated_at=float(row[12]),
        resolved_at=None if row[13] is None else float(row[13]),
        resolved_by=row[14],
        resolution=row[15],
    )
