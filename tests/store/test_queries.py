"""Counts and selective reads: exact answers, and the index each query runs on."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from msgspec.structs import replace

from store import ExceptionCount, Journal, NewRun
from store import events as store_events
from store import exceptions as store_exceptions
from store import runs as store_runs

from .conftest import event

T0 = 1_700_000_000.0


def new_run(*seqs: int, workflow: str = "w", key: str = "P-1", replay: bool = False) -> NewRun:
    return NewRun(workflow=workflow, key=key, trigger_seqs=seqs, correlation_id="c", replay=replay)


async def mixed_events(journal: Journal) -> None:
    """seq 1..8: two keys, two types."""
    await journal.append(
        [
            event("a", key="P-1", type="DealWon"),
            event("b", key="P-1"),
            event("c", key="P-2"),
            event("d", key="P-2", type="DealWon"),
            event("e", key="P-1"),
            event("f", key="P-3"),
            event("g", key="P-1", type="DealWon"),
            event("h", key="P-2"),
        ]
    )


# --- events -------------------------------------------------------------------------


async def test_count_events_matches_what_read_events_returns(journal: Journal) -> None:
    await mixed_events(journal)

    cases: list[tuple[int, list[str] | None, str | None]] = [
        (0, None, None),
        (3, None, None),
        (0, ["DealWon"], None),
        (1, ["DealWon", "TimeApproved"], None),
        (0, None, "P-1"),
        (2, None, "P-1"),
        (0, ["DealWon"], "P-1"),
        (0, ["Nothing"], None),
        (0, [], None),
        (8, None, None),
    ]
    for after, types, key in cases:
        read = await journal.read_events(after, 1_000, types, key=key)
        assert await journal.count_events(after, types, key=key) == len(read), (after, types, key)
    assert await journal.count_events(0, ["DealWon"]) == 3
    assert await journal.count_events(0, key="P-2") == 3


async def test_read_events_by_key_in_seq_order_and_pages(journal: Journal) -> None:
    await mixed_events(journal)

    assert [e.id for e in await journal.read_events(key="P-1")] == ["a", "b", "e", "g"]
    assert [e.id for e in await journal.read_events(2, 2, key="P-1")] == ["e", "g"]
    assert [e.id for e in await journal.read_events(types=["DealWon"], key="P-2")] == ["d"]
    assert await journal.read_events(key="P-9") == []


def recorded(event_id: str, at: float, **kw: Any):
    return replace(event(event_id, **kw), recorded_at=at)


async def test_read_events_since_keeps_every_late_event_even_out_of_order(
    journal: Journal,
) -> None:
    # recorded_at mostly rises with seq; "s" was recorded under a clock that stepped back.
    await journal.append(
        [
            recorded("o1", 100.0),
            recorded("o2", 200.0),
            recorded("n1", 500.0),
            recorded("s", 300.0),
            recorded("n2", 600.0),
            recorded("n3", 400.0, key="P-2"),
            recorded("o3", 399.0),
        ]
    )

    everything = [e.id for e in await journal.read_events(since=400.0)]
    paged: list[str] = []
    after = 0
    while page := await journal.read_events(after, 1, since=400.0):
        paged += [e.id for e in page]
        after = page[-1].seq

    assert everything == ["n1", "n2", "n3"]
    assert paged == everything
    assert [e.id for e in await journal.read_events(since=300.0)] == ["n1", "s", "n2", "n3", "o3"]
    assert [e.id for e in await journal.read_events(since=400.0, key="P-2")] == ["n3"]
    assert await journal.read_events(since=601.0) == []
    assert await journal.read_events(5, since=500.0) == []
    assert len(await journal.read_events(since=0.0)) == 7


# --- runs ---------------------------------------------------------------------------


async def test_count_runs_by_status_exact_with_zeros(journal: Journal) -> None:
    await mixed_events(journal)
    await journal.create_runs(
        [
            new_run(1, key="A"),
            new_run(2, key="B"),
            new_run(3, key="C"),
            new_run(4, workflow="v", key="A"),
        ],
        now=T0,
    )
    [first] = await journal.claim_runs("x", now=T0, lease_s=60, limit=1, workflow="w")
    await journal.complete_run(first.id, "x", now=T0)
    await journal.claim_runs("x", now=T0, lease_s=60, limit=1, workflow="w")

    assert await journal.count_runs() == {
        "pending": 2,
        "running": 1,
        "retry_wait": 0,
        "waiting": 0,
        "completed": 1,
        "cancelled": 0,
    }
    assert await journal.count_runs(workflow="w", statuses=["pending", "completed"]) == {
        "pending": 1,
        "completed": 1,
    }
    assert await journal.count_runs(workflow="v", statuses=["pending"]) == {"pending": 1}
    assert await journal.count_runs(workflow="nope", statuses=["pending"]) == {"pending": 0}
    assert await journal.count_runs(statuses=[]) == {}


async def test_count_runs_is_not_capped(journal: Journal) -> None:
    count = 12_000
    await journal.append([event(f"e{i}", key=f"P-{i}") for i in range(count)])
    await journal.create_runs([new_run(i + 1, key=f"P-{i}") for i in range(count)], now=T0)

    assert await journal.count_runs(workflow="w", statuses=["pending"]) == {"pending": count}
    assert await journal.count_events(0, ["TimeApproved"]) == count


async def test_runs_for_triggers_maps_each_seq_to_its_runs(journal: Journal) -> None:
    await mixed_events(journal)
    [grouped, single, _other, replayed] = await journal.create_runs(
        [
            new_run(2, 3, 5),
            new_run(6, key="P-3"),
            new_run(2, workflow="v"),
            new_run(6, key="P-3", replay=True),
        ],
        now=T0,
    )

    found = await journal.runs_for_triggers("w", [6, 5, 2, 3, 7, 99])

    assert found == {2: [grouped], 3: [grouped], 5: [grouped], 6: [single, replayed]}
    assert await journal.runs_for_triggers("w", []) == {}
    assert await journal.runs_for_triggers("nope", [2]) == {}


async def test_list_runs_pages_with_after_id(journal: Journal) -> None:
    await mixed_events(journal)
    await journal.create_runs(
        [new_run(seq, key="P-1" if seq % 2 else "P-2") for seq in range(1, 8)], now=T0
    )

    pages: list[list[int]] = []
    after: int | None = None
    while page := await journal.list_runs(workflow="w", key="P-1", limit=2, after_id=after):
        pages.append([run.id for run in page])
        after = page[-1].id

    assert pages == [[1, 3], [5, 7]]
    assert [r.id for r in await journal.list_runs(after_id=5)] == [6, 7]
    assert [r.id for r in await journal.list_runs(limit=3)] == [1, 2, 3]  # default unchanged
    assert [r.trigger_seqs for r in await journal.list_runs(status="pending", after_id=6)] == [(7,)]


# --- exceptions ---------------------------------------------------------------------


async def open_exception(
    journal: Journal,
    workflow: str,
    category: str,
    at: float,
    amount: str | None = None,
    currency: str | None = None,
) -> int:
    opened = await journal.open_exception(
        workflow=workflow,
        category=category,
        owner="fin",
        message="m",
        correlation_id="c",
        now=at,
        amount=None if amount is None else Decimal(amount),
        currency=currency,
    )
    return opened.id


async def test_count_exceptions_groups_with_exact_money_and_oldest(journal: Journal) -> None:
    await open_exception(journal, "invoice", "permanent", T0 + 30, "0.1", "EUR")
    await open_exception(journal, "invoice", "permanent", T0 + 10, "0.2", "EUR")
    await open_exception(journal, "invoice", "permanent", T0 + 20, "-0.05", "EUR")
    await open_exception(journal, "invoice", "permanent", T0 + 40, "7", "USD")
    await open_exception(journal, "invoice", "permanent", T0 + 5)  # no money: counted
    big = "12345678901234567890123456.789"  # beyond the default 28-digit context
    await open_exception(journal, "invoice", "validation", T0 + 50, big, "JPY")
    await open_exception(journal, "invoice", "validation", T0 + 60, "0.000000001", "JPY")
    await open_exception(journal, "deal", "mismatch", T0 + 70, "1.00", "EUR")
    closed = await open_exception(journal, "deal", "mismatch", T0 + 1, "99", "EUR")
    await journal.resolve_exception(closed, "fin", "ok", now=T0 + 80)

    counts = await journal.count_exceptions()

    assert counts == [
        ExceptionCount(
            workflow="deal",
            category="mismatch",
            count=1,
            oldest_opened_at=T0 + 70,
            money_at_risk={"EUR": Decimal("1.00")},
        ),
        ExceptionCount(
            workflow="invoice",
            category="permanent",
            count=5,
            oldest_opened_at=T0 + 5,
            money_at_risk={"EUR": Decimal("0.35"), "USD": Decimal("7")},
        ),
        ExceptionCount(
            workflow="invoice",
            category="validation",
            count=2,
            oldest_opened_at=T0 + 50,
            money_at_risk={"JPY": Decimal("12345678901234567890123456.789000001")},
        ),
    ]
    [resolved] = await journal.count_exceptions(status="resolved")
    assert (resolved.count, resolved.money_at_risk) == (1, {"EUR": Decimal("99")})
    assert sum(c.count for c in await journal.count_exceptions(status=None)) == 9
    assert await journal.count_exceptions(status="retry") == []


# --- query plans --------------------------------------------------------------------


class Explaining:
    """Stands in for a connection: records the plan of each statement, then runs it."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.plans: list[str] = []

    def execute(self, sql: str, params: Any = ()) -> sqlite3.Cursor:
        plan = self.conn.execute("EXPLAIN QUERY PLAN " + sql, params).fetchall()
        self.plans.append(" | ".join(row[3] for row in plan))
        return self.conn.execute(sql, params)


