"""Reconciliation totals count the invoices Stripe raises for the project's subscriptions.

Those invoices carry no pssync metadata of their own (the subscription does), so an
invoice-metadata search alone misses them; ``invoice_feedback`` posts them to the ERP
against the project, so billing's figure must include them.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from actors.messages import CreateSubscription, Money, SubscriptionLine
from adapters.base import TotalsQuery

from .conftest import Harness, upsert_customer, usd
from .test_totals import JANUARY, issue

FEBRUARY = {"period_start": date(2026, 2, 1), "period_end": date(2026, 2, 28)}
JAN_1 = date(2026, 1, 1)


async def subscribe(harness: Harness, customer: str, project: str, line: str, amount: str) -> str:
    command = CreateSubscription(
        idempotency_key=f"sub-{project}-{line}",
        correlation_id="corr-sub",
        customer_id=customer,
        project_id=project,
        line=SubscriptionLine(
            id=line, description=f"Retainer {line}", amount=usd(amount), start_date=JAN_1
        ),
    )
    return (await harness.adapter.execute(command)).ids["subscription"]


def invoices_of(harness: Harness, subscription: str) -> list[dict]:
    return [i for i in harness.objects("invoice") if i["subscription"] == subscription]


async def test_subscription_invoices_of_the_project_are_counted(
    autojump_clock, harness: Harness
) -> None:
    customer = (await harness.adapter.execute(upsert_customer())).ids["customer"]
    ours = await subscribe(harness, customer, "P-1", "CL-1", "300.00")
    voided = await subscribe(harness, customer, "P-1", "CL-2", "40.00")
    await subscribe(harness, customer, "P-2", "CL-3", "5000.00")  # another project
    await issue(harness, customer, "INV-1", "P-1", "1000.00")  # a milestone invoice
    [first] = invoices_of(harness, ours)
    [to_void] = invoices_of(harness, voided)
    assert first["metadata"] == {}  # Stripe does not copy the subscription's metadata
    assert first["status"] == "open"
    harness.state.void_invoice(to_void["id"])

    totals = await harness.adapter.totals(TotalsQuery(project_id="P-1", **JANUARY))

    assert totals.amount == Money.of("1300.00", "USD")
    assert totals.entries == 2
    sent = harness.recorder.sent
    [search] = [s for s in sent if s.path == "/v1/subscriptions/search"]
    assert search.query["query"] == "metadata['pssync_project']:'P-1'"
    lists = [s.query for s in sent if s.path == "/v1/invoices" and "subscription" in s.query]
    feb_1 = int(datetime(2026, 2, 1, tzinfo=UTC).timestamp())
    assert sorted(q["subscription"] for q in lists) == sorted([ours, voided])
    assert {q["created[lt]"] for q in lists} == {str(feb_1)}


async def test_a_draft_subscription_invoice_counts_once_finalized_in_its_own_period(
    autojump_clock, harness: Harness
) -> None:
    customer = (await harness.adapter.execute(upsert_customer())).ids["customer"]
    ours = await subscribe(harness, customer, "P-1", "CL-1", "300.00")
    await harness.advance(31 * 86_400 + 600)  # Feb 1, 00:10: the next request renews it

    february = await harness.adapter.totals(TotalsQuery(project_id="P-1", **FEBRUARY))
    drafts = [i for i in invoices_of(harness, ours) if i["status"] == "draft"]
    await harness.advance(3_600)  # Stripe finalizes the draft an hour after creating it
    finalized = await harness.adapter.totals(TotalsQuery(project_id="P-1", **FEBRUARY))
    january = await harness.adapter.totals(TotalsQuery(project_id="P-1", **JANUARY))

    assert len(drafts) == 1
    assert (february.amount, february.entries) == (None, 0)
    assert (finalized.amount, finalized.entries) == (Money.of("300.00", "USD"), 1)
    assert (january.amount, january.entries) == (Money.of("300.00", "USD"), 1)


async def test_an_invoice_found_by_both_searches_is_counted_once(
    autojump_clock, harness: Harness
) -> None:
    customer = (await harness.adapter.execute(upsert_customer())).ids["customer"]
    ours = await subscribe(harness, customer, "P-1", "CL-1", "300.00")
    [invoice] = invoices_of(harness, ours)
    harness.state.update("invoice", invoice["id"], {"metadata": {"pssync_project": "P-1"}})

    totals = await harness.adapter.totals(TotalsQuery(project_id="P-1", **JANUARY))

    assert (totals.amount, totals.entries) == (Money.of("300.00", "USD"), 1)
