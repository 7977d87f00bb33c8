"""Marking entries exported, and the reconciliation totals."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from actors.errors import PermanentError, RetryableError
from actors.messages import ExternalRef, MarkEntriesExported, Money, TimeEntry
from adapters.base import TotalsQuery
from adapters.kantata import KantataAdapter
from adapters.sandbox import FaultConfig, Sandbox
from adapters.sandbox.kantata import KantataState
from adapters.sandbox.scenario import Scenario

from .conftest import Recorder, create_command

TIME_BILL = ExternalRef(system="erp", id="TB-77", object_type="timebill")


async def one_project_with_time(adapter: KantataAdapter, sandbox: Sandbox) -> str:
    result = await adapter.execute(create_command())
    scenario = Scenario(sandbox, seed=5, month_end_entries=300)
    for _ in range(5):
        scenario.run_week()
    return result.ids["workspace"]


def approved(state: KantataState, workspace_id: str, kind: str = "time_entries") -> list[str]:
    return sorted(
        (
            i
            for i, e in state.tables[kind].items()
            if e["approved"] and e["workspace_id"] == workspace_id
        ),
        key=int,
    )


def export_refs(state: KantataState, subject_type: str) -> list[dict]:
    return [
        r
        for r in state.tables["external_references"].values()
        if r["subject_type"] == subject_type and r["service_name"] == "pssync"
    ]


def mark(time_ids=(), expense_ids=(), document: ExternalRef = TIME_BILL) -> MarkEntriesExported:
    return MarkEntriesExported(
        idempotency_key=f"mark:{document.id}",
        correlation_id="corr-mark",
        time_entry_ids=tuple(time_ids),
        expense_entry_ids=tuple(expense_ids),
        exported_to=document,
    )


async def test_marking_twice_is_a_no_op(
    autojump_clock, adapter: KantataAdapter, sandbox: Sandbox, state: KantataState
) -> None:
    workspace_id = await one_project_with_time(adapter, sandbox)
    entries = approved(state, workspace_id)[:250]
    expenses = approved(state, workspace_id, "expenses")
    assert len(entries) == 250
    assert expenses
    first = await adapter.execute(mark(entries, expenses))
    assert first.details == {"marked": str(len(entries) + len(expenses)), "already_marked": "0"}
    refs_before = len(state.tables["external_references"])
    second = await adapter.execute(mark(entries, expenses))
    assert second.details == {"marked": "0", "already_marked": str(len(entries) + len(expenses))}
    assert len(state.tables["external_references"]) == refs_before
    refs = export_refs(state, "TimeEntry")
    assert sorted((r["subject_id"] for r in refs), key=int) == entries
    assert {(r["service_model"], r["service_model_ref"], r["external_message"]) for r in refs} == {
        ("timebill", "TB-77", "exported to erp")
    }
    assert len(export_refs(state, "Expense")) == len(expenses)


async def test_marking_reads_in_batches(
    autojump_clock,
    adapter: KantataAdapter,
    sandbox: Sandbox,
    state: KantataState,
    recorder: Recorder,
) -> None:
    workspace_id = await one_project_with_time(adapter, sandbox)
    entries = approved(state, workspace_id)[:400]
    await adapter.execute(mark(entries))
    recorder.requests.clear()
    await adapter.execute(mark(entries))
    # Already marked: two reads of 200 ids, no writes.
    assert [r.method for r in recorder.requests] == ["GET", "GET"]
    assert {r.headers["X-Correlation-ID"] for r in recorder.requests} == {"corr-mark"}


async def test_an_entry_exported_to_another_document_fails_loudly(
    autojump_clock, adapter: KantataAdapter, sandbox: Sandbox, state: KantataState
) -> None:
    workspace_id = await one_project_with_time(adapter, sandbox)
    entries = approved(state, workspace_id)[:5]
    await adapter.execute(mark(entries[:1]))
    other = ExternalRef(system="erp", id="TB-78", object_type="timebill")
    with pytest.raises(PermanentError, match=f"TimeEntry {entries[0]} already exported"):
        await adapter.execute(mark(entries, document=other))
    # The others were marked before the failure was raised.
    marked = {r["subject_id"]: r["service_model_ref"] for r in export_refs(state, "TimeEntry")}
    assert marked == {entries[0]: "TB-77", **{e: "TB-78" for e in entries[1:]}}


async def test_an_unknown_entry_fails_loudly(
    autojump_clock, adapter: KantataAdapter, sandbox: Sandbox, state: KantataState
) -> None:
    workspace_id = await one_project_with_time(adapter, sandbox)
    entries = approved(state, workspace_id)[:2]
    with pytest.raises(PermanentError, match="TimeEntry 999999 not found"):
        await adapter.execute(mark([*entries, "999999"]))
    assert len(export_refs(state, "TimeEntry")) == 2


async def test_marking_under_faults_marks_each_entry_once(
    autojump_clock, adapter: KantataAdapter, sandbox: Sandbox, state: KantataState
) -> None:
    workspace_id = await one_project_with_time(adapter, sandbox)
    entries = approved(state, workspace_id)[:120]
    sandbox.injectors["kantata"].configure(
        FaultConfig(error_rate=0.2, burst_429_every=9, burst_429_length=2, seed=4)
    )
    for _ in range(20):
        try:
            await adapter.execute(mark(entries))
            break
        except RetryableError:
            continue
    assert sandbox.injectors["kantata"].stats.errors > 0
    refs = export_refs(state, "TimeEntry")
    assert sorted((r["subject_id"] for r in refs), key=int) == entries


async def test_totals_for_a_project_and_period(
    autojump_clock, adapter: KantataAdapter, sandbox: Sandbox, state: KantataState
) -> None:
    workspace_id = await one_project_with_time(adapter, sandbox)
    start, end = date(2026, 1, 1), date(2026, 1, 31)
    rows = [
        e
        for e in state.tables["time_entries"].values()
        if e["workspace_id"] == workspace_id
        and e["approved"]
        and start.isoformat() <= e["date_performed"] <= end.isoformat()
    ]
    assert len(rows) > 200, "more than one page"
    expected_hours = sum(Decimal(e["time_in_minutes"]) / 60 for e in rows)
    expected_amount = Money.zero("USD")
    for e in rows:
        entry = TimeEntry(
            id=e["id"],
            project_id=workspace_id,
            consultant_id=e["user_id"],
            date_performed=date.fromisoformat(e["date_performed"]),
            hours=Decimal(e["time_in_minutes"]) / 60,
            billable=e["billable"],
            bill_rate=Money.from_minor_units(e["rate_in_cents"], "USD"),
        )
        if (billed := entry.bill_amount()) is not None:
            expected_amount += billed
    totals = await adapter.totals(
        TotalsQuery(project_id="PRJ-1", period_start=start, period_end=end)
    )
    assert totals.system == "psa"
    assert totals.project_id == "PRJ-1"
    assert totals.entries == len(rows)
    assert totals.hours == expected_hours
    assert totals.amount == expected_amount


async def test_totals_of_an_unknown_project_are_permanent(
    autojump_clock, adapter: KantataAdapter
) -> None:
    query = TotalsQuery(
        project_id="PRJ-404", period_start=date(2026, 1, 1), period_end=date(2026, 1, 31)
    )
    with pytest.raises(PermanentError, match="PRJ-404"):
        await adapter.totals(query)
