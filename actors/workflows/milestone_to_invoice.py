"""milestone_to_invoice: an approved milestone → invoice in billing → ERP receivable → CRM.

Trigger: MilestoneCompleted from the PSA (key ``project:<workspace>``; the milestone id is
the PSA story id). The PSA knows no fees, so amount, contract line, customer ids and
dimensions come from what deal_to_project recorded: the id map (``project`` workspace →
canonical project, ``milestone`` story → ``MS-<deal line>``, ``account`` → each system's
customer) and the project's ProjectActivated (:func:`~.deal_to_project.activated_milestone`).
Steps:

1. ``create_invoice`` — CreateInvoice in billing: a draft with one line for the milestone
   amount (canonical invoice id ``ms-<milestone id>``, line id the milestone id; Stripe
   finds it again by that id, so a re-run adds nothing);
2. ``finalize_invoice`` — FinalizeInvoice: draft → open, numbered;
3. ``post_invoice`` — PostInvoice to the ERP that books for the project's legal entity,
   with the project's dimensions, as issued (number, issue date);
4. ``crm_progress`` — UpdateBillingProgress on the deal: the sum of the project's
   milestone invoices created so far (id map ``invoice`` entries in billing).

A completed PSA milestone no fixed-fee deal line claimed (a template checkpoint such as
"Service acceptance") bills nothing: the run ends without an effect. Refusals (``billing``
exceptions): a milestone of a PSA project pssync never provisioned, a story mapped to a
milestone the activation lacks, no fee, a fee in another currency than the project's, a
customer missing in billing or the ERP. Ids mapped: ``invoice`` ``ms-<milestone>`` → the
billing invoice and → the ERP invoice. Milestone-to-invoice delay (completion →
finalized) is observed when this run finalized the invoice, never on replays.
"""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
import structlog

from actors.messages import (
    CreateInvoice,
    Envelope,
    FinalizeInvoice,
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    MilestoneCompleted,
    Money,
    PostInvoice,
    UpdateBillingProgress,
)
from adapters.base import CommandResult

from .context import RunContext
from .deal_to_project import MILESTONE, activated_milestone
from .spec import WorkflowSpec
from .time_expense_to_erp import project_facts

__all__ = ["SPEC", "invoice_id_of", "milestone_to_invoice"]

log = structlog.get_logger(__name__)


def invoice_id_of(milestone_id: str) -> str:
    """The canonical id of a milestone's invoice."""
    return f"ms-{milestone_id}"


def _amount(events: tuple[Envelope, ...]) -> Money | None:
    body = events[0].body if events else None
    return body.milestone.amount if isinstance(body, MilestoneCompleted) else None


