"""time_expense_to_erp end to end: the scenario's approved time and expenses, through
deal_to_project's projects, into the simulated NetSuite, Kantata and Stripe.

The pipeline is tests/e2e/stack.py. Its sandbox configuration maps no consultant to a
NetSuite employee, so every time bill would be refused: :func:`stack_config` adds the
mapping (Kantata user ⇄ NetSuite employee, by e-mail, as an operator would configure
it) and lifts the governors' and the simulated vendors' rate limits, which only cost
real time under the mock clock here (the governor has its own tests).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import httpx
import msgspec
import trio

from actors.messages import Envelope, Money, PostTimeEntries, TimeApproved, TimeEntry
from actors.systems import event_record
from actors.workflows import ReplaySelection, replay
from actors.workflows.time_expense_to_erp import SPEC
from adapters.base import CommandResult
from adapters.sandbox import SandboxClock, SandboxConfig, build_sandbox
from daemon.config import Config
from tests.e2e.stack import OWNERS, START, Stack, load_sandbox_config, open_stack

WORKFLOWS = ("deal_to_project", "time_expense_to_erp", "milestone_to_invoice")
SEED = 0
FAST_VENDORS = SandboxConfig(
    seed_data=True,
    seed=SEED,
    options={
        "kantata": {"rate_per_s": 10_000.0, "burst": 10_000},
        "stripe": {"rate_limit_per_s": 10_000},
    },
)


def _employees(seed: int) -> dict[str, str]:
    """Kantata user id → NetSuite employee id, matched by e-mail (both seeded alike)."""
    sandbox = build_sandbox(
        SandboxConfig(seed_data=True, seed=seed),
        clock=SandboxClock(start=START, monotonic_source=trio.current_time),
    )
    employees = sandbox.vendors["netsuite"].state.records["employee"]
    by_email = {row["email"]: str(row_id) for row_id, row in employees.items()}
    users = sandbox.vendors["kantata"].state.tables["users"]
    return {
        user_id: by_email[user["email_address"]]
        for user_id, user in users.items()
        if user.get("email_address") in by_email
    }


def stack_config(*, unmapped_consultants: Iterable[str] = ()) -> Config:
    """The sandbox configuration with employees mapped and no rate limits to wait on."""
    config = load_sandbox_config()
    employees = _employees(SEED)
    for user_id in unmapped_consultants:
        employees.pop(user_id, None)
    systems = {}
    for name, system in config.systems.items():
        limits = msgspec.structs.replace(system.limits, rate_per_s=10_000.0, burst=10_000)
        system = msgspec.structs.replace(system, limits=limits)
        if name == "erp":
            options = msgspec.structs.replace(system.options, employees=employees)
            system = msgspec.structs.replace(system, options=options)
        systems[name] = system
    return msgspec.structs.replace(config, systems=systems)


@dataclass
class Wire:
    """Counts every request per system; can hold one kind of request after the vendor
    answered it (a crash between the vendor's effect and pssync's record of it)."""

    calls: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    hold: Callable[[str, httpx.Request], bool] | None = None
    held = None  # trio.Event, set when a request is held
    release = None  # trio.Event the held request waits for

    def wrap(self, system: str, inner: httpx.AsyncBaseTransport) -> httpx.AsyncBaseTransport:
        wire = self

        class Counting(httpx.AsyncBaseTransport):
            async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
                response = await inner.handle_async_request(request)
                wire.calls[system, request.method, _kind(request.url.path)] += 1
                if wire.hold is not None and wire.hold(system, request):
                    wire.hold = None
                    wire.held.set()
                    await wire.release.wait()
                return response

        return Counting()

    def total(self, system: str, method: str | None = None, kind: str | None = None) -> int:
        return sum(
            count
            for (s, m, k), count in self.calls.items()
            if s == system and method in (None, m) and kind in (None, k)
        )


def _kind(path: str) -> str:
    """``timebill``, ``query`` (SuiteQL), ``external_references``, ``invoiceitems``…"""
    parts = [part for part in path.split("/") if part and not part[0].isdigit()]
    if "suiteql" in path:
        return "query"
    if "record" in parts:
        return parts[parts.index("record") + 2]
    return parts[-1].removesuffix(".json") if parts else ""


async def play_week(stack: Stack) -> Any:
    """One scenario week, then wait until the pipeline has handled it (parked runs stay
    parked: until_idle does not wait for them, nor for the runs of their keys).

    Retries are settled too: with ``settle_retries=False`` until_idle may return while
    a run the runner has just claimed is not in its hands yet (running, its lease not
    expired), and the week's last runs would be missed."""
    await stack.until_idle()
    report = stack.scenario.run_week()
    stack.touched()
    await stack.until_idle()
    return report


