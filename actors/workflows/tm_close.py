"""tm_close: the month-end close of time-and-materials invoices (finalize the drafts).

time_expense_to_erp bills a T&M project's approved billable time onto the project's
*draft* invoice of the month in billing (canonical id ``tm-<project>-<YYYY-MM>``) and
never finalizes it, because approvals of the month keep arriving after month end. This
workflow is the close. Trigger: ``BillingPeriodClosed`` (period ``YYYY-MM``, key
``period:<YYYY-MM>``), appended by the
:class:`~actors.workflows.schedule.TmCloseScheduler` once the month ended
``close_after_days`` days ago (``[workflows.tm_close]``; one request per month), or by an
operator at any time after the month's end (``pssync close-period``,
:func:`~actors.workflows.schedule.request_close`). Steps:

1. ``drafts`` — the month's drafts: every project pssync provisioned (a
   ProjectActivated in the journal, as reconcile finds them) whose ``tm-<project>-<month>``
   invoice is in the id map for billing (kind ``invoice``; only T&M projects have one).
2. ``finalize:<project>`` — per project, in id order: ``FinalizeInvoice`` to billing for
   that draft (draft → open, numbered). A draft finance already finalized by hand (open,
   paid…) is a success too: the Stripe adapter finds it past draft and sends nothing.
3. ``exception:<project>`` — a draft billing refuses to issue (deleted or voided in
   billing, say) opens one ``billing`` exception for the billing owner naming the project,
   the invoice and the refusal, unless one is already open for the same project and month
   (marker in its detail): the month's billable time on that draft is not invoiced until
   finance deals with it. One project's refusal stops no other: the run completes.

Nothing is posted here: billing's feed reports each issued invoice (``InvoiceIssued``)
and invoice_feedback posts it to the ERP under the same ``tm-`` id (step
``post_tm_invoice``), once. Time of the month approved after its draft was finalized
goes on the project's next draft, as before. A replayed close finalizes nothing twice
(the drafts are open already) and so makes billing report nothing new.
"""

from __future__ import annotations

import msgspec
import structlog

from actors.errors import PermanentError
from actors.messages import BillingPeriodClosed, Envelope, FinalizeInvoice

from .context import RunContext
from .reconcile import provisioned_projects
from .spec import WorkflowSpec
from .time_expense_to_erp import tm_invoice_id

__all__ = ["SPEC", "Closing", "Draft", "tm_close"]

log = structlog.get_logger(__name__)

INVOICE = "invoice"
"""The id map kind of invoices (canonical ``tm-…`` id → the billing invoice)."""


class Draft(msgspec.Struct, frozen=True, kw_only=True):
    """One project's T&M invoice of the month, as the id map holds it."""

    project_id: str
    invoice_id: str
    """The canonical ``tm-<project>-<YYYY-MM>`` id."""
    billing_id: str
    """The billing system's invoice id."""


class Closing(msgspec.Struct, frozen=True, kw_only=True):
    """What finalizing one draft did (memoised per project)."""

    finalized: bool = False
    """This run issued it (False: it was past draft already, or refused)."""
    number: str = ""
    problem: str = ""
    """Why billing refused to issue it; empty when it is issued."""


async def tm_close(ctx: RunContext) -> None:
    """Finalize one month's T&M drafts, project by project (module docstring)."""
    request = ctx.events[0].body
    assert isinstance(request, BillingPeriodClosed)
    period = request.period
    billing = ctx.deps.system("billing")
    drafts = await ctx.step(
        "drafts", lambda: _drafts(ctx, period, billing), result_type=tuple[Draft, ...]
    )
    finalized = refused = 0
    for draft in drafts:
        closing = await ctx.step(
            f"finalize:{draft.project_id}",
            lambda d=draft: _finalize(ctx, billing, d),
            result_type=Closing,
        )
        if closing.problem:
            refused += 1
            await _open_once(ctx, period, draft, closing.problem)
        elif closing.finalized:
            finalized += 1
    log.info(
        "billing period closed",
        period=period,
        drafts=len(drafts),
        finalized=finalized,
        refused=refused,
    )


async def _drafts(ctx: RunContext, period: str, billing: str) -> tuple[Draft, ...]:
    found: list[Draft] = []
    for project_id in await provisioned_projects(ctx.journal):
        invoice_id = tm_invoice_id(project_id, period)
        billing_id = await ctx.journal.system_id(INVOICE, invoice_id, billing)
        if billing_id is not None:
            found.append(Draft(project_id=project_id, invoice_id=invoice_id, billing_id=billing_id))
    return tuple(found)


async def _finalize(ctx: RunContext, billing: str, draft: Draft) -> Closing:
    try:
        result = await ctx.deps.execute(
            billing,
            FinalizeInvoice(
                idempotency_key=ctx.idempotency_key(f"finalize:{draft.project_id}"),
                correlation_id=ctx.correlation_id,
                invoice_id=draft.billing_id,
            ),
        )
    except PermanentError as exc:
        # One project's draft must not hold back every other project's close.
        log.warning("draft not finalized", invoice=draft.invoice_id, problem=str(exc))
        return Closing(problem=str(exc))
    return Closing(finalized=result.created, number=str(result.details.get("number") or ""))


async def _open_once(ctx: RunContext, period: str, draft: Draft, problem: str) -> None:
    await ctx.open_exception(
        f"exception:{draft.project_id}",
        category="billing",
        message=f"The {period} time-and-materials invoice {draft.invoice_id} of project"
        f" {draft.project_id} (billing invoice {draft.billing_id}) could not be issued at"
        f" the month's close: {problem}. The month's billable time on it is not invoiced."
        " Repair or re-create the invoice in billing and finalize it there (pssync then"
        " posts it to the ERP), then resolve this exception",
        marker=("tm_close", f"{draft.project_id}|{period}"),
        detail={
            "project_id": draft.project_id,
            "invoice_id": draft.invoice_id,
            "billing_invoice_id": draft.billing_id,
        },
    )


def _no_amount(events: tuple[Envelope, ...]) -> None:
    return None


SPEC = WorkflowSpec(
    name="tm_close",
    triggers=(BillingPeriodClosed,),
    run=tm_close,
    category="billing",
    amount_at_risk=_no_amount,
)
"""tm_close's declaration (registered by ``actors.workflows.catalog``)."""
