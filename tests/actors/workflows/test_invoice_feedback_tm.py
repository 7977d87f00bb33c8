"""invoice_feedback and time-and-materials invoices: the draft time_expense_to_erp fills,
finalized in billing by finance, becomes one ERP receivable that its payment settles.

The stack (tests/e2e/stack.py) runs deal_to_project, time_expense_to_erp and
invoice_feedback against the sandbox, configured as time_expense_to_erp's own tests do
(consultants mapped to NetSuite employees, no rate limits to wait on). Finance finalizes
the draft in the simulated Stripe (what its dashboard or ``POST /v1/invoices/:id/finalize``
does); the customer pays it there; the feed brings the events.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import msgspec
import trio

from actors.messages import (
    CreateInvoice,
    FinancialDimensions,
    Invoice,
    InvoiceLine,
    Money,
    ProjectActivated,
    decode_envelope,
)
from actors.workflows import ReplaySelection, replay
from actors.workflows.deal_to_project import activation_envelope_id
from actors.workflows.invoice_feedback import SPEC, TimeAndMaterials, _tm_lines
from actors.workflows.reconcile import Reading
from actors.workflows.schedule import request_reconciliation
from actors.workflows.time_expense_to_erp import tm_invoice_id, tm_invoice_parts
from tests.actors.workflows.test_invoice_feedback import crm_account, provision
from tests.actors.workflows.test_time_expense_to_erp import (
    FAST_VENDORS,
    GOOD_TIME,
    Wire,
    add_time,
    approve,
    bill_amount,
    quiet_tm_workspace,
    stack_config,
)
from tests.e2e.stack import OWNERS, Stack, open_stack

WORKFLOWS = ("deal_to_project", "time_expense_to_erp", SPEC)
PERIOD = "2026-01"  # GOOD_TIME's days


def stripe(stack: Stack) -> Any:
    return stack.sandbox.vendors["stripe"].state


def netsuite(stack: Stack) -> Any:
    return stack.sandbox.vendors["netsuite"].state


def erp_invoices_of(stack: Stack, canonical: str) -> list[dict[str, Any]]:
    """NetSuite invoices posted under a canonical invoice id (``custbody_pssync_source``)."""
    return [
        row
        for row in netsuite(stack).records["invoice"].values()
        if row.get("custbody_pssync_source") == canonical
    ]


def erp_writes(wire: Wire, kind: str) -> int:
    """Requests that could create or change ``kind`` records in the ERP (not reads)."""
    return sum(
        n
        for (system, method, k), n in wire.calls.items()
        if system == "erp" and k == kind and method != "GET"
    )


async def until_exceptions(stack: Stack, workflow: str, count: int) -> list[Any]:
    """The workflow's open exceptions, once there are ``count`` (a parked run keeps
    ``until_idle`` from waiting for the runs of its key)."""
    with trio.fail_after(3_600):
        while len(found := await stack.exceptions(workflow=workflow)) < count:
            await stack.changes.wait()
    return found


async def tm_draft(stack: Stack) -> tuple[str, dict[str, Any], Decimal]:
    """One T&M project's time approved and invoiced on its draft: the project's
    canonical id, the Stripe draft and the billed amount of the approved entries."""
    project, draft, good = await tm_draft_entries(stack)
    return project, draft, sum((bill_amount(entry).amount for entry in good), Decimal(0))


def rate_lines(entries: list[dict[str, Any]]) -> list[tuple[Decimal, Decimal, Decimal]]:
    """(hours, rate, amount) per bill rate of ``entries``, as time_expense_to_erp bills them."""
    by_rate: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for entry in entries:
        by_rate[entry["rate_in_cents"]].append(entry)
    return sorted(
        (
            sum((Decimal(entry["time_in_minutes"]) for entry in group), Decimal(0)) / 60,
            Decimal(rate) / 100,
            sum((bill_amount(entry).amount for entry in group), Decimal(0)),
        )
        for rate, group in by_rate.items()
    )


async def tm_draft_entries(stack: Stack) -> tuple[str, dict[str, Any], list[dict[str, Any]]]:
    """:func:`tm_draft`, with the approved Kantata entries instead of their amount."""
    workspace = await quiet_tm_workspace(stack)
    good = [add_time(stack, workspace, *spec) for spec in GOOD_TIME]
    approve(stack, good)
    await stack.until_idle()
    project = await stack.journal.canonical_id("project", "psa", workspace)
    assert project is not None
    [draft] = [
        invoice
        for invoice in stripe(stack).objects["invoice"].values()
        if invoice["metadata"].get("pssync_project") == project
        and invoice["metadata"].get("pssync_id", "").startswith("tm-")
    ]
    return project, draft, good


async def test_an_issued_tm_invoice_is_posted_once_and_its_payment_applied(
    tmp_path, autojump_clock
) -> None:
    wire = Wire()
    async with open_stack(
        tmp_path,
        workflows=(*WORKFLOWS, "reconcile"),
        config=stack_config(),
        sandbox_config=FAST_VENDORS,
        wrap_transport=wire.wrap,
    ) as stack:
        stack.scenario.malformed_added = True  # deal_to_project's business, not ours
        project, draft, good = await tm_draft_entries(stack)
        billed = sum((bill_amount(entry).amount for entry in good), Decimal(0))
        canonical = draft["metadata"]["pssync_id"]
        assert canonical == tm_invoice_id(project, PERIOD)
        assert tm_invoice_parts(canonical) == (project, PERIOD)
        assert draft["status"] == "draft"
        assert Decimal(draft["total"]) / 100 == billed
        assert await stack.journal.system_id("invoice", canonical, "billing") == draft["id"]
        # A draft is not a receivable: nothing in the ERP yet.
        assert await stack.journal.system_id("invoice", canonical, "erp") is None
        assert erp_invoices_of(stack, canonical) == []

        # Month end: finance finalizes the draft in Stripe (pssync never does).
        wire.calls.clear()
        issued = stripe(stack).finalize_invoice(draft["id"])
        stack.touched()
        await stack.until_idle()

        [posted] = erp_invoices_of(stack, canonical)
        assert erp_writes(wire, "invoice") == 1  # one look by external id, one create
        erp_id = await stack.journal.system_id("invoice", canonical, "erp")
        assert erp_id == str(posted["id"])
        assert Decimal(str(posted["total"])) == billed  # the draft's billed amount
        assert Decimal(str(posted["amountRemaining"])) == billed
        # As billing issued it: its number, issue and due dates; against the project's job.
        finalized_on = datetime.fromtimestamp(issued["status_transitions"]["finalized_at"], UTC)
        due_on = datetime.fromtimestamp(issued["due_date"], UTC)
        assert posted["otherRefNum"] == issued["number"]
        assert str(posted["tranDate"]) == finalized_on.date().isoformat()
        assert str(posted["dueDate"]) == due_on.date().isoformat()
        job = await stack.journal.system_id("project", project, "erp")
        assert job is not None
        assert str(posted["entity"]["id"]) == job
        # Its lines as billed: one per bill rate, hours x rate (fractional hours too,
        # which Stripe holds as an amount only).
        lines = posted["item"]
        assert len(lines) == len(rate_lines(good)) > 1
        assert any(Decimal(str(line["quantity"])) % 1 for line in lines)
        assert sorted(
            tuple(Decimal(str(line[k])) for k in ("quantity", "rate", "amount")) for line in lines
        ) == rate_lines(good)
        assert sum(Decimal(str(line["amount"])) for line in lines) == billed
        assert all(line["description"].startswith(f"Time {PERIOD}: ") for line in lines)
        runs = await stack.runs(workflow="invoice_feedback")
        [issuing] = [
            run for run in runs if "post_tm_invoice" in await stack.journal.get_steps(run.id)
        ]
        assert issuing.key == f"invoice:{canonical}"
        assert {run.status for run in runs} == {"completed"}

        # The customer pays: one ERP payment, applied to that invoice; nothing parks.
        stripe(stack).pay_invoice(draft["id"])
        stack.touched()
        await stack.until_idle()

        [payment] = [
            row
            for row in netsuite(stack).records["customerpayment"].values()
            if any(str(a["doc"]["id"]) == erp_id for a in row.get("apply") or [])
        ]
        assert Decimal(str(payment["payment"])) == billed
        assert Decimal(str(erp_invoices_of(stack, canonical)[0]["amountRemaining"])) == 0
        assert await stack.exceptions() == []
        runs = await stack.runs(workflow="invoice_feedback")
        assert {run.status for run in runs} == {"completed"}
        assert stack.duplicates() == {}

        # Billing's invoiced total and the ERP's receivables of the month now agree.
        month = finalized_on.date().replace(day=1)
        next_month = (month + timedelta(days=32)).replace(day=1)
        period = (month, next_month - timedelta(days=1))
        await request_reconciliation(stack.journal, period, (project,), "test", now=stack.now())
        stack.touched()
        await stack.until_idle()
        [check] = await stack.runs(workflow="reconcile")
        assert check.status == "completed"
        steps = await stack.journal.get_steps(check.id)
        reading = msgspec.msgpack.decode(steps[f"read:{project}"].result, type=Reading)
        assert reading.billing is not None
        assert reading.receivables is not None
        # Both count the project's invoices of the month, this one included.
        assert (reading.billing.amount, reading.billing.entries) == (
            reading.receivables.amount,
            reading.receivables.entries,
        )
        assert reading.billing.amount.amount >= billed
        assert await stack.exceptions() == []

        # Replaying invoice_feedback's whole history posts nothing twice.
        counts = stack.counts()
        payments = len(netsuite(stack).records["customerpayment"])
        wire.calls.clear()
        result = await replay(stack.journal, SPEC, ReplaySelection(from_seq=1), now=stack.now())
        assert result.run_ids
        stack.pipeline.workflows["invoice_feedback"].runner.notify()
        await stack.until_idle()

        assert stack.counts() == counts
        assert erp_writes(wire, "invoice") == 0  # the mapped invoice is not even sent again
        assert len(erp_invoices_of(stack, canonical)) == 1
        assert len(netsuite(stack).records["customerpayment"]) == payments
        assert stack.duplicates() == {}
        runs = await stack.runs(workflow="invoice_feedback")
        assert sum(run.replay for run in runs) == len(result.run_ids)
        assert {run.status for run in runs} == {"completed"}
        assert await stack.exceptions() == []


async def test_a_crash_after_the_erp_invoice_before_its_record_posts_it_once(
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
        _, draft, billed = await tm_draft(stack)
        canonical = draft["metadata"]["pssync_id"]
        wire.held, wire.release = trio.Event(), trio.Event()
        wire.hold = lambda system, request: (
            system == "erp" and request.method == "PUT" and "/invoice/" in request.url.path
        )

        stripe(stack).finalize_invoice(draft["id"])
        stack.touched()
        with trio.fail_after(600):
            await wire.held.wait()  # NetSuite has the invoice; the run has no record of it
        assert len(erp_invoices_of(stack, canonical)) == 1
        await stack.crash_and_restart()
        wire.release.set()
        await stack.until_idle()  # the abandoned run too, once its lease has expired

        [posted] = erp_invoices_of(stack, canonical)
        assert Decimal(str(posted["total"])) == billed
        assert await stack.journal.system_id("invoice", canonical, "erp") == str(posted["id"])
        runs = await stack.runs(workflow="invoice_feedback")
        assert {run.status for run in runs} == {"completed"}
        [issuing] = [run for run in runs if run.key == f"invoice:{canonical}" and run.attempts > 1]
        assert "post_tm_invoice" in await stack.journal.get_steps(issuing.id)
        assert stack.duplicates() == {}
        assert await stack.exceptions() == []


async def test_a_tm_invoice_of_a_project_pssync_never_provisioned_is_a_billing_exception(
    tmp_path, autojump_clock
) -> None:
    async with open_stack(tmp_path, workflows=(SPEC,)) as stack:
        await stack.until_idle()
        account = await crm_account(stack)
        customers = await provision(stack, account)
        # A draft under pssync's T&M id, of a project pssync has no record of.
        canonical = tm_invoice_id("PRJ-unknown", PERIOD)
        price = Money.of("640.00", "USD")
        created = await stack.pipeline.deps.execute(
            "billing",
            CreateInvoice(
                idempotency_key="test-tm-unknown",
                customer_id=customers["billing"],
                invoice=Invoice(
                    id=canonical,
                    account_id=account.id,
                    project_id="PRJ-unknown",
                    currency="USD",
                    lines=(InvoiceLine(id="t", unit_price=price, amount=price),),
                ),
            ),
        )
        stripe_id = created.ids["invoice"]
        stripe(stack).finalize_invoice(stripe_id)
        stack.touched()

        [exception] = await until_exceptions(stack, "invoice_feedback", 1)
        assert (exception.category, exception.owner) == ("billing", OWNERS["billing"])
        assert (exception.amount, exception.currency) == (Decimal("640.00"), "USD")
        assert canonical in exception.message
        assert stripe_id in exception.message
        assert "never provisioned" in exception.message
        assert erp_invoices_of(stack, canonical) == []
        assert await stack.journal.system_id("invoice", canonical, "erp") is None


async def test_a_tm_invoice_whose_legal_entity_has_no_erp_is_a_mapping_exception(
    tmp_path, autojump_clock
) -> None:
    async with open_stack(
        tmp_path, workflows=WORKFLOWS, config=stack_config(), sandbox_config=FAST_VENDORS
    ) as stack:
        stack.scenario.malformed_added = True
        project, draft, billed = await tm_draft(stack)
        canonical = draft["metadata"]["pssync_id"]
        # The ERP routes lose the project's legal entity (a reloaded configuration).
        [record] = await stack.journal.get_events([activation_envelope_id(project)])
        activation = decode_envelope(record.body).body
        assert isinstance(activation, ProjectActivated)
        assert activation.project.dimensions is not None
        entity = activation.project.dimensions.legal_entity
        deps = stack.pipeline.workflows["invoice_feedback"]._deps
        routes = dict(deps.erp_routes)
        assert routes.get(entity) == "erp"
        deps.erp_routes = {e: erp for e, erp in routes.items() if e != entity}

        stripe(stack).finalize_invoice(draft["id"])
        stack.touched()

        found = await until_exceptions(stack, "invoice_feedback", 1)
        [exception] = [e for e in found if canonical in e.message]
        assert (exception.category, exception.owner) == ("mapping", OWNERS["mapping"])
        assert repr(entity) in exception.message
        assert (exception.amount, exception.currency) == (billed, "USD")
        assert erp_invoices_of(stack, canonical) == []
        # Once the route is back, retrying the parked run posts it, once.
        deps.erp_routes = routes
        await stack.journal.retry_exception(exception.id, "ops", "ERP route restored", stack.now())
        stack.pipeline.workflows["invoice_feedback"].runner.notify()
        await stack.until_idle()
        assert len(erp_invoices_of(stack, canonical)) == 1
        assert await stack.journal.system_id("invoice", canonical, "erp") is not None
        runs = await stack.runs(workflow="invoice_feedback")
        assert {run.status for run in runs} == {"completed"}
        assert await stack.exceptions(workflow="invoice_feedback") == []


# -- the pure parts -----------------------------------------------------------------------


def test_tm_invoice_ids_name_their_project_and_period() -> None:
    assert tm_invoice_parts(tm_invoice_id("PRJ-006Rs-x", "2026-01")) == ("PRJ-006Rs-x", "2026-01")
    assert tm_invoice_parts("tm-PRJ-1-2026-12") == ("PRJ-1", "2026-12")
    for other in (
        "ms-MS-1",
        "sub-in_123",
        "in_123",
        "tm-PRJ-1-2026-13",
        "tm--2026-01",
        "tm-P-26-01",
    ):
        assert tm_invoice_parts(other) is None, other


def test_tm_lines_are_billings_own_else_one_for_the_total() -> None:
    dims = FinancialDimensions(legal_entity="PSF-US", department="D-1")
    source = TimeAndMaterials(
        project_id="PRJ-1",
        project_name="Rollout",
        period="2026-01",
        erp="erp",
        customer_id="7",
        dimensions=dims,
    )
    total = Money.of("1234.50", "USD")
    bare = Invoice(id="tm-PRJ-1-2026-01", account_id="A-1", currency="USD", number="INV-0001")

    [line] = _tm_lines(bare, source, total)
    assert (line.amount, line.unit_price, line.quantity) == (total, total, Decimal(1))
    assert (line.project_id, line.dimensions) == ("PRJ-1", dims)
    assert "2026-01" in line.description
    assert "INV-0001" in line.description

    price = Money.of("100.00", "USD")
    own = (
        InvoiceLine(id="a", unit_price=price, amount=price),
        InvoiceLine(id="b", unit_price=price, amount=price, project_id="PRJ-2"),
    )
    billed = Money.of("200.00", "USD")
    lines = _tm_lines(msgspec.structs.replace(bare, lines=own), source, billed)
    assert [(li.id, li.amount, li.project_id) for li in lines] == [
        ("a", price, "PRJ-1"),
        ("b", price, "PRJ-2"),
    ]
    assert {li.dimensions for li in lines} == {dims}

    # Lines that do not make the total (tax, a discount on top): one line for the total.
    taxed = Money.of("216.00", "USD")
    [line] = _tm_lines(msgspec.structs.replace(bare, lines=own), source, taxed)
    assert (line.id, line.amount, line.quantity) == ("tm-PRJ-1-2026-01", taxed, Decimal(1))


async def test_time_approved_after_finance_finalized_its_month_goes_on_the_next_draft(
    tmp_path, autojump_clock
) -> None:
    async with open_stack(
        tmp_path, workflows=WORKFLOWS, config=stack_config(), sandbox_config=FAST_VENDORS
    ) as stack:
        stack.scenario.malformed_added = True
        project, january, billed = await tm_draft(stack)
        stripe(stack).finalize_invoice(january["id"])  # month end: finance closes January
        stack.touched()
        await stack.until_idle()
        [posted_january] = erp_invoices_of(stack, tm_invoice_id(project, PERIOD))

        # Two more January entries are approved after the close.
        workspace = await stack.journal.system_id("project", project, "psa")
        assert workspace is not None
        late = [
            add_time(stack, workspace, "100002", "2026-01-28", 120),
            add_time(stack, workspace, "100003", "2026-01-29", 60),
        ]
        approve(stack, late)
        await stack.until_idle()

        # Not lost, not parked: billed on the project's February draft, January untouched.
        assert await stack.exceptions() == []
        assert {run.status for run in await stack.runs(workflow="time_expense_to_erp")} == {
            "completed"
        }
        february_id = tm_invoice_id(project, "2026-02")
        [february] = [
            invoice
            for invoice in stripe(stack).objects["invoice"].values()
            if invoice["metadata"].get("pssync_id") == february_id
        ]
        assert february["status"] == "draft"
        late_billed = sum((bill_amount(entry).amount for entry in late), Decimal(0))
        assert Decimal(february["total"]) / 100 == late_billed
        assert Decimal(stripe(stack).objects["invoice"][january["id"]]["total"]) / 100 == billed
        assert await stack.journal.system_id("invoice", february_id, "billing") == february["id"]
        for entry in late:
            billed_on = await stack.journal.system_id("billed_time", entry["id"], "billing")
            assert billed_on == f"{february['id']}:{entry['id']}"

        # February's close posts the late time to the ERP as its own invoice.
        stripe(stack).finalize_invoice(february["id"])
        stack.touched()
        await stack.until_idle()
        [posted_february] = erp_invoices_of(stack, february_id)
        assert Decimal(str(posted_february["total"])) == late_billed
        assert erp_invoices_of(stack, tm_invoice_id(project, PERIOD)) == [posted_january]
        assert stack.duplicates() == {}