async def wait_for_exceptions(stack: Stack, workflow: str, count: int) -> list[Any]:
    """The workflow's open exceptions, once there are ``count`` (virtual deadline)."""
    with trio.fail_after(3_600):
        while True:
            seen = stack.changes.version
            found = await stack.exceptions(workflow=workflow)
            if len(found) >= count:
                return found
            if stack.changes.version == seen:
                await stack.changes.wait()


def approved_time(stack: Stack) -> dict[str, dict[str, Any]]:
    kantata = stack.sandbox.vendors["kantata"].state
    return {i: e for i, e in kantata.tables["time_entries"].items() if e["approved"]}


def timebills_by_entry(stack: Stack) -> Counter[str]:
    netsuite = stack.sandbox.vendors["netsuite"].state
    return Counter(
        row["externalId"].removeprefix("pssync-tb-")
        for row in netsuite.records["timebill"].values()
    )


def references(stack: Stack, subject_type: str) -> dict[str, list[dict[str, Any]]]:
    kantata = stack.sandbox.vendors["kantata"].state
    found: dict[str, list[dict[str, Any]]] = {}
    for ref in kantata.tables["external_references"].values():
        if ref["subject_type"] == subject_type:
            found.setdefault(str(ref["subject_id"]), []).append(ref)
    return found


def expense_lines(stack: Stack) -> Counter[str]:
    """Expense id → journal entry lines that carry it (a posted expense has two)."""
    netsuite = stack.sandbox.vendors["netsuite"].state
    found: Counter[str] = Counter()
    for entry in netsuite.records["journalentry"].values():
        for line in entry.get("line") or []:
            memo = line.get("memo") or ""
            if memo.endswith("]") and "[" in memo:
                found[memo[memo.rindex("[") + 1 : -1]] += 1
    return found


class Delays:
    """An SLA recorder keeping the delays the two workflows observe."""

    def __init__(self) -> None:
        self.approval_to_posting: list[float] = []
        self.milestone_to_invoice: list[float] = []

    def observe_activation(self, seconds: float) -> None:
        """Not this workflow's."""

    def observe_approval_to_posting(self, seconds: float) -> None:
        self.approval_to_posting.append(seconds)

    def observe_milestone_to_invoice(self, seconds: float) -> None:
        self.milestone_to_invoice.append(seconds)


def record_delays(stack: Stack) -> Delays:
    delays = Delays()
    # WorkflowDeps is one object shared by every workflow of the pipeline.
    stack.pipeline.workflows["time_expense_to_erp"]._deps.sla = delays
    return delays


def vendor_counts(stack: Stack) -> dict[str, int]:
    counts = stack.counts()
    return {
        "timebill": counts["netsuite"]["timebill"],
        "journalentry": counts["netsuite"]["journalentry"],
        "invoiceitem": counts["stripe"]["invoiceitem"],
        "invoice": counts["stripe"]["invoice"],
        "external_references": counts["kantata"]["external_references"],
    }


async def tm_workspaces(stack: Stack) -> set[str]:
    """The Kantata workspaces of the provisioned time-and-materials deals."""
    found = set()
    for record in await stack.events("deal.won"):
        deal = msgspec.msgpack.decode(record.body, type=Envelope).body.opportunity
        if any(line.billing_type == "time_and_materials" for line in deal.lines):
            workspace = await stack.journal.system_id("project", f"PRJ-{deal.id}", "psa")
            if workspace is not None:
                found.add(workspace)
    return found


