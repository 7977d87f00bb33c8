"""deal_to_project: a won CRM deal becomes a customer, project and billing plan everywhere.

Trigger: ``DealWon`` (key: the top of the account hierarchy, so one customer group's deals
run one after another and never race to create the same customer). The CRM reports a won
deal again after *any* change to it — our own write-back included — so a run means "make
the world match this won deal as it is now": every step is an upsert or look-before-create
at the vendor, and a deal whose project is already active ends without touching a vendor.

Steps, in order (names stable; see :func:`deal_to_project`):

1. check the deal (:mod:`.deal_validation`); problems park the run as one exception;
2. ``erp_parent:<account>`` for each parent booked in the same ERP (top first, because the
   ERP links a customer to its parent), then ``erp_customer``, ``psa_client``;
3. ``psa_project`` from the service line's template, with the deal's milestones and
   resource demand; ``erp_job`` with its financial dimensions;
4. ``billing_customer``, ``billing_schedule`` (milestone lines), ``subscription:<line>``;
5. ``crm_writeback`` (ids and status ``active``), ``publish`` (ProjectActivated, once per
   project: its envelope id comes from the project id alone).

Customer fields a target owns (``deps.field_owners``, config ``[governance.customer_master]``:
canonical field → owning system) are that system's to change: a repeat customer (a second
won deal for an account pssync already provisioned) or an existing parent must not get
them rolled back to the CRM's values. So every ``UpsertCustomer`` to a system S (the
``erp_parent:…``, ``erp_customer``, ``psa_client`` and ``billing_customer`` steps) is
restricted (``fields``, see :func:`customer_fields`) to every customer field except those
S owns, aliases resolved both ways (an owner of ``parent_account`` owns ``parent_id``; an
owner of ``invoice_email`` or ``billing_contact`` owns both, the contact carrying the
email). A system that owns none gets the whole account (``fields=()``), as does a
customer S does not have yet: the adapters create a missing customer from the whole
account. Step names and idempotency keys do not depend on the fields, so a resumed or
replayed run meets the same memoised steps.

Id map kinds (:data:`ACCOUNT` …) record every id a step learns; milestone_to_invoice
resolves a completed PSA milestone with :func:`activated_milestone`.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from datetime import UTC, datetime

import msgspec
import structlog

from actors.errors import PermanentError, StoreError
from actors.messages import (
    AnyCommand,
    CreateProjectFromTemplate,
    CreateSubscription,
    DealWon,
    Envelope,
    ExternalRef,
    FinancialDimensions,
    Milestone,
    Money,
    Project,
    ProjectActivated,
    UpdateDealStatus,
    UpsertBillingSchedule,
    UpsertCustomer,
    UpsertJob,
    decode_envelope,
    envelope_id,
)
from actors.messages.commands import CUSTOMER_FIELD_ALIASES, CUSTOMER_FIELDS, INVOICE_EMAIL
from adapters.base import CommandResult
from store import Journal

from .context import RunContext
from .deal_validation import (
    DealFacts,
    DealPlan,
    check_deal,
    deal_amount,
    line_amount,
    milestone_id,
    plan_project,
    project_id,
)
from .spec import WorkflowSpec

__all__ = [
    "ACCOUNT",
    "MILESTONE",
    "PROJECT",
    "RESOURCE_DEMAND",
    "SPEC",
    "SUBSCRIPTION",
    "ActivatedMilestone",
    "activated_milestone",
    "activated_project",
    "activation_envelope_id",
    "customer_fields",
    "deal_to_project",
]

log = structlog.get_logger(__name__)

ACCOUNT = "account"
"""Id map kind: CRM account id ⇄ ERP customer, PSA client, billing customer."""
PROJECT = "project"
"""Id map kind: canonical project (``PRJ-<opportunity>``) ⇄ CRM opportunity, PSA
workspace, ERP job."""
MILESTONE = "milestone"
"""Id map kind: canonical milestone (``MS-<deal line>``) ⇄ PSA milestone story."""
RESOURCE_DEMAND = "resource_demand"
"""Id map kind: canonical demand (``RD-<deal line>``) ⇄ PSA workspace resource."""
SUBSCRIPTION = "subscription"
"""Id map kind: CRM deal line id of a subscription line ⇄ billing subscription."""

SOURCE = "pssync"
_ACTIVATED = "activated"  # the one version of a project's ProjectActivated envelope


def activation_envelope_id(project: str) -> str:
    """The journal id of ``project``'s ProjectActivated: one per project, ever."""
    return envelope_id(
        source=SOURCE, event_type="project.activated", object_id=project, version=_ACTIVATED
    )