async def milestone_to_invoice(ctx: RunContext) -> None:
    """Invoice one completed milestone (module docstring)."""
    body = ctx.events[0].body
    assert isinstance(body, MilestoneCompleted)
    reported = body.milestone
    facts = await project_facts(ctx, reported.project_id)
    if facts is None:
        ctx.fail(
            "billing",
            f"Milestone {reported.name or reported.id} (PSA story {reported.id}) was completed "
            f"in PSA project {reported.project_id}, which pssync never provisioned: no invoice "
            "can be raised. Provision the project from its deal (deal_to_project), then retry.",
            detail={"psa_milestone_id": reported.id, "psa_project_id": reported.project_id},
        )
    project = facts.project
    psa = ctx.deps.system("psa")
    if await ctx.journal.canonical_id(MILESTONE, psa, reported.id) is None:
        # A milestone of the PSA template that no fixed-fee deal line claimed ("Service
        # acceptance"): a delivery checkpoint, not a billing event. Nothing to invoice.
        log.info(
            "milestone bills nothing",
            psa_milestone=reported.id,
            name=reported.name,
            project=project.id,
        )
        return
    found = await activated_milestone(
        ctx.journal, psa_system=psa, workspace_id=reported.project_id, story_id=reported.id
    )
    if found is None:
        ctx.fail(
            "billing",
            f"Milestone {reported.name or reported.id} (PSA story {reported.id}) of project "
            f"{project.name} ({project.id}) is mapped to a billing milestone that the "
            "activated project does not have: the id map and the activation disagree. "
            "Check the milestone in the PSA and the deal, fix the id map, then retry.",
            detail={"psa_milestone_id": reported.id, "project_id": project.id},
        )
    milestone = found.milestone
    amount = milestone.amount
    if amount is None or amount.amount <= 0:
        ctx.fail(
            "billing",
            f"Milestone {milestone.name or milestone.id} of project {project.id} has no fee "
            "to invoice. Set the milestone amount on the deal, or resolve if it bills nothing.",
            detail={"milestone_id": milestone.id},
        )
    ctx.amount_at_risk = amount
    if amount.currency != project.currency:
        ctx.fail(
            "billing",
            f"Milestone {milestone.name or milestone.id} of project {project.id} is priced "
            f"in {amount.currency}, the project bills in {project.currency}. Correct the deal "
            "line's currency, then retry.",
            detail={"milestone_id": milestone.id},
        )
    billing = ctx.deps.system("billing")
    erp = ctx.deps.erp_for(facts.legal_entity)
    if erp is None:
        ctx.fail(
            "mapping",
            f"No ERP books for legal entity {facts.legal_entity!r} of project {project.id}: "
            "add it to the ERP routes in the configuration.",
        )
    billing_customer = found.customer_ids.get(billing)
    erp_customer = found.customer_ids.get(erp)
    if billing_customer is None or erp_customer is None:
        missing = " and ".join(
            system
            for system, found in ((billing, billing_customer), (erp, erp_customer))
            if found is None
        )
        ctx.fail(
            "billing",
            f"Customer {project.account_id} of project {project.id} has no record in "
            f"{missing}: re-run provisioning (deal_to_project) for the deal, then retry.",
        )
    invoice = Invoice(
        id=invoice_id_of(milestone.id),
        account_id=project.account_id,
        project_id=project.id,
        contract_id=project.contract_id,
        currency=project.currency,
        legal_entity=facts.legal_entity,
        lines=(
            InvoiceLine(
                id=milestone.id,
                description=f"{project.name}: milestone {milestone.name or milestone.id}",
                unit_price=amount,
                amount=amount,
                project_id=project.id,
                milestone_id=milestone.id,
                dimensions=project.dimensions,
            ),
        ),
    )

    async def create() -> CommandResult:
        return await ctx.deps.execute(
            billing,
            CreateInvoice(
                idempotency_key=ctx.idempotency_key("create_invoice"),
                correlation_id=ctx.correlation_id,
                invoice=invoice,
                customer_id=billing_customer,
            ),
        )

    created = await ctx.step("create_invoice", create, result_type=CommandResult)
    billing_invoice = created.ids["invoice"]
    await ctx.journal.map_id("invoice", invoice.id, billing, billing_invoice, ctx.deps.now())

    async def finalize() -> CommandResult:
        result = await ctx.deps.execute(
            billing,
            FinalizeInvoice(
                idempotency_key=ctx.idempotency_key("finalize_invoice"),
                correlation_id=ctx.correlation_id,
                invoice_id=billing_invoice,
            ),
        )
        if result.created and not ctx.replay:
            completed = ctx.events[0].occurred_at.timestamp()
            ctx.deps.sla.observe_milestone_to_invoice(max(0.0, ctx.deps.now() - completed))
        return result

    finalized = await ctx.step("finalize_invoice", finalize, result_type=CommandResult)

    async def post() -> CommandResult:
        issued = msgspec.structs.replace(
            invoice,
            number=finalized.details.get("number", ""),
            status=InvoiceStatus.OPEN,
            issue_date=datetime.fromtimestamp(ctx.deps.now(), UTC).date(),
        )
        return await ctx.deps.execute(
            erp,
            PostInvoice(
                idempotency_key=ctx.idempotency_key("post_invoice"),
                correlation_id=ctx.correlation_id,
                invoice=issued,
                customer_id=erp_customer,
                dimensions=project.dimensions,
            ),
        )

    posted = await ctx.step("post_invoice", post, result_type=CommandResult)
    await ctx.journal.map_id("invoice", invoice.id, erp, posted.ids[invoice.id], ctx.deps.now())

    async def progress() -> CommandResult:
        invoiced = Money.zero(project.currency)
        for planned in project.milestones:
            if planned.amount is None or planned.amount.currency != project.currency:
                continue
            issued = await ctx.journal.system_id("invoice", invoice_id_of(planned.id), billing)
            if issued is not None:
                invoiced += planned.amount
        return await ctx.deps.execute(
            ctx.deps.system("crm"),
            UpdateBillingProgress(
                idempotency_key=ctx.idempotency_key("crm_progress"),
                correlation_id=ctx.correlation_id,
                account_id=project.account_id,
                opportunity_id=project.opportunity_id,
                project_id=project.id,
                invoiced=invoiced,
            ),
        )

    await ctx.step("crm_progress", progress, result_type=CommandResult)


SPEC = WorkflowSpec(
    name="milestone_to_invoice",
    triggers=(MilestoneCompleted,),
    run=milestone_to_invoice,
    category="billing",
    amount_at_risk=_amount,
)