async def tm_billable(stack: Stack, entries: dict[str, dict[str, Any]]) -> Decimal:
    """Billable amount of the approved entries on time-and-materials projects."""
    workspaces = await tm_workspaces(stack)
    return sum(
        (
            Decimal(e["rate_in_cents"]) * e["time_in_minutes"] / 6000
            for e in entries.values()
            if e["workspace_id"] in workspaces and e["billable"]
        ),
        Decimal(0),
    )


def tm_invoiced(stack: Stack) -> Decimal:
    stripe = stack.sandbox.vendors["stripe"].state
    drafts = {
        obj["id"]
        for obj in stripe.objects["invoice"].values()
        if obj["metadata"].get("pssync_id", "").startswith("tm-")
    }
    return sum(
        (
            Decimal(item["amount"]) / 100
            for item in stripe.objects["invoiceitem"].values()
            if item.get("invoice") in drafts
        ),
        Decimal(0),
    )


async def test_weekly_time_and_the_month_end_spike_post_each_entry_once(
    tmp_path, autojump_clock
) -> None:
    wire = Wire()
    async with open_stack(
        tmp_path,
        workflows=WORKFLOWS,
        config=stack_config(),
        sandbox_config=FAST_VENDORS,
        wrap_transport=wire.wrap,
        scenario_options={"month_end_entries": 600},
    ) as stack:
        stack.scenario.malformed_added = True  # deal_to_project's business, not ours
        delays = record_delays(stack)
        reports = [await play_week(stack) for _ in range(4)]
        assert sum(r.time_entries_approved for r in reports) > 0  # weekly approvals
        runs_before = len(await stack.runs(workflow="time_expense_to_erp"))
        posted_before = len(timebills_by_entry(stack))
        wire.calls.clear()

        spike = await play_week(stack)  # the week holding January's month end

        assert spike.month_end_spike >= 600
        approved = approved_time(stack)
        bills = timebills_by_entry(stack)
        # Every approved entry became exactly one time bill, and the PSA knows which.
        assert set(bills) == set(approved)
        assert set(bills.values()) == {1}
        marks = references(stack, "TimeEntry")
        assert set(marks) == set(approved)
        netsuite = stack.sandbox.vendors["netsuite"].state
        bill_ids = {row["externalId"]: str(i) for i, row in netsuite.records["timebill"].items()}
        for entry_id, refs in marks.items():
            assert [(r["service_model"], r["service_model_ref"]) for r in refs] == [
                ("timebill", bill_ids[f"pssync-tb-{entry_id}"])
            ]
        assert stack.duplicates() == {}
        assert await stack.exceptions() == []
        # Expenses: each on one journal entry (debit and credit line), marked with it.
        kantata = stack.sandbox.vendors["kantata"].state
        expenses = {i for i, e in kantata.tables["expenses"].items() if e["approved"]}
        assert expenses
        assert dict(expense_lines(stack)) == dict.fromkeys(expenses, 2)
        assert set(references(stack, "Expense")) == expenses
        # One approval-to-posting delay per entry, none negative.
        assert len(delays.approval_to_posting) == len(approved) + len(expenses)
        assert min(delays.approval_to_posting) >= 0
        # Billable T&M hours are on the projects' draft invoices, to the cent.
        assert tm_invoiced(stack) == await tm_billable(stack, approved)

        # The spike in calls. NetSuite's REST record service creates one time bill per
        # request (no bulk create), so the floor is one PUT per entry; the batching is in
        # everything else: one ERP command and one SuiteQL look per project and period.
        new = len(bills) - posted_before
        runs = len(await stack.runs(workflow="time_expense_to_erp")) - runs_before
        commands = 0
        for run in (await stack.runs(workflow="time_expense_to_erp"))[runs_before:]:
            steps = await stack.journal.get_steps(run.id)
            commands += sum(1 for name in steps if name.startswith("post_time:"))
        assert new >= spike.month_end_spike
        assert commands <= new / 10 + 5
        assert wire.total("erp", "PUT", "timebill") == new
        assert wire.total("erp", "POST", "query") <= 2 * runs + math.ceil(new / 500)
        assert wire.total("erp") <= new + 3 * runs + math.ceil(new / 500)

        # Replaying the workflow's whole history posts nothing and calls no ERP.
        before = vendor_counts(stack)
        wire.calls.clear()
        result = await replay(stack.journal, SPEC, ReplaySelection(from_seq=1), now=stack.now())
        assert len(result.runs) > 0
        stack.touched()
        await stack.until_idle(settle_retries=False)
        replayed = await stack.runs(workflow="time_expense_to_erp", status="completed")
        assert sum(run.replay for run in replayed) == len(result.runs)
        assert vendor_counts(stack) == before
        assert wire.total("erp") == 0
        assert len(delays.approval_to_posting) == len(approved) + len(expenses)
        assert stack.duplicates() == {}
        assert await stack.exceptions() == []