async def activated_project(journal: Journal, project: str) -> ProjectActivated | None:
    """``project``'s ProjectActivated as published, or None if it is not active yet."""
    records = await journal.get_events([activation_envelope_id(project)])
    if not records:
        return None
    body = decode_envelope(records[0].body, origin=f"journal seq {records[0].seq}").body
    return body if isinstance(body, ProjectActivated) else None


class ActivatedMilestone(msgspec.Struct, frozen=True, kw_only=True):
    """A billing milestone as activated: what milestone_to_invoice invoices from."""

    milestone: Milestone
    """Canonical id, canonical ``project_id``, ``amount``, deal ``contract_line_id``, name."""
    project: Project
    """As activated: ``account_id``, ``opportunity_id``, currency, dimensions, milestones."""
    customer_ids: dict[str, str]
    """System name → the account's customer id there (ERP, PSA, billing)."""
    project_ids: dict[str, str]
    """System name → the project's id there (CRM opportunity, PSA workspace, ERP job)."""


async def activated_milestone(
    journal: Journal, *, psa_system: str, workspace_id: str, story_id: str
) -> ActivatedMilestone | None:
    """The activated billing milestone of a PSA milestone story, or None.

    None means the story is no billing milestone of an activated project (a template
    milestone no fixed-fee line claimed, or a project pssync did not activate).
    """
    canonical = await journal.canonical_id(MILESTONE, psa_system, story_id)
    project = await journal.canonical_id(PROJECT, psa_system, workspace_id)
    if canonical is None or project is None:
        return None
    activated = await activated_project(journal, project)
    if activated is None:
        return None
    milestone = next((m for m in activated.project.milestones if m.id == canonical), None)
    if milestone is None:
        return None
    return ActivatedMilestone(
        milestone=milestone,
        project=activated.project,
        customer_ids=await journal.ids_of(ACCOUNT, activated.project.account_id),
        project_ids=await journal.ids_of(PROJECT, project),
    )


_CONTACT_FIELDS = frozenset({INVOICE_EMAIL, "billing_contact"})
"""Either names the billing contact's email: whoever owns one owns it, so both are held."""


def customer_fields(owners: Mapping[str, str], system: str) -> tuple[str, ...]:
    """The customer fields an UpsertCustomer to ``system`` writes: all but ``system``'s.

    ``owners`` maps a canonical field to the system that owns it. A field ``system`` owns
    is held back under all its names (``parent_account``/``parent_id``,
    ``payment_terms``/``payment_terms_days``; ``invoice_email``/``billing_contact``).
    ``()`` — the whole account — when ``system`` owns no customer field.
    """
    held: set[str] = set()
    for name, owner in owners.items():
        if owner != system:
            continue
        names = {name, CUSTOMER_FIELD_ALIASES.get(name, name)}
        names |= {alias for alias, field in CUSTOMER_FIELD_ALIASES.items() if field in names}
        if names & _CONTACT_FIELDS:
            names |= _CONTACT_FIELDS
        held |= names & CUSTOMER_FIELDS
    if not held:
        return ()
    # Non-empty while any field stays unowned by ``system`` (a system owning every one
    # of them is not a configuration anyone has; it would get the whole account).
    return tuple(sorted(CUSTOMER_FIELDS - held))


