"""Reconciliation reads: time bills and receivables of one job and period, by SuiteQL.

Both find the job by external id first (``SELECT id, currency FROM job …``), then
aggregate in one query (analytics lane):

- time: ``SELECT rate, SUM(hours), COUNT(*) FROM timebill WHERE customer = <job> AND
  trandate BETWEEN … GROUP BY rate``. The amount is Σ rate * hours over the billable
  groups (time bills posted without a rate are the non-billable ones), computed here
  because the sandbox's SuiteQL has no arithmetic (real SuiteQL could ``SUM(hours *
  rate)``). Rounded once per rate, so it can differ by a cent per rate from a sum of
  per-entry rounded amounts.
- receivables: ``SELECT currency, SUM(foreigntotal), SUM(foreignamountunpaid), COUNT(*)
  FROM transaction WHERE type = 'CustInvc' AND entity = <job> AND trandate BETWEEN …``;
  invoices posted against the customer rather than the job are not included.

A project NetSuite does not know yet has zero totals.
"""

from __future__ import annotations

from decimal import Decimal

from actors.errors import PayloadError, PermanentError
from actors.messages import Money

from ..base import ProjectTotals, TotalsQuery
from ..governor import Lane
from .context import Context
from .fields import JobRow, ReceivableTotalsRow, TimebillTotalsRow
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
    """Invoiced total and count of the project's invoices dated in the period."""
    job = await _job(ctx, query.project_id)
    if job is None:
        return _empty(ctx, query)
    rows = await ctx.records.suiteql(
        "SELECT currency, SUM(foreigntotal) AS total, SUM(foreignamountunpaid) AS unpaid, "
        "COUNT(*) AS entries FROM transaction "
        f"WHERE type = 'CustInvc' AND entity = {job.id} AND {_period(query)} GROUP BY currency",
        lane=_LANE,
        correlation_id="",
    )
    groups = [ctx.fields.read("receivable_totals", row, ReceivableTotalsRow) for row in rows]
    if not groups:
        return _empty(ctx, query)
    if len(groups) > 1:
        raise PermanentError(
            f"netsuite: project {query.project_id} has invoices in several currencies",
            system=ctx.system,
            code="MIXED_CURRENCY",
        )
    group = groups[0]
    currency = ctx.options.currency_iso(group.currency)
    if currency is None:
        raise _unmapped_currency(ctx, group.currency)
    return ProjectTotals(
        system=ctx.system,
        project_id=query.project_id,
        period_start=query.period_start,
        period_end=query.period_end,
        amount=Money(amount=group.total, currency=currency),
        entries=group.entries,
    )


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