async def test_a_crash_after_time_bills_are_posted_before_the_step_is_recorded(
    tmp_path, autojump_clock
) -> None:
    wire = Wire()
    async with open_stack(
        tmp_path,
        workflows=WORKFLOWS,
        config=stack_config(),
        sandbox_config=FAST_VENDORS,
        wrap_transport=wire.wrap,
    ) as stack:
        stack.scenario.malformed_added = True
        for _ in range(2):
            await play_week(stack)
        assert not approved_time(stack)  # the first approvals come in week three
        wire.held, wire.release = trio.Event(), trio.Event()
        wire.hold = lambda system, request: (
            system == "erp" and request.method == "PUT" and "/timebill/" in request.url.path
        )

        await stack.until_idle(settle_retries=False)
        stack.scenario.run_week()
        stack.touched()
        with trio.fail_after(600):
            await wire.held.wait()  # NetSuite has a time bill; the run has no record of it
        await stack.crash_and_restart()
        wire.release.set()
        await stack.until_idle()  # the abandoned run too, once its lease has expired

        approved = approved_time(stack)
        bills = timebills_by_entry(stack)
        assert approved
        assert set(bills) == set(approved)
        assert set(bills.values()) == {1}
        assert set(references(stack, "TimeEntry")) == set(approved)
        runs = await stack.runs(workflow="time_expense_to_erp")
        assert {run.status for run in runs} == {"completed"}
        assert max(run.attempts for run in runs) >= 2
        assert stack.duplicates() == {}
        assert await stack.exceptions() == []


def _time_approved(entry: TimeEntry, version: str) -> Envelope:
    at = datetime(2026, 1, 20, tzinfo=UTC)
    return Envelope.new(
        TimeApproved(entry=entry),
        source="psa",
        object_id=f"time_entry:{entry.id}",
        version=version,
        occurred_at=at,
        recorded_at=at,
    )


