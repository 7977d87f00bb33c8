"""Reconciliation reads: time bills and receivables of one job and period, by SuiteQL.

Both find the job by external id first (``SELECT id, currency FROM job …``), then
aggregate in one query (analytics lane):

- time: ``SELECT rate, SUM(hours), COUNT(*) FROM timebill WHERE customer = <job> AND
  trandate BETWEEN … GROUP BY rate``. The amount is Σ rate * hours over the billable
  groups (time bills posted without a rate are the non-billable ones), computed here
  because the sandbox's SuiteQL has no arithmetic (real SuiteQL could ``SUM(hours *
  rate)``). Rounded once per rate, so it can differ by a cent per rate from a sum of
  per-entry rounded amounts.
- receivables: ``SELECT id, currency, foreigntotal AS total FROM transaction WHERE type =
  'CustInvc' AND entity = <job> AND trandate BETWEEN … ORDER BY id`` (one row per invoice),
  then the void journals of those invoices by external id (``<prefix>-void-<invoice id>``,
  the look-before-create query of ``UpdateInvoiceStatus``, in chunks); a voided invoice is
  left out. The adapter voids with a reversing journal entry posted beside the invoice
  (``receivables.py``), so the invoice itself keeps its total and stays a ``CustInvc``:
  summing invoices alone would count voided ones, which billing (Stripe) does not. A
  write-off (``-woff-`` journal) still counts, as Stripe counts ``uncollectible``. The void
  is recognised whatever the journal's date, as Stripe's status is read as it is now.
  Invoices posted against the customer rather than the job are not included.

A project NetSuite does not know yet has zero totals.
"""

from __future__ import annotations

from decimal import Decimal

from actors.errors import PayloadError, PermanentError
from actors.messages import Money

from ..base import ProjectTotals, TotalsQuery
from ..governor import Lane
from .context import Context
from .fields import InvoiceTotalRow, JobRow, TimebillTotalsRow
from .wire import quote_literal

__all__ = ["receivables_totals", "time_totals"]

_LANE = Lane.ANALYTICS


async def time_totals(ctx: Context, query: TotalsQuery) -> ProjectTotals:
    """Hours, billable amount and count of the project's time bills in the period."""
    job = await _job(ctx, query.project_id)
    if job is None:
        return _empty(ctx, query)
    rows = await ctx.records.suiteql(
        "SELECT rate, SUM(hours) AS hours, COUNT(*) AS entries FROM timebill "
        f"WHERE customer = {job.id} AND {_period(query)} GROUP BY rate",
        lane=_LANE,
        correlation_id="",
    )
    groups = [ctx.fields.read("timebill_totals", row, TimebillTotalsRow) for row in rows]
    hours = sum((group.hours for group in groups), Decimal(0))
    entries = sum(group.entries for group in groups)
    amount = None
    billable = [group for group in groups if group.rate is not None]
    if billable:
        currency = _currency(ctx, job)
        amount = sum(
            (Money(amount=g.rate * g.hours, currency=currency).rounded() for g in billable),  # type: ignore[operator]
            Money.zero(currency),
        )
    return ProjectTotals(
        system=ctx.system,
        project_id=query.project_id,
        period_start=query.period_start,
        period_end=query.period_end,
        hours=hours,
        amount=amount,
        entries=entries,
    )


async def receivables_totals(ctx: Context, query: TotalsQuery) -> ProjectTotals:
    """Invoiced total and count of the project's invoices dated in the period, not voided."""
    job = await _job(ctx, query.project_id)
    if job is None:
        return _empty(ctx, query)
    rows = await ctx.records.suiteql(
        "SELECT id, currency, foreigntotal AS total FROM transaction "
        f"WHERE type = 'CustInvc' AND entity = {job.id} AND {_period(query)} ORDER BY id",
        lane=_LANE,
        correlation_id="",
    )
    invoices = [ctx.fields.read("receivable_totals", row, InvoiceTotalRow) for row in rows]
    voided = await _voided(ctx, [invoice.id for invoice in invoices])
    totals: dict[str, Decimal] = {}
    entries = 0
    for invoice in invoices:
        if invoice.id in voided:
            continue
        totals[invoice.currency] = totals.get(invoice.currency, Decimal(0)) + invoice.total
        entries += 1
    if not totals:
        return _empty(ctx, query)
    if len(totals) > 1:
        raise PermanentError(
            f"netsuite: project {query.project_id} has invoices in several currencies",
            system=ctx.system,
            code="MIXED_CURRENCY",
        )
    [(internal_currency, total)] = totals.items()
    currency = ctx.options.currency_iso(internal_currency)
    if currency is None:
        raise _unmapped_currency(ctx, internal_currency)
    return ProjectTotals(
        system=ctx.system,
        project_id=query.project_id,
        period_start=query.period_start,
        period_end=query.period_end,
        amount=Money(amount=total, currency=currency),
        entries=entries,
    )


async def _voided(ctx: Context, invoice_ids: list[str]) -> set[str]:
    """The invoices among ``invoice_ids`` that ``UpdateInvoiceStatus`` voided."""
    if not invoice_ids:
        return set()
    void_ids = {ctx.refs.external_id("void", invoice_id): invoice_id for invoice_id in invoice_ids}
    found = await ctx.lookup(
        ctx.target("journal_entry"), list(void_ids), lane=_LANE, correlation_id=""
    )
    return {void_ids[external_id] for external_id in found if external_id in void_ids}


async def _job(ctx: Context, project_id: str) -> JobRow | None:
    external_id = ctx.refs.external_id("job", project_id)
    rows = await ctx.records.suiteql(
        f"SELECT id, currency FROM job WHERE externalid = {quote_literal(external_id)}",
        lane=_LANE,
        correlation_id="",
    )
    if not rows:
        return None
    job = ctx.fields.read("job_row", rows[0], JobRow, record_id=external_id)
    if not job.id.isdigit():  # it is spliced into the next query
        raise PayloadError(f"job id {job.id!r} is not numeric", where=f"netsuite job {external_id}")
    return job


def _period(query: TotalsQuery) -> str:
    start, end = query.period_start.isoformat(), query.period_end.isoformat()
    return f"trandate BETWEEN TO_DATE('{start}', 'YYYY-MM-DD') AND TO_DATE('{end}', 'YYYY-MM-DD')"


def _currency(ctx: Context, job: JobRow) -> str:
    code = ctx.options.currency_iso(job.currency or "")
    if code is None:
        raise _unmapped_currency(ctx, job.currency or "")
    return code


def _unmapped_currency(ctx: Context, internal_id: str) -> PermanentError:
    return PermanentError(
        f"netsuite: currency {internal_id!r} is not in options.currencies",
        system=ctx.system,
        code="UNMAPPED",
    )


def _empty(ctx: Context, query: TotalsQuery) -> ProjectTotals:
    return ProjectTotals(
        system=ctx.system,
        project_id=query.project_id,
        period_start=query.period_start,
        period_end=query.period_end,
    )
