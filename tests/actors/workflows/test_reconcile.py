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
    CreateInvoice,
    CreateProjectFromTemplate,
    Envelope,
    ExternalRef,
    FinalizeInvoice,
    FinancialDimensions,
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    Money,
    PostInvoice,
    PostTimeEntries,
    Project,
    ProjectActivated,
    UpsertCustomer,
    UpsertJob,
    decode_envelope,
)
from actors.workflows import ReplaySelection, replay
from actors.workflows.reconcile import SPEC, Reading
from actors.workflows.schedule import (
    ReconcileScheduler,
    last_complete_period,
    request_reconciliation,
)
from adapters.base import TotalsQuery
from adapters.netsuite import NetSuiteAdapter
from store import Journal
from tests.e2e.stack import START, Stack, open_stack

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


async def issue_invoice(
    stack: Stack, project: Project, number: int, amount: str, *, to_erp: bool = True
) -> str:
    """A project invoice issued in billing as milestone_to_invoice issues it (created,
    finalized) and, with ``to_erp``, posted to the ERP against the project's job; returns
    NetSuite's invoice id ("" when not posted)."""
    deps = stack.pipeline.deps
    price = Money.of(amount, "USD")
    invoice = Invoice(
        id=f"ms-{project.id}-{number}",
        account_id=project.account_id,
        project_id=project.id,
        currency="USD",
        legal_entity="PSF-US",
        lines=(
            InvoiceLine(
                id=f"{project.id}-{number}",
                description="milestone",
                unit_price=price,
                amount=price,
                project_id=project.id,
            ),
        ),
    )
    customers = {
        system: await stack.journal.system_id("account", project.account_id, system)
        for system in ("billing", "erp")
    }
    if customers["billing"] is None:
        account = await usd_account(stack)
        result = await deps.execute(
            "billing", UpsertCustomer(idempotency_key=f"t-billing-{account.id}", account=account)
        )
        customers["billing"] = result.ids[account.id]
        await stack.journal.map_id(
            "account", account.id, "billing", customers["billing"], stack.now()
        )
    key = f"t-invoice-{project.id}-{number}"
    created = await deps.execute(
        "billing",
        CreateInvoice(
            idempotency_key=f"{key}-c", invoice=invoice, customer_id=customers["billing"]
        ),
    )
    finalized = await deps.execute(
        "billing", FinalizeInvoice(idempotency_key=f"{key}-f", invoice_id=created.ids["invoice"])
    )
    if not to_erp:
        return ""
    issued = msgspec.structs.replace(
        invoice,
        number=finalized.details.get("number", ""),
        status=InvoiceStatus.OPEN,
        issue_date=datetime.fromtimestamp(stack.now(), UTC).date(),
    )
    posted = await deps.execute(
        "erp",
        PostInvoice(
            idempotency_key=f"{key}-p",
            invoice=issued,
            customer_id=customers["erp"],
            dimensions=DIMENSIONS,
        ),
    )
    return posted.ids[invoice.id]


async def readings(stack: Stack, project_id: str) -> list[Reading]:
    """The ``read:<project>`` step of every reconcile run, oldest first."""
    found = []
    for run in sorted(await stack.runs(workflow="reconcile"), key=lambda run: run.id):
        step = (await stack.journal.get_steps(run.id)).get(f"read:{project_id}")
        if step is not None:
            found.append(msgspec.msgpack.decode(step.result, type=Reading))
    return found


async def test_billing_that_agrees_with_erp_receivables_opens_nothing_and_a_missing_invoice_one(
    tmp_path, autojump_clock
) -> None:
    async with open_stack(tmp_path, workflows=(SPEC,)) as stack:
        await stack.until_idle()
        project = await project_with_time(stack, "PRJ-R3")
        await issue_invoice(stack, project, 1, "1200.00")
        await issue_invoice(stack, project, 2, "80.25")

        await reconcile(stack, ("PRJ-R3",))

        assert await stack.exceptions() == []
        [reading] = await readings(stack, "PRJ-R3")  # both sides were read and compared
        assert reading.billing is not None
        assert reading.receivables is not None
        assert reading.billing.amount == reading.receivables.amount == Money.of("1280.25", "USD")
        assert (reading.billing.entries, reading.receivables.entries) == (2, 2)
        assert reading.receivables.system == "erp"

        # An invoice billing issued never reached the ERP.
        await issue_invoice(stack, project, 3, "450.10", to_erp=False)

        await reconcile(stack, ("PRJ-R3",))

        [exception] = await stack.exceptions()
        assert (exception.workflow, exception.category, exception.owner) == (
            "reconcile",
            "billing",
            "billing-ops",
        )
        assert (exception.amount, exception.currency) == (Decimal("450.10"), "USD")
        assert "PRJ-R3, 2026-01-01 to 2026-01-31" in exception.message
        assert "billing invoiced 1730.35 USD (3 invoices)" in exception.message
        assert "erp holds 1280.25 USD of receivables (2 invoices)" in exception.message
        assert "difference 450.10 USD" in exception.message
        assert msgspec.json.decode(exception.detail)["check"] == "billing"

        # Reconciling again while it is open, or replaying the history, opens nothing new.
        await reconcile(stack, ("PRJ-R3",))
        await reconcile(stack)
        await replay(stack.journal, SPEC, ReplaySelection(from_seq=1), now=stack.now())
        stack.pipeline.workflows["reconcile"].runner.notify()
        await stack.until_idle()
        assert [e.id for e in await stack.exceptions()] == [exception.id]
        runs = await stack.runs(workflow="reconcile")
        assert {run.status for run in runs} == {"completed"}
        assert stack.duplicates() == {}


