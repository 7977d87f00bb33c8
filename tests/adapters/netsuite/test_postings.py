"""Expenses as journal entries, invoices, payments, voids and write-offs."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from actors.errors import PermanentError
from actors.messages import (
    ApplyPayment,
    ExpenseEntry,
    FinancialDimensions,
    InvoiceStatus,
    Money,
    Payment,
    PostExpenseLines,
    PostInvoice,
    UpdateDealStatus,
    UpdateInvoiceStatus,
)
from adapters.base import TotalsQuery
from adapters.governor import Lane
from adapters.netsuite import external_id

from .builders import DIMS, customer_and_job, invoice, usd


def expense(n: int, **changes) -> ExpenseEntry:
    values = {
        "id": f"ex-{n}",
        "project_id": "PRJ-1",
        "consultant_id": "u1",
        "date_incurred": date(2026, 1, 10 + n),
        "category": "travel",
        "amount": usd("100.10"),
        "notes": "train",
    }
    return ExpenseEntry(**(values | changes))


def post_expenses(entries, key: str = "run-7/post-expenses") -> PostExpenseLines:
    return PostExpenseLines(
        idempotency_key=key,
        correlation_id="corr-x",
        project_id="PRJ-1",
        entries=tuple(entries),
        dimensions=DIMS,
    )


async def test_expenses_post_as_one_balanced_journal_entry(harness):
    adapter = harness.adapter()
    _, job_id = await customer_and_job(adapter)
    entries = [
        expense(1),
        expense(2, category="meals", amount=usd("20.00"), tax=usd("3.80")),
        expense(3, category="software", reimbursable=False, amount=usd("-5.00")),
    ]

    result = await adapter.execute(post_expenses(entries))

    assert result.created is True
    journal = harness.by_eid("journalentry", external_id("pssync", "je", "run-7/post-expenses"))
    assert result.ids == {
        "ex-1": str(journal["id"]),
        "ex-2": str(journal["id"]),
        "ex-3": str(journal["id"]),
        "journal_entry": str(journal["id"]),
    }
    assert journal["subsidiary"]["id"] == "1"
    assert journal["currency"]["id"] == "1"
    assert journal["tranDate"] == "2026-01-13"
    assert journal["custbody_pssync_source"] == "run-7/post-expenses"
    lines = journal["line"]
    assert len(lines) == 6
    assert sum(Decimal(str(line.get("debit", 0))) for line in lines) == Decimal("128.90")
    assert sum(Decimal(str(line.get("credit", 0))) for line in lines) == Decimal("128.90")
    travel_debit, travel_credit = lines[0], lines[1]
    assert travel_debit["account"]["id"] == "6"
    assert travel_debit["debit"] == 100.10
    assert travel_debit["entity"] == {"id": job_id, "_type": "job"}
    assert travel_debit["department"]["id"] == "1"
    assert travel_debit["class"]["id"] == "1"
    assert travel_credit["account"]["id"] == "3"
    assert travel_credit["entity"]["id"] == "101"
    assert lines[2]["debit"] == 23.80  # amount plus tax
    refund_expense, refund_offset = lines[4], lines[5]
    assert refund_expense["account"]["id"] == "8"  # default account
    assert refund_expense["credit"] == 5.0  # a refund swaps the sides
    assert "entity" not in refund_offset

    again = await adapter.execute(post_expenses(entries))
    assert again.created is False
    assert again.ids == result.ids
    assert len(harness.records("journalentry")) == 1


async def test_mixed_currency_batch_is_refused_before_any_call(harness):
    adapter = harness.adapter()
    before = len(harness.transport.requests)
    entries = [expense(1), expense(2, amount=Money.of("3", "EUR"))]
    with pytest.raises(PermanentError, match="one currency"):
        await adapter.execute(post_expenses(entries))
    assert len(harness.transport.requests) == before


async def test_invoice_payment_and_receivables(harness):
    adapter = harness.adapter()
    customer_id, job_id = await customer_and_job(adapter)
    command = PostInvoice(
        idempotency_key="k-inv", correlation_id="c", invoice=invoice(), customer_id=customer_id
    )

    posted = await adapter.execute(command)
    replay = await adapter.execute(command)

    assert (posted.created, replay.created) == (True, False)
    assert posted.ids == replay.ids
    netsuite_id = posted.ids["in_1"]
    record = harness.state.records["invoice"][int(netsuite_id)]
    assert record["entity"] == {"id": job_id, "_type": "job"}
    assert record["otherRefNum"] == "INV-0001"
    assert record["tranDate"] == "2026-01-20"
    assert record["dueDate"] == "2026-02-19"
    assert record["item"][0]["item"]["id"] == "2"  # milestone item
    assert record["item"][0]["amount"] == 12000.0
    assert record["total"] == 12000.0
    assert len(harness.records("invoice")) == 1

    payment = Payment(
        id="py_1", account_id="001A", amount=usd("5000.00"), received_on=date(2026, 1, 25)
    )
    pay = ApplyPayment(
        idempotency_key="k-pay", payment=payment, customer_id=customer_id, invoice_id=netsuite_id
    )
    paid = await adapter.execute(pay)
    paid_again = await adapter.execute(pay)
    assert (paid.created, paid_again.created) == (True, False)
    assert len(harness.records("customerpayment")) == 1
    assert harness.state.records["invoice"][int(netsuite_id)]["amountRemaining"] == 7000.0

    totals = await adapter.receivables(
        TotalsQuery(project_id="PRJ-1", period_start=date(2026, 1, 1), period_end=date(2026, 1, 31))
    )
    assert totals.amount == usd("12000")
    assert totals.entries == 1
    outside = await adapter.receivables(
        TotalsQuery(project_id="PRJ-1", period_start=date(2026, 2, 1), period_end=date(2026, 2, 28))
    )
    assert (outside.amount, outside.entries) == (None, 0)


@pytest.mark.parametrize(
    ("status", "kind", "debit_account"),
    [(InvoiceStatus.VOID, "void", "4"), (InvoiceStatus.UNCOLLECTIBLE, "woff", "7")],
)
async def test_void_and_write_off_post_a_reversing_journal(harness, status, kind, debit_account):
    adapter = harness.adapter()
    customer_id, job_id = await customer_and_job(adapter)
    posted = await adapter.execute(
        PostInvoice(idempotency_key="k", invoice=invoice(), customer_id=customer_id)
    )
    netsuite_id = posted.ids["in_1"]
    command = UpdateInvoiceStatus(idempotency_key="k-s", invoice_id=netsuite_id, status=status)

    first = await adapter.execute(command)
    again = await adapter.execute(command)

    assert (first.created, again.created) == (True, False)
    assert first.ids == again.ids
    journal = harness.by_eid("journalentry", external_id("pssync", kind, netsuite_id))
    debit, credit = journal["line"]
    assert (debit["account"]["id"], debit["debit"]) == (debit_account, 12000.0)
    assert (credit["account"]["id"], credit["credit"]) == ("2", 12000.0)
    assert debit["entity"]["id"] == credit["entity"]["id"] == job_id
    assert journal["tranDate"] == "2026-01-31"
    assert len(harness.records("journalentry")) == 1


async def test_paid_status_is_not_an_erp_change(harness):
    adapter = harness.adapter()
    command = UpdateInvoiceStatus(idempotency_key="k", invoice_id="1", status=InvoiceStatus.PAID)
    with pytest.raises(PermanentError, match="not a receivable change"):
        await adapter.execute(command)


async def test_unhandled_command_names_vendor_and_command(harness):
    adapter = harness.adapter()
    command = UpdateDealStatus(idempotency_key="k", opportunity_id="006", status="active")
    with pytest.raises(PermanentError, match="netsuite does not handle update_deal_status"):
        await adapter.execute(command)


async def test_lanes(harness):
    adapter = harness.adapter()
    assert adapter.lane_for(post_expenses([expense(1)])) is Lane.CRITICAL
    command = UpdateInvoiceStatus(idempotency_key="k", invoice_id="1", status=InvoiceStatus.VOID)
    assert adapter.lane_for(command) is Lane.CRITICAL
    deal = UpdateDealStatus(idempotency_key="k", opportunity_id="006", status="active")
    assert adapter.lane_for(deal) is Lane.MASTER_DATA
    assert adapter.feeds() == ()


async def test_dimension_defaults_come_from_the_command(harness):
    adapter = harness.adapter()
    await customer_and_job(adapter)
    entries = [expense(1, dimensions=FinancialDimensions(department="Delivery"))]
    await adapter.execute(post_expenses(entries))
    journal = harness.by_eid("journalentry", external_id("pssync", "je", "run-7/post-expenses"))
    assert journal["line"][0]["department"]["id"] == "2"
    assert journal["line"][0]["class"]["id"] == "1"