def _options(deps: object) -> tuple[Mapping[str, Collection[str]] | None, Mapping[str, object]]:
    # Optional capabilities of ctx.deps (WorkflowDeps has neither yet): legal entity →
    # currencies it bills in, and service line → default FinancialDimensions.
    currencies = getattr(deps, "entity_currencies", None)
    dimensions = getattr(deps, "service_line_dimensions", None) or {}
    return currencies, dimensions


async def deal_to_project(ctx: RunContext) -> None:
    """Provision one won deal everywhere (module docstring); idempotent end to end."""
    trigger = ctx.events[-1]
    event = trigger.body
    assert isinstance(event, DealWon), f"deal_to_project triggered by {trigger.type}"
    deal = event.opportunity
    project = project_id(deal.id)
    if not ctx.replay:
        # A later version of an activated deal (our own write-back moves it): nothing to
        # provision, unless its billed amounts changed, which needs a person.
        published = await activated_project(ctx.journal, project)
        if published is not None:
            _refuse_changes(ctx, event, published.project)
            log.info("deal already activated", project=project, opportunity=deal.id)
            return
    currencies, dimensions = _options(ctx.deps)
    facts = check_deal(event, erp_for=ctx.deps.erp_for, entity_currencies=currencies)
    if isinstance(facts, list):
        amount = deal_amount(deal)
        lines = [f"{n}. {p.message}" for n, p in enumerate(facts, start=1)]
        ctx.fail(
            facts[0].category,
            "cannot activate the won deal:\n" + "\n".join(lines),
            amount=amount,
            detail={"opportunity": deal.id, "problems": [p.message for p in facts]},
        )
    defaults = dimensions.get(deal.service_line)
    plan = plan_project(
        facts,
        won_on=trigger.occurred_at.date(),
        dimensions=defaults if isinstance(defaults, FinancialDimensions) else None,
    )
    await _Provisioning(ctx, trigger, facts, plan).run()


def _refuse_changes(ctx: RunContext, event: DealWon, active: Project) -> None:
    """Park a run whose deal now bills differently from its activated project."""
    deal = event.opportunity
    now = {
        milestone_id(line.id): line_amount(line)
        for line in deal.lines
        if line.billing_type == "fixed_fee"
    }
    before = {m.id: m.amount for m in active.milestones}
    changes = [
        f"milestone {key}: {before.get(key) or 'none'} → {now.get(key) or 'none'}"
        for key in sorted(set(now) | set(before))
        if before.get(key) != now.get(key)
    ]
    amount = deal_amount(deal)
    if active.budget is not None and amount is not None and amount != active.budget:
        changes.append(f"deal amount: {active.budget} → {amount}")
    if changes:
        ctx.fail(
            "contract",
            f"Deal {deal.name!r} ({deal.id}) changed after project {active.id} was activated "
            f"({'; '.join(changes)}). pssync does not re-plan an active project: agree a "
            "change order, adjust the PSA milestones and billing by hand, then resolve.",
            amount=amount,
            detail={"opportunity": deal.id, "project": active.id, "changes": changes},
        )


