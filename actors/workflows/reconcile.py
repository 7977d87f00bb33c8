"""reconcile: PSA vs ERP vs billing totals per project and period; mismatches → exceptions.

Trigger: ``ReconciliationRequested`` (period, project ids; empty = every project pssync
provisioned, i.e. every project with a ProjectActivated in the journal). It comes from the
:class:`~actors.workflows.schedule.ReconcileScheduler` or an operator
(:func:`~actors.workflows.schedule.request_reconciliation`). Per project, in id order:

1. ``read:<project>`` — the totals: PSA approved time (``deps.totals(psa)``), the ERP's
   time postings (the ERP that holds the project's job in the id map, else the only ERP),
   billing's invoiced total, and the same ERP's receivables (``deps.receivables(erp)``).
   A read the vendor refuses (e.g. the PSA has no such workspace) becomes that project's
   ``read`` exception (category ``project``): nothing of it is compared, the other
   projects still are. An ERP whose adapter offers no receivables read at all
   (:class:`~actors.systems.ReceivablesNotOffered`) is not a fault of the project's
   records: its ``time`` check is still made, and the ``billing`` check that could not be
   becomes a ``billing_read`` exception (category ``billing``) saying so and stating what
   billing invoiced, so the gap is never silent.
2. Checks, each compared exactly:

   - ``time``: hours at minute resolution (Kantata counts minutes and converts with
     ``Decimal(minutes) / 60``, which does not terminate; a minute is the smallest real
     difference), and the billable amount with a rounding allowance of half a minor unit
     per entry on each side: Kantata rounds each entry's amount, NetSuite each rate
     group's, so honest books can differ by that much and by no more.
   - ``billing``: invoiced total vs ERP receivables, to the cent (both are sums of the
     same invoice totals; tolerance 0).

3. ``exception:<project>:<check>`` — a mismatch opens an exception (``time`` or
   ``billing``) stating both figures and the difference, amount = the money difference,
   unless one is already open for the same project, period and check (re-running never
   duplicates). ``read`` and ``billing_read`` exceptions are opened the same way, without
   an amount. The exception is not a run failure: the run completes.
"""

from __future__ import annotations

from decimal import Decimal

import msgspec
import structlog

from actors.errors import PermanentError
from actors.messages import (
    Envelope,
    Money,
    ProjectActivated,
    ReconciliationRequested,
    decode_envelope,
    event_tag,
    minor_unit_exponent,
)
from actors.systems import ReceivablesNotOffered
from adapters.base import ProjectTotals, TotalsQuery
from store import Journal

from .context import RunContext
from .spec import WorkflowSpec

__all__ = ["SPEC", "Mismatch", "Reading", "compare", "provisioned_projects", "reconcile"]

log = structlog.get_logger(__name__)

_PAGE = 1_000
_MINUTE = Decimal(60)


class Reading(msgspec.Struct, frozen=True, kw_only=True):
    """Every system's totals for one project and period (memoised per project)."""

    psa: ProjectTotals | None = None
    erp: ProjectTotals | None = None
    billing: ProjectTotals | None = None
    receivables: ProjectTotals | None = None
    problem: str = ""
    """Why the totals could not be read (a vendor refused); empty when they were."""
    receivables_problem: str = ""
    """Why the ERP's receivables could not be read (its adapter offers no such read);
    empty when they were. Only the billing check depends on them."""


class Mismatch(msgspec.Struct, frozen=True, kw_only=True):
    """One failed check: what to tell finance, and the money difference."""

    check: str
    category: str
    message: str
    amount: Money | None = None