async def test_malformed_time_parks_with_a_time_exception_and_the_amount_at_risk(
    tmp_path, autojump_clock
) -> None:
    async with open_stack(
        tmp_path,
        workflows=WORKFLOWS,
        config=stack_config(unmapped_consultants=["100010"]),
        sandbox_config=FAST_VENDORS,
    ) as stack:
        stack.scenario.malformed_added = True
        await play_week(stack)  # deals won and provisioned; no time approved yet
        kantata = stack.sandbox.vendors["kantata"].state
        provisioned = sorted(
            [
                ws
                for ws in kantata.tables["workspaces"]
                if await stack.journal.canonical_id("project", "psa", ws) is not None
            ],
            key=int,
        )
        assert len(provisioned) >= 2
        rate = Money.of("150.00", "USD")

        # 1. A PSA project pssync never provisioned (created in Kantata by hand).
        [stray] = kantata.create(
            "workspaces", [{"title": "Side project", "currency": "USD", "creator_role": "maven"}]
        )
        [stray_entry] = kantata.create(
            "time_entries",
            [
                {
                    "workspace_id": stray["id"],
                    "user_id": "100002",
                    "date_performed": "2026-01-06",
                    "time_in_minutes": 120,
                    "billable": True,
                }
            ],
        )
        kantata.approve([stray_entry["id"]])
        # 2. A consultant the ERP has no employee for (left out of the mapping, and not
        #    linked by the employee sync's external id either).
        netsuite = stack.sandbox.vendors["netsuite"].state
        employee_id = netsuite.id_for_eid("employee", "pssync-emp-100010")
        del netsuite.records["employee"][employee_id]["externalId"]
        del netsuite._by_eid["employee"]["pssync-emp-100010"]
        [orphan] = kantata.create(
            "time_entries",
            [
                {
                    "workspace_id": provisioned[0],
                    "user_id": "100010",
                    "date_performed": "2026-01-06",
                    "time_in_minutes": 90,
                    "billable": True,
                }
            ],
        )
        kantata.approve([orphan["id"]])
        stack.touched()
        await stack.until_idle(settle_retries=False)
        # 3. Zero hours (Kantata refuses them; another PSA, or a bad mapping, may not).
        zero = TimeEntry(
            id="zero-1",
            project_id=provisioned[1],
            consultant_id="100002",
            date_performed=date(2026, 1, 7),
            hours=Decimal(0),
            approved=True,
            bill_rate=rate,
        )
        await stack.journal.append([event_record(_time_approved(zero, "1"))])
        stack.touched()
        found = await wait_for_exceptions(stack, "time_expense_to_erp", 3)
        by_key = {}
        for exc in found:
            run = await stack.journal.get_run(exc.run_id)
            by_key[run.key] = exc
        assert set(by_key) == {
            f"project:{stray['id']}",
            f"project:{provisioned[0]}",
            f"project:{provisioned[1]}",
        }
        assert {exc.category for exc in found} == {"time"}
        assert {exc.owner for exc in found} == {OWNERS["time"]}
        unknown = by_key[f"project:{stray['id']}"]
        assert "not provisioned" in unknown.message
        assert stray["id"] in unknown.message
        assert (unknown.amount, unknown.currency) == (
            Decimal(stray_entry["rate_in_cents"] * 2) / 100,
            "USD",
        )
        employee = by_key[f"project:{provisioned[0]}"]
        assert "employee" in employee.message
        expected = Money.of(Decimal(orphan["rate_in_cents"]) * 90 / 6000, orphan["currency"])
        assert (employee.amount, employee.currency) == (
            expected.rounded().amount,
            orphan["currency"],
        )
        hours = by_key[f"project:{provisioned[1]}"]
        assert "zero-1" in hours.message
        assert "0 hours" in hours.message
        # Nothing of the refused batches reached the ERP or was marked exported.
        assert "zero-1" not in timebills_by_entry(stack)
        assert stray_entry["id"] not in timebills_by_entry(stack)
        assert orphan["id"] not in timebills_by_entry(stack)
        assert orphan["id"] not in references(stack, "TimeEntry")


# -- refused entries: a bad entry holds back none of the good ones --------------------------

WORKFLOW = "time_expense_to_erp"
GOOD_TIME = (
    ("100002", "2026-01-05", 120),
    ("100003", "2026-01-06", 90),
    ("100005", "2026-01-07", 60),
)
"""Consultant, day and minutes of the good entries of a batch (USD rates, USD projects)."""


async def quiet_tm_workspace(stack: Stack) -> str:
    """After one scenario week: a provisioned time-and-materials project's workspace, and
    no time approved anywhere yet (the scenario's first approvals come in week three)."""
    await play_week(stack)
    assert not approved_time(stack)
    workspace = min(await tm_workspaces(stack), key=int)
    kantata = stack.sandbox.vendors["kantata"].state
    assert kantata.tables["workspaces"][workspace]["currency"] == "USD"
    return workspace