class _Provisioning:
    """The steps of one run over a checked deal."""

    def __init__(
        self, ctx: RunContext, trigger: Envelope, facts: DealFacts, plan: DealPlan
    ) -> None:
        self.ctx = ctx
        self.deps = ctx.deps
        self.trigger = trigger
        self.facts = facts
        self.plan = plan
        self.psa = self.deps.system("psa")
        self.billing = self.deps.system("billing")
        self.crm = self.deps.system("crm")

    async def run(self) -> None:
        facts, plan, project = self.facts, self.plan, self.plan.project
        account = facts.account
        erp_customer = await self._erp_customers()
        psa_client = await self._customer("psa_client", self.psa)
        workspace = await self._execute(
            "psa_project",
            self.psa,
            lambda key: CreateProjectFromTemplate(
                idempotency_key=key,
                correlation_id=self.ctx.correlation_id,
                template_id=plan.template,
                project=project,
            ),
        )
        await self._map(PROJECT, project.id, self.psa, workspace.ids[project.id])
        await self._map(PROJECT, project.id, self.crm, facts.deal.id)
        for milestone in project.milestones:
            await self._map(MILESTONE, milestone.id, self.psa, workspace.ids[milestone.id])
        for demand in project.resource_demand:
            if demand.id in workspace.ids:
                await self._map(RESOURCE_DEMAND, demand.id, self.psa, workspace.ids[demand.id])
        job = await self._execute(
            "erp_job",
            facts.erp,
            lambda key: UpsertJob(
                idempotency_key=key,
                correlation_id=self.ctx.correlation_id,
                project=project,
                customer_id=erp_customer,
                dimensions=project.dimensions or FinancialDimensions(),
            ),
        )
        await self._map(PROJECT, project.id, facts.erp, job.ids[project.id])
        billing_customer = await self._customer("billing_customer", self.billing)
        if plan.schedule is not None:
            schedule = plan.schedule
            await self._execute(
                "billing_schedule",
                self.billing,
                lambda key: UpsertBillingSchedule(
                    idempotency_key=key,
                    correlation_id=self.ctx.correlation_id,
                    schedule=schedule,
                    customer_id=billing_customer,
                ),
            )
        subscriptions = []
        for line in plan.subscriptions:
            result = await self._execute(
                f"subscription:{line.id}",
                self.billing,
                lambda key, line=line: CreateSubscription(
                    idempotency_key=key,
                    correlation_id=self.ctx.correlation_id,
                    customer_id=billing_customer,
                    project_id=project.id,
                    line=line,
                ),
            )
            subscriptions.append(result.ids["subscription"])
            await self._map(SUBSCRIPTION, line.id, self.billing, result.ids["subscription"])
        refs = (
            ExternalRef(system=facts.erp, id=erp_customer, object_type="customer"),
            ExternalRef(system=self.psa, id=psa_client, object_type="customer"),
            ExternalRef(system=self.billing, id=billing_customer, object_type="customer"),
            ExternalRef(system=self.psa, id=workspace.ids[project.id], object_type="project"),
            ExternalRef(system=facts.erp, id=job.ids[project.id], object_type="job"),
        )
        # The CRM has one field per system on the deal: the first subscription goes there.
        crm_refs = refs + tuple(
            ExternalRef(system=self.billing, id=sid, object_type="subscription")
            for sid in subscriptions[:1]
        )
        await self._execute(
            "crm_writeback",
            self.crm,
            lambda key: UpdateDealStatus(
                idempotency_key=key,
                correlation_id=self.ctx.correlation_id,
                opportunity_id=facts.deal.id,
                status="active",
                refs=crm_refs,
            ),
        )
        all_refs = refs + tuple(
            ExternalRef(system=self.billing, id=sid, object_type="subscription")
            for sid in subscriptions
        )
        await self.ctx.step("publish", lambda: self._publish(all_refs), result_type=bool)
        log.info("project activated", project=project.id, account=account.id)

    async def _publish(self, refs: tuple[ExternalRef, ...]) -> bool:
        now = self.deps.now()
        moment = datetime.fromtimestamp(now, UTC)
        project = msgspec.structs.replace(self.plan.project, external_refs=refs)
        envelope = Envelope.new(
            ProjectActivated(project=project, refs=refs),
            source=SOURCE,
            object_id=project.id,
            version=_ACTIVATED,
            occurred_at=moment,
            recorded_at=moment,
            caused_by=self.trigger,
        )
        published = await self.deps.publish(self.ctx.journal, envelope)
        # Inside the step and only when new: a resumed or replayed run records no second
        # activation time for the same project.
        if published and not self.ctx.replay:
            self.deps.sla.observe_activation(max(now - self.trigger.occurred_at.timestamp(), 0))
        return published

    async def _erp_customers(self) -> str:
        """Parents booked in the same ERP (top first), then the account: its ERP id.

        Each is written without the fields the ERP owns (:func:`customer_fields`).
        """
        facts = self.facts
        chain = [facts.account]
        for parent in facts.ancestors:
            if not parent.legal_entity or self.deps.erp_for(parent.legal_entity) != facts.erp:
                break  # the ERP cannot link to a customer another ERP books
            chain.append(parent)
        # The topmost customer this ERP gets has no parent in it.
        chain[-1] = msgspec.structs.replace(chain[-1], parent_id=None)
        customer_id = ""
        for account in reversed(chain):
            own = account.id == facts.account.id
            step = "erp_customer" if own else f"erp_parent:{account.id}"
            contacts = (facts.billing_contact,) if own else ()
            result = await self._execute(
                step,
                facts.erp,
                lambda key, account=account, contacts=contacts: UpsertCustomer(
                    idempotency_key=key,
                    correlation_id=self.ctx.correlation_id,
                    account=account,
                    contacts=contacts,
                    fields=customer_fields(self.deps.field_owners, facts.erp),
                ),
            )
            customer_id = result.ids[account.id]
            await self._map(ACCOUNT, account.id, facts.erp, customer_id)
        return customer_id

    async def _customer(self, step: str, system: str) -> str:
        """The account as ``system``'s customer (the fields it owns held back): its id."""
        account = self.facts.account
        result = await self._execute(
            step,
            system,
            lambda key: UpsertCustomer(
                idempotency_key=key,
                correlation_id=self.ctx.correlation_id,
                account=account,
                contacts=(self.facts.billing_contact,),
                fields=customer_fields(self.deps.field_owners, system),
            ),
        )
        await self._map(ACCOUNT, account.id, system, result.ids[account.id])
        return result.ids[account.id]

    async def _execute(
        self, step: str, system: str, command: Callable[[str], AnyCommand]
    ) -> CommandResult:
        async def apply() -> CommandResult:
            try:
                return await self.deps.execute(system, command(self.ctx.idempotency_key(step)))
            except PermanentError as exc:
                self._explain(step, system, exc)
                raise

        return await self.ctx.step(step, apply, result_type=CommandResult)

    def _explain(self, step: str, system: str, exc: PermanentError) -> None:
        """Turn the ERP's refusal of an unbillable currency into a contract exception."""
        facts = self.facts
        if system != facts.erp or exc.code != "UNMAPPED" or "currency" not in str(exc):
            return
        deal = facts.deal
        self.ctx.fail(
            "contract",
            f"Deal {deal.name!r} ({deal.id}) is in {facts.currency}, which legal entity "
            f"{facts.legal_entity} cannot bill in: its ERP {system} has no {facts.currency} "
            "currency. Re-price the deal in a currency the entity bills in, or contract it "
            f"with another legal entity. (ERP: {exc.message})",
            amount=facts.amount,
            detail={"opportunity": deal.id, "step": step, "erp": system},
        )

    async def _map(self, kind: str, canonical: str, system: str, system_id: str) -> None:
        try:
            await self.ctx.journal.map_id(kind, canonical, system, system_id, self.deps.now())
        except StoreError as exc:
            # The vendor now holds the entity under another id than pssync recorded
            # (deleted and recreated by hand?): a person must say which one is right.
            self.ctx.fail(
                "mapping",
                f"{kind} {canonical} in {system}: {exc}. Decide which {system} record is "
                "the real one, fix the other (or the id map), then retry.",
                amount=self.facts.amount,
                detail={"kind": kind, "canonical_id": canonical, "system": system},
            )


def _amount_at_risk(events: tuple[Envelope, ...]) -> Money | None:
    body = events[-1].body
    return deal_amount(body.opportunity) if isinstance(body, DealWon) else None


SPEC = WorkflowSpec(
    name="deal_to_project",
    triggers=(DealWon,),
    run=deal_to_project,
    category="contract",
    amount_at_risk=_amount_at_risk,
)
"""The workflow; ``actors/workflows/catalog.py`` registers it."""