async def reconcile(ctx: RunContext) -> None:
    """Compare one period's totals project by project (module docstring)."""
    request = ctx.events[0].body
    assert isinstance(request, ReconciliationRequested)
    projects = await ctx.step(
        "projects", lambda: _projects(ctx, request), result_type=tuple[str, ...]
    )
    for project_id in projects:
        query = TotalsQuery(
            project_id=project_id,
            period_start=request.period_start,
            period_end=request.period_end,
        )
        reading = await ctx.step(
            f"read:{project_id}", lambda q=query: _read(ctx, q), result_type=Reading
        )
        for mismatch in compare(query, reading):
            await _open_once(ctx, query, mismatch)
    log.info("reconciliation done", projects=len(projects))


def compare(query: TotalsQuery, reading: Reading) -> list[Mismatch]:
    """The checks that fail for one project's reading (module docstring)."""
    what = f"project {query.project_id}, {query.period_start} to {query.period_end}"
    if reading.problem:
        return [
            Mismatch(
                check="read",
                category="project",
                message=f"{what}: totals could not be read, so nothing was compared:"
                f" {reading.problem}. Fix the project's records, then request a reconcile",
            )
        ]
    found: list[Mismatch] = []
    psa, erp = reading.psa, reading.erp
    if psa is not None and erp is not None:
        hours_differ = _minutes(psa.hours) != _minutes(erp.hours)
        psa_amount, erp_amount = _pair(psa.amount, erp.amount)
        difference = _difference(psa_amount, erp_amount)
        if difference is not None:
            allowance = _half_minor(difference.currency) * (psa.entries + erp.entries)
            amounts_differ = abs(difference.amount) > allowance
        else:
            amounts_differ = psa_amount != erp_amount
        if hours_differ or amounts_differ:
            found.append(
                Mismatch(
                    check="time",
                    category="time",
                    message=f"{what}: {psa.system} has {_hours(psa.hours)} h approved worth"
                    f" {_money(psa_amount)} ({psa.entries} entries); {erp.system} has"
                    f" {_hours(erp.hours)} h posted worth {_money(erp_amount)}"
                    f" ({erp.entries} time bills); difference {_hours(psa.hours - erp.hours)} h,"
                    f" {_money(difference)}. Find the entries posted differently and correct"
                    " the ERP (or the PSA), then request a reconcile",
                    amount=_abs(difference),
                )
            )
    billing, receivables = reading.billing, reading.receivables
    if reading.receivables_problem:
        invoiced = ""
        if billing is not None:
            invoiced = (
                f" {billing.system} invoiced {_money(billing.amount)} ({billing.entries} invoices);"
            )
        found.append(
            Mismatch(
                check="billing_read",
                category="billing",
                message=f"{what}: billing was not compared with the ERP's receivables, which"
                f" could not be read: {reading.receivables_problem}.{invoiced} check them"
                " against the ERP by hand. The time check was made",
            )
        )
    elif billing is not None and receivables is not None:
        invoiced, posted = _pair(billing.amount, receivables.amount)
        if invoiced != posted:
            difference = _difference(invoiced, posted)
            found.append(
                Mismatch(
                    check="billing",
                    category="billing",
                    message=f"{what}: {billing.system} invoiced {_money(invoiced)}"
                    f" ({billing.entries} invoices); {receivables.system} holds"
                    f" {_money(posted)} of receivables ({receivables.entries} invoices);"
                    f" difference {_money(difference)}. Post or correct the missing invoices"
                    " in the ERP, then request a reconcile",
                    amount=_abs(difference),
                )
            )
    return found


async def _projects(ctx: RunContext, request: ReconciliationRequested) -> tuple[str, ...]:
    if request.project_ids:
        return tuple(sorted(set(request.project_ids)))
    return await provisioned_projects(ctx.journal)


async def provisioned_projects(journal: Journal) -> tuple[str, ...]:
    """Every project pssync provisioned (a ProjectActivated in the journal), in id order."""
    found: set[str] = set()
    after, tag = 0, event_tag(ProjectActivated)
    while True:
        page = await journal.read_events(after, _PAGE, [tag])
        for record in page:
            body = decode_envelope(record.body, origin=f"journal seq {record.seq}").body
            if isinstance(body, ProjectActivated):
                found.add(body.project.id)
        if len(page) < _PAGE:
            return tuple(sorted(found))
        after = page[-1].seq or after