async def populated(journal: Journal) -> sqlite3.Connection:
    await mixed_events(journal)
    await journal.create_runs([new_run(2, 3), new_run(4, key="P-2")], now=T0)
    await open_exception(journal, "w", "c", T0, "1.5", "EUR")
    return sqlite3.connect(journal.path, isolation_level=None)


PlanCase = tuple[str, Callable[[Any], object], str]

PLANS: list[PlanCase] = [
    (
        "count by type scans only past the cursor",
        lambda c: store_events.count_after(c, 3, ["DealWon", "X"], None),
        "SEARCH events USING INTEGER PRIMARY KEY (rowid>?)",
    ),
    (
        "count by key scans past the cursor (no key index: appends stay fast)",
        lambda c: store_events.count_after(c, 3, None, "P-1"),
        "SEARCH events USING INTEGER PRIMARY KEY (rowid>?)",
    ),
    (
        "count by key and type",
        lambda c: store_events.count_after(c, 3, ["DealWon"], "P-1"),
        "SEARCH events USING INTEGER PRIMARY KEY (rowid>?)",
    ),
    (
        "read by key scans in seq order",
        lambda c: store_events.read_after(c, 0, 10, ["DealWon"], "P-1"),
        "SEARCH events USING INTEGER PRIMARY KEY (rowid>?)",
    ),
    (
        "read by type keeps the seq-ordered scan",
        lambda c: store_events.read_after(c, 0, 10, ["DealWon"]),
        "SEARCH events USING INTEGER PRIMARY KEY (rowid>?)",
    ),
    (
        "skip to since",
        lambda c: store_events.read_after(c, 0, 10, None, None, 2e9),
        "SEARCH events USING COVERING INDEX events_by_recorded_at (recorded_at>?)",
    ),
    (
        "count runs",
        lambda c: store_runs.count_by_status(c, None, None),
        "SEARCH runs USING COVERING INDEX runs_by_status (status=?)",
    ),
    (
        "count one workflow's runs",
        lambda c: store_runs.count_by_status(c, "w", ["pending"]),
        "SEARCH runs USING COVERING INDEX runs_by_status (status=? AND workflow=?)",
    ),
    (
        "runs for triggers",
        lambda c: store_runs.for_triggers(c, "w", [2, 4]),
        "SEARCH t USING COVERING INDEX run_triggers_by_seq (seq=?)",
    ),
    (
        "list one key's runs",
        lambda c: store_runs.select(c, status=None, workflow="w", key="P-1", limit=10, after_id=1),
        "SEARCH runs USING INDEX runs_by_key (workflow=? AND key=? AND id>?)",
    ),
    (
        "count exceptions",
        lambda c: store_exceptions.counts(c, "open"),
        "SEARCH exceptions USING COVERING INDEX exceptions_by_workflow (status=?)",
    ),
]


@pytest.mark.parametrize(("name", "query", "expected"), PLANS, ids=[case[0] for case in PLANS])
async def test_query_uses_its_index(
    journal: Journal, name: str, query: Callable[[Any], object], expected: str
) -> None:
    conn = await populated(journal)
    explaining = Explaining(conn)
    try:
        query(explaining)
    finally:
        conn.close()

    matching = [plan for plan in explaining.plans if expected in plan]
    assert matching, explaining.plans
    assert all("TEMP B-TREE" not in plan for plan in matching), matching