def add_time(
    stack: Stack, workspace: str, user: str, day: str, minutes: int, **changes: Any
) -> dict[str, Any]:
    """A time entry in Kantata, not approved yet. ``changes`` are written past Kantata's
    validation, as another PSA or a bad mapping could deliver them."""
    kantata = stack.sandbox.vendors["kantata"].state
    [entry] = kantata.create(
        "time_entries",
        [
            {
                "workspace_id": workspace,
                "user_id": user,
                "date_performed": day,
                "time_in_minutes": minutes,
                "billable": True,
            }
        ],
    )
    entry.update(changes)
    return entry


def approve(stack: Stack, entries: list[dict[str, Any]]) -> None:
    """One timesheet approval: the entries reach the journal together, as one batch."""
    stack.sandbox.vendors["kantata"].state.approve([entry["id"] for entry in entries])
    stack.touched()


def bill_amount(entry: dict[str, Any]) -> Money:
    rate = Money.from_minor_units(entry["rate_in_cents"], entry["currency"])
    return (rate * (Decimal(entry["time_in_minutes"]) / 60)).rounded()


def assert_posted_once_and_marked(stack: Stack, entry_ids: set[str]) -> None:
    """Exactly these entries have one NetSuite time bill each, and each is marked exported
    in Kantata with its own time bill."""
    assert timebills_by_entry(stack) == Counter(dict.fromkeys(entry_ids, 1))
    netsuite = stack.sandbox.vendors["netsuite"].state
    bill_ids = {row["externalId"]: str(i) for i, row in netsuite.records["timebill"].items()}
    marks = references(stack, "TimeEntry")
    assert set(marks) == entry_ids
    for entry_id, refs in marks.items():
        assert [(r["service_model"], r["service_model_ref"]) for r in refs] == [
            ("timebill", bill_ids[f"pssync-tb-{entry_id}"])
        ]
    assert stack.duplicates() == {}


def vendor_writes(wire: Wire) -> Counter[tuple[str, str, str]]:
    """Every request but the pollers' reads (the ERP's SuiteQL looks are POSTs: counted)."""
    return Counter(
        {call: n for call, n in wire.calls.items() if call[0] == "erp" or call[1] != "GET"}
    )


def notify_runner(stack: Stack) -> None:
    """What the control socket's exceptions retry/resolve is followed by in the daemon."""
    runner = stack.pipeline.workflows[WORKFLOW].runner
    assert runner is not None
    runner.notify()


async def next_exception(stack: Stack, *, after: int = 0) -> Any:
    """The one open exception of the workflow, once it is newer than exception ``after``."""
    with trio.fail_after(3_600):
        while True:
            seen = stack.changes.version
            found = [exc for exc in await stack.exceptions(workflow=WORKFLOW) if exc.id > after]
            if found:
                await stack.until_idle()
                [exception] = await stack.exceptions(workflow=WORKFLOW)
                return exception
            if stack.changes.version == seen:
                await stack.changes.wait()


async def refused_batch(stack: Stack) -> tuple[str, list[dict[str, Any]], dict[str, Any], Any]:
    """One approval of five entries of a T&M project: three good, one of zero hours and
    one with a bill rate in EUR. Returns the workspace, the good entries, the refused
    ones by name and the exception the batch's run opened."""
    workspace = await quiet_tm_workspace(stack)
    good = [add_time(stack, workspace, *spec) for spec in GOOD_TIME]
    refused = {
        "zero": add_time(stack, workspace, "100006", "2026-01-06", 60, time_in_minutes=0),
        "foreign": add_time(stack, workspace, "100003", "2026-01-07", 90, currency="EUR"),
    }
    approve(stack, [good[0], refused["zero"], good[1], refused["foreign"], good[2]])
    return workspace, good, refused, await next_exception(stack)