async def _read(ctx: RunContext, query: TotalsQuery) -> Reading:
    deps = ctx.deps
    erp = await _erp_of(ctx, query.project_id)
    erp_totals = erp_receivables = None
    receivables_problem = ""
    try:
        psa_totals = await deps.totals(deps.system("psa"), query)
        if erp is not None:
            erp_totals = await deps.totals(erp, query)
        billing_totals = await deps.totals(deps.system("billing"), query)
        if erp is not None:
            try:
                erp_receivables = await deps.receivables(erp, query)
            except ReceivablesNotOffered as exc:
                # The ERP's adapter, not this project, lacks the read: compare what can be.
                receivables_problem = str(exc)
    except PermanentError as exc:
        # One project's unreadable records must not hide every other project's result.
        return Reading(problem=str(exc))
    if erp is None:
        return Reading(problem="no ERP holds the project's job and several ERPs are configured")
    return Reading(
        psa=psa_totals,
        erp=erp_totals,
        billing=billing_totals,
        receivables=erp_receivables,
        receivables_problem=receivables_problem,
    )


async def _erp_of(ctx: RunContext, project_id: str) -> str | None:
    erps = sorted(ctx.deps.roles.get("erp", ()))
    for erp in erps:
        if await ctx.journal.system_id("project", project_id, erp) is not None:
            return erp
    return erps[0] if len(erps) == 1 else None


async def _open_once(ctx: RunContext, query: TotalsQuery, mismatch: Mismatch) -> None:
    marker = f"{query.project_id}|{query.period_start}..{query.period_end}|{mismatch.check}"
    await ctx.open_exception(
        f"exception:{query.project_id}:{mismatch.check}",
        category=mismatch.category,
        message=mismatch.message,
        marker=("reconcile", marker),
        amount=mismatch.amount,
        detail={"project_id": query.project_id, "check": mismatch.check},
    )


def _minutes(hours: Decimal) -> Decimal:
    return (hours * _MINUTE).to_integral_value()


def _half_minor(currency: str) -> Decimal:
    return Decimal(1).scaleb(-minor_unit_exponent(currency)) / 2


def _pair(left: Money | None, right: Money | None) -> tuple[Money | None, Money | None]:
    """Both amounts, a missing one as zero in the other's currency."""
    if left is None and right is not None:
        return Money.zero(right.currency), right
    if right is None and left is not None:
        return left, Money.zero(left.currency)
    return left, right


def _difference(left: Money | None, right: Money | None) -> Money | None:
    """``left - right``; None unless both are there in one currency."""
    if left is None or right is None or left.currency != right.currency:
        return None
    return left - right


def _abs(money: Money | None) -> Money | None:
    if money is None:
        return None
    return Money(amount=abs(money.amount), currency=money.currency)


def _hours(hours: Decimal) -> str:
    return f"{hours.quantize(Decimal('0.01')):f}"


def _money(money: Money | None) -> str:
    """``1200.00 USD``: padded to the currency's minor unit, never rounded (a sub-cent
    figure keeps its digits, so no difference is hidden)."""
    if money is None:
        return "nothing"
    amount, places = money.amount, minor_unit_exponent(money.currency)
    exponent = amount.as_tuple().exponent
    if isinstance(exponent, int) and exponent > -places:
        amount = amount.quantize(Decimal(1).scaleb(-places))
    return f"{amount:f} {money.currency}"


def _no_amount(events: tuple[Envelope, ...]) -> None:
    return None


SPEC = WorkflowSpec(
    name="reconcile",
    triggers=(ReconciliationRequested,),
    run=reconcile,
    category="time",
    amount_at_risk=_no_amount,
)
"""reconcile's declaration (registered by ``actors.workflows.catalog``)."""
