"""Reconciliation totals: what Stripe has invoiced for one project in one period.

Two kinds of invoice belong to a project, found two ways (analytics lane, both):

- invoices pssync made (milestones) carry the canonical project id in their own metadata
  (``project_key``): ``GET /v1/invoices/search`` with ``metadata['<project_key>']:'<id>'``;
- invoices Stripe raises itself for the subscriptions pssync created (``CreateSubscription``
  writes ``project_key`` on the subscription, not on its invoices, which carry no pssync
  metadata): the project's subscriptions by ``GET /v1/subscriptions/search`` with the same
  query (search does not filter by status unless asked, so cancelled subscriptions count
  for the invoices they raised), then each one's invoices by ``GET /v1/invoices?
  subscription=<id>&created[lt]=<day after the period>`` (a list, strongly consistent).
  An invoice is finalized no earlier than it is created, so one created after the period
  cannot count; there is no lower bound, as a draft created before the period may be
  finalized in it. ``status`` is not sent: the list filter takes one status and three
  count, so drafts and voids are dropped here instead.

An invoice found both ways (a subscription invoice someone tagged with the project) is
counted once (by id). Search is eventually consistent (an invoice or subscription from the
last minute may be missing; the nightly reconcile runs long after).

An invoice counts when it was finalized (issued) within the period, UTC, and is open, paid
or uncollectible: drafts are not invoiced yet, voided ones are cancelled. The amount is the
invoice ``total`` (tax included), in one currency.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from actors.errors import PermanentError
from actors.messages import Money

from ..base import ProjectTotals, TotalsQuery
from ..governor import Lane
from .api import StripeApi
from .wire import Invoice, Subscription

__all__ = ["invoiced_totals"]

_COUNTED = ("open", "paid", "uncollectible")
_LANE = Lane.ANALYTICS


async def invoiced_totals(api: StripeApi, query: TotalsQuery) -> ProjectTotals:
    """Sum of invoice totals (tax included) issued for the project within the period."""
    if "'" in query.project_id or "\\" in query.project_id:
        raise PermanentError(
            f"project id {query.project_id!r} cannot be searched for in Stripe",
            system=api.system,
            code="query",
        )
    search = f"metadata['{api.options.project_key}']:'{query.project_id}'"
    invoices: dict[str, Invoice] = {}
    async for invoice in api.search(
        "/v1/invoices/search", Invoice, search, lane=_LANE, correlation_id=""
    ):
        invoices[invoice.id] = invoice
    after_period = datetime.combine(query.period_end + timedelta(days=1), time(), UTC)
    async for subscription in api.search(
        "/v1/subscriptions/search", Subscription, search, lane=_LANE, correlation_id=""
    ):
        async for invoice in api.list_all(
            "/v1/invoices",
            Invoice,
            lane=_LANE,
            correlation_id="",
            params={
                "subscription": subscription.id,
                "created": {"lt": int(after_period.timestamp())},
            },
        ):
            invoices.setdefault(invoice.id, invoice)

    totals: dict[str, int] = {}
    entries = 0
    for invoice in invoices.values():
        issued = invoice.status_transitions.finalized_at
        if invoice.status not in _COUNTED or issued is None:
            continue
        day = datetime.fromtimestamp(issued, UTC).date()
        if not query.period_start <= day <= query.period_end:
            continue
        currency = invoice.currency.upper()
        totals[currency] = totals.get(currency, 0) + invoice.total
        entries += 1
    if len(totals) > 1:
        raise PermanentError(
            f"project {query.project_id} is invoiced in several currencies "
            f"({', '.join(sorted(totals))}); totals cannot be compared as one amount",
            system=api.system,
            code="currency",
        )
    amount = None
    for currency, minor in totals.items():
        amount = Money.from_minor_units(minor, currency)
    return ProjectTotals(
        system=api.system,
        project_id=query.project_id,
        period_start=query.period_start,
        period_end=query.period_end,
        amount=amount,
        entries=entries,
    )