async def test_refused_entries_hold_back_none_of_the_batch_and_open_one_exception(
    tmp_path, autojump_clock
) -> None:
    async with open_stack(
        tmp_path, workflows=WORKFLOWS, config=stack_config(), sandbox_config=FAST_VENDORS
    ) as stack:
        stack.scenario.malformed_added = True
        workspace, good, refused, exception = await refused_batch(stack)

        # One run took the whole batch, opened one exception at its end and completed:
        # parked, it would hold back every later run of the project.
        [run] = await stack.runs(workflow=WORKFLOW)
        assert (run.key, len(run.trigger_seqs), run.status) == (
            f"project:{workspace}",
            5,
            "completed",
        )
        assert exception.run_id == run.id
        # The good entries are posted, each once, marked exported with its time bill and
        # billed on the project's draft invoice; the refused ones are not.
        assert_posted_once_and_marked(stack, {entry["id"] for entry in good})
        assert tm_invoiced(stack) == sum((bill_amount(e).amount for e in good), Decimal(0))
        steps = await stack.journal.get_steps(run.id)
        assert {
            "post_time:2026-01",
            "mark_time:2026-01",
            "invoice_time:2026-01",
            "refused",
        } <= set(steps)

        # The one exception names both refused entries, each with its reason.
        assert (exception.category, exception.owner) == ("time", OWNERS["time"])
        zero, foreign = refused["zero"], refused["foreign"]
        message = exception.message
        assert "2 time entries cannot be posted" in message
        assert "other 3 entries are posted" in message
        assert f"time entry {zero['id']} of consultant 100006 on 2026-01-06 has 0 hours" in message
        assert (
            f"time entry {foreign['id']} of consultant 100003 on 2026-01-07 has a bill rate "
            "in EUR, but the project bills in USD"
        ) in message
        detail = msgspec.json.decode(exception.detail)["detail"]
        assert sorted(detail["entry_ids"]) == sorted([zero["id"], foreign["id"]])
        assert {
            r["entry_id"]: (r["consultant_id"], r["date"], r["hours"]) for r in detail["refused"]
        } == {
            zero["id"]: ("100006", "2026-01-06", "0"),
            foreign["id"]: ("100003", "2026-01-07", "1.5"),
        }
        # The money at risk is the refused entries' billable amount only: the zero-hour
        # entry bills nothing, the other EUR 285.00 (not the batch's USD).
        assert bill_amount(zero) == Money.of("0.00", "USD")
        assert (exception.amount, exception.currency) == (bill_amount(foreign).amount, "EUR")
        assert bill_amount(foreign) == Money.of("285.00", "EUR")


async def test_a_replayed_refusal_posts_nothing_twice_and_corrected_entries_post_at_once(
    tmp_path, autojump_clock
) -> None:
    wire = Wire()
    async with open_stack(
        tmp_path,
        workflows=WORKFLOWS,
        config=stack_config(),
        sandbox_config=FAST_VENDORS,
        wrap_transport=wire.wrap,
    ) as stack:
        stack.scenario.malformed_added = True
        workspace, good, refused, first = await refused_batch(stack)
        good_ids = {entry["id"] for entry in good}
        refused_ids = sorted(entry["id"] for entry in refused.values())
        posted = vendor_counts(stack)
        invoiced = tm_invoiced(stack)
        wire.calls.clear()

        # 1. A replay of the project's history is a new run with no memoised step: the id
        #    map skips every posted entry (no ERP call at all), and the refusal it meets
        #    again is the one already open (same event versions), not a second exception.
        result = await replay(
            stack.journal, SPEC, ReplaySelection(key=f"project:{workspace}"), now=stack.now()
        )
        assert len(result.runs) == 1
        stack.touched()
        notify_runner(stack)
        await stack.until_idle()
        [replayed] = [run for run in await stack.runs(workflow=WORKFLOW) if run.replay]
        assert replayed.status == "completed"
        assert [exc.id for exc in await stack.exceptions(workflow=WORKFLOW)] == [first.id]
        assert vendor_writes(wire) == Counter()
        assert vendor_counts(stack) == posted
        assert_posted_once_and_marked(stack, good_ids)
        assert tm_invoiced(stack) == invoiced

        # 2. The PSA sends the two entries corrected: a new event each, a new run, which
        #    posts them at once (nothing of the project waits on the exception) …
        kantata = stack.sandbox.vendors["kantata"].state
        refused["zero"]["time_in_minutes"] = 30
        refused["foreign"]["currency"] = "USD"
        for entry in refused.values():
            kantata.touch("time_entries", entry)
        stack.touched()
        await stack.until_idle()

        assert_posted_once_and_marked(stack, good_ids | set(refused_ids))
        everything = [*good, *refused.values()]
        assert tm_invoiced(stack) == sum((bill_amount(e).amount for e in everything), Decimal(0))
        runs = await stack.runs(workflow=WORKFLOW)
        assert [run.status for run in runs] == ["completed"] * 3
        # … and the person who owns the exception closes it.
        [still_open] = await stack.exceptions(workflow=WORKFLOW)
        assert still_open.id == first.id
        assert sorted(msgspec.json.decode(first.detail)["detail"]["entry_ids"]) == refused_ids
        await stack.journal.resolve_exception(first.id, "ops", "corrected in Kantata", stack.now())
        assert await stack.exceptions() == []


