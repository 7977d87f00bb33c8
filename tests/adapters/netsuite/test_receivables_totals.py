"""Receivables totals leave voided invoices out, as billing (Stripe) does.

The adapter voids an invoice with a reversing journal entry beside it (UpdateInvoiceStatus);
the invoice keeps its total, so a plain sum of invoices would still count it.
"""

from __future__ import annotations

from datetime import date

from actors.messages import InvoiceStatus, PostInvoice, UpdateInvoiceStatus
from adapters.base import TotalsQuery
from adapters.netsuite import external_id

from .builders import customer_and_job, invoice, usd

JANUARY = TotalsQuery(
    project_id="PRJ-1", period_start=date(2026, 1, 1), period_end=date(2026, 1, 31)
)


async def post(adapter, customer_id: str, invoice_id: str, **changes) -> str:
    command = PostInvoice(
        idempotency_key=f"k-{invoice_id}",
        invoice=invoice(invoice_id, number=invoice_id.upper(), **changes),
        customer_id=customer_id,
    )
    return (await adapter.execute(command)).ids[invoice_id]


async def set_status(adapter, netsuite_id: str, status: InvoiceStatus) -> None:
    command = UpdateInvoiceStatus(
        idempotency_key=f"k-{status.value}-{netsuite_id}", invoice_id=netsuite_id, status=status
    )
    await adapter.execute(command)


async def test_receivables_leave_voided_invoices_out(harness):
    adapter = harness.adapter()
    customer_id, _ = await customer_and_job(adapter)
    await post(adapter, customer_id, "in_1")  # 12,000.00
    voided = await post(adapter, customer_id, "in_2")
    written_off = await post(adapter, customer_id, "in_3")
    await post(adapter, customer_id, "in_4", issue_date=date(2026, 2, 2))  # February
    await set_status(adapter, voided, InvoiceStatus.VOID)
    await set_status(adapter, written_off, InvoiceStatus.UNCOLLECTIBLE)
    assert harness.state.records["invoice"][int(voided)]["total"] == 12000.0  # still there
    before = len(harness.transport.requests)

    totals = await adapter.receivables(JANUARY)

    # in_1 and the written-off in_3 (Stripe counts uncollectible invoices too)
    assert totals.amount == usd("24000")
    assert totals.entries == 2
    assert len(harness.transport.requests) - before == 3  # job, invoices, void journals


async def test_receivables_of_a_period_whose_invoices_are_all_voided_are_empty(harness):
    adapter = harness.adapter()
    customer_id, _ = await customer_and_job(adapter)
    voided = await post(adapter, customer_id, "in_1")
    await set_status(adapter, voided, InvoiceStatus.VOID)

    totals = await adapter.receivables(JANUARY)

    assert (totals.amount, totals.entries) == (None, 0)


async def test_a_void_journal_of_another_invoice_does_not_hide_this_one(harness):
    adapter = harness.adapter()
    customer_id, _ = await customer_and_job(adapter)
    kept = await post(adapter, customer_id, "in_1")
    other = await post(adapter, customer_id, "in_2", project_id=None)  # on the customer
    await set_status(adapter, other, InvoiceStatus.VOID)

    totals = await adapter.receivables(JANUARY)

    assert harness.by_eid("journalentry", external_id("pssync", "void", other)) is not None
    assert external_id("pssync", "void", kept) != external_id("pssync", "void", other)
    assert (totals.amount, totals.entries) == (usd("12000"), 1)
