"""Reconciliation totals: invoices issued for a project within a period."""

from __future__ import annotations

from datetime import date

import pytest

from actors.errors import PermanentError
from actors.messages import FinalizeInvoice, InvoiceLine, Money
from adapters.base import TotalsQuery
from adapters.stripe import StripeOptions

from .conftest import Harness, build, create_invoice, upsert_customer, usd

JANUARY = {"period_start": date(2026, 1, 1), "period_end": date(2026, 1, 31)}


async def issue(harness: Harness, customer: str, invoice_id: str, project: str, amount: str) -> str:
    line = InvoiceLine(id="L", unit_price=usd(amount), amount=usd(amount))
    command = create_invoice(
        customer, f"k-{invoice_id}", invoice_id=invoice_id, project_id=project, lines=(line,)
    )
    stripe_id = (await harness.adapter.execute(command)).ids["invoice"]
    await harness.adapter.execute(
        FinalizeInvoice(idempotency_key=f"f-{invoice_id}", invoice_id=stripe_id)
    )
    return stripe_id


async def test_totals_sum_issued_invoices_of_the_project_and_period(
    autojump_clock, harness: Harness
) -> None:
    customer = (await harness.adapter.execute(upsert_customer())).ids["customer"]
    await issue(harness, customer, "INV-1", "P-1", "1000.00")
    paid = await issue(harness, customer, "INV-2", "P-1", "250.25")
    voided = await issue(harness, customer, "INV-3", "P-1", "999.00")
    await issue(harness, customer, "INV-4", "P-2", "50.00")  # another project
    draft = create_invoice(customer, "k-5", invoice_id="INV-5")  # never issued
    await harness.adapter.execute(draft)
    harness.state.pay_invoice(paid)
    harness.state.void_invoice(voided)
    await harness.advance(40 * 86_400)  # February: outside the period
    await issue(harness, customer, "INV-6", "P-1", "7.00")

    totals = await harness.adapter.totals(TotalsQuery(project_id="P-1", **JANUARY))

    assert totals.system == "billing"
    assert totals.amount == Money.of("1250.25", "USD")
    assert totals.entries == 2
    searches = [s for s in harness.recorder.sent if s.path == "/v1/invoices/search"]
    assert searches[-1].query["query"] == "metadata['pssync_project']:'P-1'"


async def test_totals_of_a_project_without_invoices_are_empty(harness: Harness) -> None:
    totals = await harness.adapter.totals(TotalsQuery(project_id="P-404", **JANUARY))

    assert (totals.amount, totals.entries) == (None, 0)


async def test_totals_page_through_every_search_hit(harness: Harness) -> None:
    _, recorder, adapter = build(harness.clock, options=StripeOptions(list_page_size=2))
    harness.adapter = adapter
    customer = (await adapter.execute(upsert_customer())).ids["customer"]
    for n in range(5):
        await issue(harness, customer, f"INV-{n}", "P-1", "10.00")
    recorder.sent.clear()

    totals = await adapter.totals(TotalsQuery(project_id="P-1", **JANUARY))

    assert totals.entries == 5
    assert totals.amount == Money.of("50.00", "USD")
    assert [s.path for s in recorder.sent] == [
        *["/v1/invoices/search"] * 3,
        "/v1/subscriptions/search",
    ]
    await adapter.aclose()


async def test_an_unsearchable_project_id_is_refused(harness: Harness) -> None:
    with pytest.raises(PermanentError, match="cannot be searched"):
        await harness.adapter.totals(TotalsQuery(project_id="O'Brien", **JANUARY))