async def test_a_batch_of_good_entries_posts_them_all_without_an_exception(
    tmp_path, autojump_clock
) -> None:
    async with open_stack(
        tmp_path, workflows=WORKFLOWS, config=stack_config(), sandbox_config=FAST_VENDORS
    ) as stack:
        stack.scenario.malformed_added = True
        workspace = await quiet_tm_workspace(stack)
        good = [add_time(stack, workspace, *spec) for spec in GOOD_TIME]
        approve(stack, good)
        await stack.until_idle()

        [run] = await stack.runs(workflow=WORKFLOW)
        assert (run.key, len(run.trigger_seqs), run.status) == (
            f"project:{workspace}",
            3,
            "completed",
        )
        steps = [name for name in await stack.journal.get_steps(run.id) if not name.startswith("@")]
        assert sorted(steps) == ["invoice_time:2026-01", "mark_time:2026-01", "post_time:2026-01"]
        assert_posted_once_and_marked(stack, {entry["id"] for entry in good})
        assert tm_invoiced(stack) == sum((bill_amount(e).amount for e in good), Decimal(0))
        assert await stack.exceptions() == []


async def test_an_entry_the_erp_reports_no_time_bill_for_parks_instead_of_vanishing(
    tmp_path, autojump_clock, monkeypatch
) -> None:
    async with open_stack(
        tmp_path, workflows=WORKFLOWS, config=stack_config(), sandbox_config=FAST_VENDORS
    ) as stack:
        stack.scenario.malformed_added = True
        workspace = await quiet_tm_workspace(stack)
        good = [add_time(stack, workspace, *spec) for spec in GOOD_TIME]
        lost = good[1]["id"]
        erp = stack.pipeline.systems.adapters["erp"]._adapter
        execute = erp.execute

        async def forgetful(command: Any) -> CommandResult:
            # An ERP (or adapter) that posts every entry but reports one id short.
            result = await execute(command)
            if isinstance(command, PostTimeEntries):
                ids = {name: id_ for name, id_ in result.ids.items() if name != lost}
                return msgspec.structs.replace(result, ids=ids)
            return result

        monkeypatch.setattr(erp, "execute", forgetful)
        approve(stack, good)
        exception = await next_exception(stack)

        # Not dropped in silence: the run parks naming the entry, nothing is marked yet.
        assert exception.category == "time"
        assert f"reported no time bill for 1 of 3 entries ({lost})" in exception.message
        assert references(stack, "TimeEntry") == {}
        [run] = await stack.runs(workflow=WORKFLOW)
        assert run.status == "waiting"

        # Fixed and retried: every entry posted once (found again by external id), marked.
        monkeypatch.setattr(erp, "execute", execute)
        await stack.journal.retry_exception(exception.id, "ops", "ERP fixed", stack.now())
        notify_runner(stack)
        await stack.until_idle()
        assert_posted_once_and_marked(stack, {entry["id"] for entry in good})
        assert await stack.exceptions() == []