async def test_an_erp_invoice_of_another_amount_opens_one_billing_exception(
    tmp_path, autojump_clock
) -> None:
    async with open_stack(tmp_path, workflows=(SPEC,)) as stack:
        await stack.until_idle()
        project = await project_with_time(stack, "PRJ-R4")
        await issue_invoice(stack, project, 1, "2000.00")
        erp_invoice = await issue_invoice(stack, project, 2, "300.00")
        await reconcile(stack, ("PRJ-R4",))
        assert await stack.exceptions() == []

        # Someone edits the ERP's copy of the second invoice: 300.01 instead of 300.00.
        state = netsuite(stack)
        lines = state.records["invoice"][int(erp_invoice)]["item"]
        edited = [{**line, "amount": 300.01, "rate": 300.01} for line in lines]
        state.update("invoice", int(erp_invoice), {"item": {"items": edited}})

        await reconcile(stack, ("PRJ-R4",))
        await reconcile(stack, ("PRJ-R4",))

        [exception] = await stack.exceptions()
        assert exception.category == "billing"
        assert (exception.amount, exception.currency) == (Decimal("0.01"), "USD")
        assert "billing invoiced 2300.00 USD" in exception.message
        assert "erp holds 2300.01 USD" in exception.message
        assert "difference -0.01 USD" in exception.message

        # Once a person has fixed the ERP and closed it, the same check is clean again.
        fixed = [{**line, "amount": 300.0, "rate": 300.0} for line in lines]
        state.update("invoice", int(erp_invoice), {"item": {"items": fixed}})
        await stack.journal.resolve_exception(exception.id, "ops", "fixed", stack.now())
        await reconcile(stack, ("PRJ-R4",))
        assert await stack.exceptions() == []


async def test_an_erp_without_a_receivables_read_says_billing_was_not_compared(
    tmp_path, autojump_clock, monkeypatch
) -> None:
    # An ERP whose adapter has no receivables read (say a legacy ERP's): NetSuite's
    # adapter, everything real, but without the optional method.
    monkeypatch.delattr(NetSuiteAdapter, "receivables")
    async with open_stack(tmp_path, workflows=(SPEC,)) as stack:
        await stack.until_idle()
        project = await project_with_time(stack, "PRJ-R5")
        await issue_invoice(stack, project, 1, "640.00")
        # A time difference too: the time check must still be made.
        state = netsuite(stack)
        bill_id, bill = next(iter(state.records["timebill"].items()))
        state.update("timebill", bill_id, {"hours": float(Decimal(str(bill["hours"])) + 1)})

        await reconcile(stack, ("PRJ-R5",))
        await reconcile(stack, ("PRJ-R5",))

        found = {e.category: e for e in await stack.exceptions()}
        assert sorted(found) == ["billing", "time"]
        assert "difference -1.00 h" in found["time"].message
        unread = found["billing"]
        assert unread.owner == "billing-ops"
        assert (unread.amount, unread.currency) == (None, None)
        assert msgspec.json.decode(unread.detail)["check"] == "billing_read"
        assert "PRJ-R5, 2026-01-01 to 2026-01-31" in unread.message
        assert "billing was not compared with the ERP's receivables" in unread.message
        assert "erp: the netsuite adapter offers no receivables read" in unread.message
        assert "billing invoiced 640.00 USD (1 invoices)" in unread.message
        runs = await stack.runs(workflow="reconcile")
        assert [run.status for run in runs] == ["completed", "completed"]


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
