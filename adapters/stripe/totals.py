"""Reconciliation totals: what Stripe has invoiced for one project in one period.

Invoices carry the canonical project id in metadata (``project_key``) when pssync made
them; they are found with Stripe search, which is eventually consistent (an invoice
finalized in the last minute may be missing; the nightly reconcile runs long after).
An invoice counts when it was finalized (issued) within the period, UTC, and is not void:
drafts are not invoiced yet, voided ones are cancelled.
"""

from __future__ import annotations

from datetime import UTC, datetime

from actors.errors import PermanentError
from actors.messages import Money

from ..base import ProjectTotals, TotalsQuery
from ..governor import Lane
from .api import StripeApi
from .wire import Invoice

__all__ = ["invoiced_totals"]

_COUNTED = ("open", "paid", "uncollectible")


async def invoiced_totals(api: StripeApi, query: TotalsQuery) -> ProjectTotals:
    """Sum of invoice totals (tax included) issued for the project within the period."""
    if "'" in query.project_id or "\\" in query.project_id:
        raise PermanentError(
            f"project id {query.project_id!r} cannot be searched for in Stripe",
            system=api.system,
            code="query",
        )
    search = f"metadata['{api.options.project_key}']:'{query.project_id}'"
    totals: dict[str, int] = {}
    entries = 0
    async for invoice in api.search(
        "/v1/invoices/search", Invoice, search, lane=Lane.ANALYTICS, correlation_id=""
    ):
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
