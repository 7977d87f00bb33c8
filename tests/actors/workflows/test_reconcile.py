"""reconcile end to end, and its scheduler on the mock clock.

A project is provisioned in Kantata and NetSuite (as deal_to_project does), consultants
log and approve a week of time in the Kantata sandbox, the PSA feed brings it in and it
is posted to NetSuite (as time_expense_to_erp does). Mismatches are planted directly in
the NetSuite sandbox state.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import msgspec
import trio

from actors import Interval
from actors.messages import (
    Account,
    AccountChanged,
    CreateProjectFromTemplate,
    Envelope,
    ExternalRef,
    FinancialDimensions,
    Money,
    PostTimeEntries,
    Project,
    ProjectActivated,
    UpsertCustomer,
    UpsertJob,
    decode_envelope,
)
from actors.workflows import ReplaySelection, replay
from actors.workflows.reconcile import SPEC
from actors.workflows.schedule import (
    ReconcileScheduler,
    last_complete_period,
    request_reconciliation,
)
from adapters.base import ProjectTotals, TotalsQuery
from store import Journal
from tests.e2e.stack import OWNERS, START, Stack, open_stack

PERIOD = (date(2026, 1, 1), date(2026, 1, 31))
DIMENSIONS = FinancialDimensions(legal_entity="PSF-US")


async def usd_account(stack: Stack) -> Account:
    for record in await stack.events("account.changed"):
        body = decode_envelope(record.body).body
        assert isinstance(body, AccountChanged)
        account = body.account
        if account.legal_entity == "PSF-US" and account.currency == "USD" and not account.parent_id:
            return account
    raise AssertionError("no USD account without a parent in the seed")


async def project_with_time(stack: Stack, project_id: str) -> Project:
    """A provisioned project whose approved January time is all posted to NetSuite."""
    deps, journal = stack.pipeline.deps, stack.journal
    account = await usd_account(stack)
    customers = {}
    for system in ("psa", "erp"):
        result = await deps.execute(
            system, UpsertCustomer(idempotency_key=f"t-{system}-{account.id}", account=account)
        )
        customers[system] = result.ids[account.id]
    project = Project(
        id=project_id,
        name=f"Reconciled {project_id}",
        account_id=account.id,
        currency="USD",
        start_date=date(2026, 1, 1),
        end_date=date(2026, 3, 31),
        dimensions=DIMENSIONS,
    )
    created = await deps.execute(
        "psa",
        CreateProjectFromTemplate(
            idempotency_key=f"t-ws-{project_id}", template_id="implementation", project=project
        ),
    )
    await journal.map_id("project", project_id, "psa", created.ids[project_id], stack.now())
    job = await deps.execute(
        "erp",
        UpsertJob(
            idempotency_key=f"t-job-{project_id}",
            project=project,
            customer_id=customers["erp"],
            dimensions=DIMENSIONS,
        ),
    )
    await journal.map_id("project", project_id, "erp", job.ids[project_id], stack.now())
    at = datetime.fromtimestamp(stack.now(), UTC)
    await deps.publish(
        journal,
        Envelope.new(
            ProjectActivated(project=project),
            source="pssync",
            object_id=project_id,
            version="activated",
            occurred_at=at,
            recorded_at=at,
        ),
    )
    stack.scenario.log_week(date(2026, 1, 5))
    stack.scenario.approve_time(before=date(2026, 1, 12), share=1.0)
    stack.touched()
    await stack.until_idle()
    workspace = created.ids[project_id]
    employees = employee_ids(stack)
    entries = []
    for record in await stack.events("time.approved"):
        entry = decode_envelope(record.body).body.entry
        if entry.project_id == workspace:
            ref = ExternalRef(
                system="erp", id=employees[entry.consultant_id], object_type="employee"
            )
            entries.append(
                msgspec.structs.replace(
                    entry, project_id=project_id, external_refs=(*entry.external_refs, ref)
                )
            )
    assert entries
    await deps.execute(
        "erp",
        PostTimeEntries(
            idempotency_key=f"t-post-{project_id}",
            project_id=project_id,
            entries=tuple(entries),
            dimensions=DIMENSIONS,
        ),
    )
    return project


def employee_ids(stack: Stack) -> dict[str, str]:
    """Kantata consultant → NetSuite employee, by e-mail (the sandbox seeds both alike)."""
    by_email = {
        str(employee.get("email", "")).lower(): str(employee_id)
        for employee_id, employee in netsuite(stack).records["employee"].items()
    }
    users = stack.sandbox.vendors["kantata"].state.tables["users"]
    return {
        user_id: by_email[str(user.get("email_address", user.get("email", ""))).lower()]
        for user_id, user in users.items()
        if str(user.get("email_address", user.get("email", ""))).lower() in by_email
    }


def netsuite(stack: Stack) -> Any:
    return stack.sandbox.vendors["netsuite"].state


async def reconcile(stack: Stack, project_ids: tuple[str, ...] = ()) -> None:
    await request_reconciliation(stack.journal, PERIOD, project_ids, "test", now=stack.now())
    stack.touched()
    await stack.until_idle()


async def test_a_planted_erp_difference_opens_one_exception(tmp_path, autojump_clock) -> None:
    async with open_stack(tmp_path, workflows=(SPEC,)) as stack:
        stack.pipeline.deps.owners = OWNERS  # what [governance.owners] gives the daemon
        await stack.until_idle()
        await project_with_time(stack, "PRJ-R1")

        await reconcile(stack)  # every provisioned project

        assert await stack.exceptions() == []
        totals = await stack.pipeline.deps.totals(
            "psa", TotalsQuery(project_id="PRJ-R1", period_start=PERIOD[0], period_end=PERIOD[1])
        )
        assert totals.hours > 0

        # Someone edits a time bill in NetSuite: 1.5 hours more than was approved.
        state = netsuite(stack)
        bill_id, bill = next(iter(state.records["timebill"].items()))
        hours = Decimal(str(bill["hours"]))
        state.update("timebill", bill_id, {"hours": float(hours + Decimal("1.5"))})

        await reconcile(stack, ("PRJ-R1",))

        [exception] = await stack.exceptions()
        assert (exception.workflow, exception.category, exception.owner) == (
            "reconcile",
            "time",
            "resource-management",
        )
        assert "PRJ-R1" in exception.message
        assert "2026-01-01 to 2026-01-31" in exception.message
        assert "difference -1.50 h" in exception.message
        assert exception.currency == "USD"
        rate = Decimal(str(bill.get("rate") or 0))
        assert exception.amount == (rate * Decimal("1.5")).quantize(Decimal("0.01"))
        runs = await stack.runs(workflow="reconcile")
        assert {run.status for run in runs} == {"completed"}

        # Reconciling again while it is open, or replaying the history, opens nothing new.
        await reconcile(stack, ("PRJ-R1",))
        await reconcile(stack)
        await replay(stack.journal, SPEC, ReplaySelection(from_seq=1), now=stack.now())
        stack.pipeline.workflows["reconcile"].runner.notify()
        await stack.until_idle()
        assert len(await stack.exceptions()) == 1
        runs = await stack.runs(workflow="reconcile")
        assert len(runs) == 8
        assert {run.status for run in runs} == {"completed"}
        assert stack.duplicates() == {}

        # Once a person has fixed the ERP and closed it, the same check is clean again.
        state.update("timebill", bill_id, {"hours": float(hours)})
        await stack.journal.resolve_exception(exception.id, "ops", "fixed", stack.now())
        await reconcile(stack, ("PRJ-R1",))
        assert await stack.exceptions() == []


async def test_a_project_the_psa_does_not_know_is_reported_and_others_compared(
    tmp_path, autojump_clock
) -> None:
    async with open_stack(tmp_path, workflows=(SPEC,)) as stack:
        await stack.until_idle()
        await project_with_time(stack, "PRJ-R2")

        await reconcile(stack, ("PRJ-GHOST", "PRJ-R2"))

        [exception] = await stack.exceptions()
        assert exception.category == "project"
        assert "PRJ-GHOST" in exception.message
        assert "could not be read" in exception.message
        [run] = await stack.runs(workflow="reconcile")
        assert run.status == "completed"


async def test_billing_is_compared_with_erp_receivables_when_offered(
    tmp_path, autojump_clock
) -> None:
    async with open_stack(tmp_path, workflows=(SPEC,)) as stack:
        await stack.until_idle()
        await project_with_time(stack, "PRJ-R3")
        erp = stack.adapters["erp"]

        async def receivables(system: str, query: TotalsQuery):
            assert system == "erp"
            return await erp.receivables(query)  # type: ignore[attr-defined]

        async def invoiced(system: str, query: TotalsQuery):
            if system == "billing":  # billing says it invoiced 300 USD; the ERP has nothing
                return ProjectTotals(
                    system="billing",
                    project_id=query.project_id,
                    period_start=query.period_start,
                    period_end=query.period_end,
                    amount=Money.of("300.00", "USD"),
                    entries=1,
                )
            return await totals(system, query)

        deps = stack.pipeline.deps
        totals = deps.totals
        deps.receivables = receivables
        deps.totals = invoiced

        await reconcile(stack, ("PRJ-R3",))

        [exception] = await stack.exceptions()
        assert exception.category == "billing"
        assert (exception.amount, exception.currency) == (Decimal("300.00"), "USD")
        assert "invoiced 300.00 USD" in exception.message


async def appended(journal: Journal) -> list[Any]:
    """The ReconciliationRequested bodies in the journal, in order."""
    records = await journal.read_events(0, 1_000, ["reconciliation.requested"])
    return [decode_envelope(record.body).body for record in records]


async def test_scheduler_requests_each_period_once(journal: Journal, autojump_clock) -> None:
    def wall() -> float:
        return START + 6 * 3600 + trio.current_time()  # 06:00 UTC on 2026-01-01

    async with trio.open_nursery() as nursery:
        # Ticks every 4 h, heartbeats every 2 h: each wake-up costs the autojump clock
        # 20 ms of real time.
        scheduler = ReconcileScheduler(
            journal,
            interval_s=4 * 3_600,
            now=wall,
            heartbeat_interval_s=7_200,
            heartbeat_timeout_s=20_000,
        )
        await nursery.start(scheduler.run)
        await trio.sleep(3 * 86_400 - 3_600)  # three days, six ticks a day (06:00, 10:00, …)
        scheduler.request_stop()

    requests = await appended(journal)
    assert [(r.period_start, r.period_end) for r in requests] == [
        (date(2025, 12, 31), date(2025, 12, 31)),
        (date(2026, 1, 1), date(2026, 1, 1)),
        (date(2026, 1, 2), date(2026, 1, 2)),
        (date(2026, 1, 3), date(2026, 1, 3)),
    ]
    assert {r.requested_by for r in requests} == {"schedule"}

    # A restart within the same day requests nothing new.
    restarted = ReconcileScheduler(journal, interval_s=4 * 3_600, now=wall)
    assert await restarted.tick() is False
    assert len(await appended(journal)) == 4


async def test_a_changed_interval_reaches_the_running_scheduler(
    journal: Journal, autojump_clock
) -> None:
    def wall() -> float:
        return START + 6 * 3600 + trio.current_time()  # 06:00 UTC on 2026-01-01

    interval = Interval(None)  # off: reconcile on demand only
    async with trio.open_nursery() as nursery:
        # Heartbeats every 12 h: each wake-up costs the autojump clock 20 ms of real time.
        scheduler = ReconcileScheduler(
            journal, interval_s=interval, now=wall, heartbeat_interval_s=43_200,
            heartbeat_timeout_s=100_000,
        )  # fmt: skip
        await nursery.start(scheduler.run)
        await trio.sleep(2 * 86_400 + 3_600)
        assert await appended(journal) == []

        interval.set(86_400)  # on: the missed day is requested within a heartbeat
        await trio.sleep(43_200)
        assert [r.period_end for r in await appended(journal)] == [date(2026, 1, 2)]

        interval.set(7 * 86_400)  # weekly from that tick: nothing for six days …
        await trio.sleep(6 * 86_400)
        assert len(await appended(journal)) == 1
        await trio.sleep(36 * 3_600)  # … then the first whole week
        assert [(r.period_start, r.period_end) for r in await appended(journal)][1] == (
            date(2026, 1, 1),
            date(2026, 1, 7),
        )

        interval.set(None)  # off again
        await trio.sleep(14 * 86_400)
        assert len(await appended(journal)) == 2
        scheduler.request_stop()


def test_periods_are_whole_windows_of_days() -> None:
    noon = datetime(2026, 1, 15, 12, tzinfo=UTC).timestamp()
    assert last_complete_period(noon, 86_400) == (date(2026, 1, 14), date(2026, 1, 14))
    assert last_complete_period(noon, 3_600) == (date(2026, 1, 14), date(2026, 1, 14))
    start, end = last_complete_period(noon, 7 * 86_400)
    assert (end - start).days == 6
    assert end < date(2026, 1, 15)


async def test_on_demand_requests_are_each_new(journal: Journal, autojump_clock) -> None:
    first = await request_reconciliation(journal, PERIOD, ("B", "A"), "ops", now=START)
    second = await request_reconciliation(journal, PERIOD, ("A", "B"), "ops", now=START + 1)
    assert first.id != second.id
    assert first.body.project_ids == ("A", "B")
    assert len(await appended(journal)) == 2
