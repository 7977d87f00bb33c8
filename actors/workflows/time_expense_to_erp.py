"""time_expense_to_erp: approved time and expenses → ERP postings, marked exported in the PSA.

One run takes a group of one project's TimeApproved / ExpenseApproved events (the
dispatcher batches one key's pending events up to ``max_batch``; key
``project:<PSA workspace>``) and, for each month of work (the period) in order:

1. ``post_time:<YYYY-MM>`` — one PostTimeEntries with the period's time entries to the
   ERP that books for the project's legal entity, with the project's dimensions (NetSuite:
   one SuiteQL look per 500 entries, then one time bill upsert per new entry — its REST
   record service has no bulk create);
2. ``mark_time:<YYYY-MM>`` — each entry marked exported in the PSA with its own time bill
   (MarkEntriesExported names one document, so one command per entry, 8 in flight);
3. ``post_expenses:<YYYY-MM>`` — one PostExpenseLines (NetSuite: one journal entry), then
   ``mark_expenses:<YYYY-MM>``, each expense marked with ``<journal entry>:<expense>``;
4. ``invoice_time:<YYYY-MM>`` — time-and-materials deals only: the period's billable hours
   become lines (one per bill rate per run, naming their entries) of the project's *draft*
   invoice of the period in billing (canonical id ``tm-<project>-<YYYY-MM>``). Runs of
   the same period add to the same draft, which this workflow never finalizes: approvals
   of the month keep arriving after month end. The workflow tm_close finalizes the
   month's drafts ``close_after_days`` after the month ends (or finance does, in
   billing); invoice_feedback then posts the issued invoice to the ERP under the same id
   (step ``post_tm_invoice``), so its payments and status changes find it. Time of a
   month approved after its draft was finalized goes on the project's next draft still
   open (the following month's; its lines say which month they bill); if a finalized
   draft already holds some of a step's lines, the run parks on an exception rather than
   risk billing the same work twice.

An entry is posted once even when the PSA reports it twice (edited after approval: a
second event in another batch): each step skips entries the id map already holds (kinds
``time_entry`` → ERP time bill, ``expense`` → ``<journal entry>:<expense>``,
``billed_time`` → ``<billing invoice>:<entry>``), and NetSuite finds time bills by
external id. Steps are named by period only, so a resumed or replayed run meets the same
steps; a replay of posted history calls no ERP at all.

Refusals. Of the whole run (``time`` exceptions, amount at risk = the batch's billable
amount; the run parks): a PSA project deal_to_project never provisioned, a consultant
without an ERP employee (the ERP refuses the period's time bills); no ERP booking for the
project's legal entity is a ``mapping`` exception. Of one entry: zero or negative hours, a
billable entry of a T&M deal without a bill rate or with one in another currency. A
refused entry holds back no other: every entry is validated first, the valid ones are
posted, marked and invoiced as above, and then step ``refused`` opens one ``time``
exception listing every refused entry (detail ``entry_ids`` and ``refused``: consultant,
date, hours, reasons), amount at risk = the refused entries' billable amount only, and
the run completes — parking it would hold back every later run of the project, and
nothing in it is left to retry: the PSA sends corrected entries as new events, which post
in their own run. Which entries are valid depends on nothing but the run's events and the
project's facts, so every attempt and replay posts the same subset under the same step
names, and a replay finds the exception already open (marker: the refused event
versions) instead of opening another. The project's facts come from
:func:`project_facts` (deal_to_project's id map and ProjectActivated). Approval-to-posting
delay is observed once per newly posted entry (not on replays).
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from decimal import Decimal

import msgspec
import structlog
import trio

from actors.errors import PermanentError
from actors.messages import (
    CreateInvoice,
    DealWon,
    Envelope,
    ExpenseApproved,
    ExpenseEntry,
    ExternalRef,
    FinancialDimensions,
    Invoice,
    InvoiceLine,
    MarkEntriesExported,
    Money,
    PostExpenseLines,
    PostTimeEntries,
    Project,
    ProjectActivated,
    TimeApproved,
    TimeEntry,
    decode_envelope,
)
from store import Journal

from .context import RunContext
from .deal_to_project import ACCOUNT, PROJECT, activation_envelope_id
from .months import month_bounds, month_of, next_month
from .spec import WorkflowSpec

__all__ = [
    "SPEC",
    "ProjectFacts",
    "Refusal",
    "billable_amount",
    "find_refusals",
    "map_ids",
    "project_facts",
    "refusal_message",
    "refused_amount",
    "time_expense_to_erp",
    "tm_invoice_id",
    "tm_invoice_parts",
]

_TM_INVOICE = re.compile(r"tm-(?P<project>.+)-(?P<period>\d{4}-(?:0[1-9]|1[0-2]))")

_LATE_DRAFTS = 12
"""Drafts tried for a period's billable time: its own, then the following months' (one
finalized draft after another is rare; twelve in a row is a problem for a person)."""
_NOT_EDITABLE = "invoice_not_editable"
"""The billing adapter's code for lines sent to an invoice that is no longer a draft."""

_MARKS_IN_FLIGHT = 8
"""MarkEntriesExported commands in flight for one run (the PSA's governor paces them)."""


# -- the project, as deal_to_project left it ---------------------------------------------


class ProjectFacts(msgspec.Struct, frozen=True, kw_only=True):
    """What pssync knows of a provisioned project (from deal_to_project's records)."""

    project: Project
    """The canonical project as ProjectActivated carried it (milestones with amounts)."""
    psa_id: str
    time_and_materials: bool = False
    """The deal has a time-and-materials line: billable hours are invoiced."""
    customer_ids: dict[str, str] = {}
    """System name → the project's customer there (ERP, PSA, billing)."""

    @property
    def legal_entity(self) -> str | None:
        return self.project.dimensions.legal_entity if self.project.dimensions else None


async def project_facts(ctx: RunContext, psa_project_id: str) -> ProjectFacts | None:
    """The provisioned project behind a PSA workspace id; None if pssync never made it.

    deal_to_project maps the canonical project to the PSA workspace (id map kind
    ``project``), the account to each system's customer (kind ``account``) and publishes
    one ProjectActivated per project, caused by the DealWon whose lines say how the work
    is billed.
    """
    journal: Journal = ctx.journal
    psa = ctx.deps.system("psa")
    canonical = await journal.canonical_id(PROJECT, psa, psa_project_id)
    if canonical is None:
        return None
    records = await journal.get_events([activation_envelope_id(canonical)])
    if not records:
        return None
    activation = decode_envelope(records[0].body, origin=f"journal seq {records[0].seq}")
    body = activation.body
    if not isinstance(body, ProjectActivated):
        return None
    deal = await _deal_of(journal, activation)
    if deal is not None:
        tm = any(line.billing_type == "time_and_materials" for line in deal.opportunity.lines)
    else:  # the deal's event was pruned: its T&M lines became resource demand
        tm = bool(body.project.resource_demand)
    return ProjectFacts(
        project=body.project,
        psa_id=psa_project_id,
        time_and_materials=tm,
        customer_ids=await journal.ids_of(ACCOUNT, body.project.account_id),
    )


async def _deal_of(journal: Journal, activation: Envelope) -> DealWon | None:
    if activation.causation_id is None:
        return None
    for record in await journal.get_events([activation.causation_id]):
        body = decode_envelope(record.body).body
        if isinstance(body, DealWon):
            return body
    return None


async def map_ids(
    ctx: RunContext, kind: str, system: str, pairs: Iterable[tuple[str, str]]
) -> None:
    """Record canonical ⇄ system ids together (the journal commits them as one group)."""
    now = ctx.deps.now()

    async def one(canonical: str, system_id: str) -> None:
        await ctx.journal.map_id(kind, canonical, system, system_id, now)

    async with trio.open_nursery() as nursery:
        for canonical, system_id in pairs:
            nursery.start_soon(one, canonical, system_id)


async def _unmapped(ctx: RunContext, kind: str, system: str, ids: Sequence[str]) -> set[str]:
    missing = set()
    for entry_id in ids:
        if await ctx.journal.system_id(kind, entry_id, system) is None:
            missing.add(entry_id)
    return missing


# -- amounts and validation ---------------------------------------------------------------


def _entries(events: Sequence[Envelope]) -> tuple[list[TimeEntry], list[ExpenseEntry]]:
    """The batch's entries, the latest version of each id, in first-seen order."""
    times: dict[str, TimeEntry] = {}
    expenses: dict[str, ExpenseEntry] = {}
    for envelope in events:
        body = envelope.body
        if isinstance(body, TimeApproved):
            times[body.entry.id] = body.entry
        elif isinstance(body, ExpenseApproved):
            expenses[body.entry.id] = body.entry
    return list(times.values()), list(expenses.values())


def billable_amount(events: tuple[Envelope, ...]) -> Money | None:
    """The batch's billable time and expenses, in the currency most of it is in."""
    return _billable(*_entries(events))


def _billable(times: Iterable[TimeEntry], expenses: Iterable[ExpenseEntry]) -> Money | None:
    """Billable time and expenses, in the currency most of it is in (None: nothing billable)."""
    amounts: dict[str, Money] = {}
    money = [entry.bill_amount() for entry in times]
    money += [entry.amount for entry in expenses if entry.billable]
    for amount in money:
        if amount is not None:
            amounts[amount.currency] = amounts.get(amount.currency, Money.zero(amount.currency))
            amounts[amount.currency] += amount
    if not amounts:
        return None
    return max(amounts.values(), key=lambda total: abs(total.amount))


log = structlog.get_logger(__name__)

_LISTED_REFUSALS = 20
"""Refused entries named in an exception's message; its detail names every one."""


class Refusal(msgspec.Struct, frozen=True, kw_only=True):
    """A time entry that cannot be posted, and why (operator-facing, one clause each)."""

    entry: TimeEntry
    reasons: tuple[str, ...]

    def describe(self) -> str:
        entry = self.entry
        where = (
            f"time entry {entry.id} of consultant {entry.consultant_id} on {entry.date_performed}"
        )
        return f"{where} {'; and '.join(self.reasons)}"

    def detail(self) -> dict[str, object]:
        entry = self.entry
        return {
            "entry_id": entry.id,
            "consultant_id": entry.consultant_id,
            "date": entry.date_performed.isoformat(),
            "hours": str(entry.hours),
            "reasons": list(self.reasons),
        }


def find_refusals(facts: ProjectFacts, times: list[TimeEntry]) -> list[Refusal]:
    """Every time entry that cannot be posted, in batch order.

    A pure function of the run's events and the project's facts: each attempt and each
    replay of a run refuses the same entries, so the steps meet the same valid subset.
    """
    refusals = []
    for entry in times:
        reasons = []
        if entry.hours <= 0:
            reasons.append(
                f"has {entry.hours} hours: correct the hours in the PSA (or delete the entry) "
                "and approve the timesheet again"
            )
        if facts.time_and_materials and entry.billable:
            if entry.bill_rate is None:
                reasons.append(
                    "is billable on a time-and-materials project but has no bill rate: set "
                    "the consultant's rate in the PSA rate card and approve the timesheet again"
                )
            elif entry.bill_rate.currency != facts.project.currency:
                reasons.append(
                    f"has a bill rate in {entry.bill_rate.currency}, but the project bills in "
                    f"{facts.project.currency}: fix the rate card in the PSA and approve the "
                    "timesheet again"
                )
        if reasons:
            refusals.append(Refusal(entry=entry, reasons=tuple(reasons)))
    return refusals


def refusal_message(facts: ProjectFacts, refusals: Sequence[Refusal], posted: int) -> str:
    """The operator's message naming the refused entries (the first 20 of them)."""
    name = f"{facts.project.name} ({facts.project.id}, PSA workspace {facts.psa_id})"
    count = len(refusals)
    listed = [refusal.describe() for refusal in refusals[:_LISTED_REFUSALS]]
    if count > _LISTED_REFUSALS:
        listed.append(f"and {count - _LISTED_REFUSALS} more (the detail names every one)")
    entries = "time entry" if count == 1 else f"{count} time entries"
    others = (
        f" (the batch's other {posted} {'entry is' if posted == 1 else 'entries are'} posted)"
        if posted
        else ""
    )
    return (
        f"Project {name}: {entries} cannot be posted{others}: {'; '.join(listed)}. "
        "Once the PSA has sent them corrected (approved again, they post in a run of their "
        "own), resolve this exception; retrying it changes nothing."
    )


def refused_amount(refusals: Sequence[Refusal]) -> Money | None:
    """The money at risk: the refused entries' billable amount (the batch's is posted)."""
    return _billable((refusal.entry for refusal in refusals), ())


async def _report_refusals(
    ctx: RunContext, facts: ProjectFacts, refusals: list[Refusal], posted: int
) -> None:
    """Open one ``time`` exception naming every refused entry; the run goes on to complete.

    Not a run failure: a parked run would hold back every later run of the project (one
    key's runs go in order), and nothing in this run is left to retry — corrected entries
    arrive as new events. The money at risk is the refused entries' only. The exception
    is opened once per set of refused event versions: a resumed run meets the memoised
    step, a replay finds it open by its marker.
    """
    versions = {
        envelope.body.entry.id: envelope.id
        for envelope in ctx.events
        if isinstance(envelope.body, TimeApproved)
    }
    run = ctx.run
    await ctx.open_exception(
        "refused",
        category="time",
        message=refusal_message(facts, refusals, posted),
        marker=(
            "refused_entries",
            _digest(tuple(sorted(versions[refusal.entry.id] for refusal in refusals))),
        ),
        amount=refused_amount(refusals),
        detail={
            "workflow": run.workflow,
            "run_id": run.id,
            "key": run.key,
            "correlation_id": run.correlation_id,
            "replay": run.replay,
            "trigger_ids": list(ctx.trigger_ids),
            "detail": {
                "entry_ids": [refusal.entry.id for refusal in refusals],
                "refused": [refusal.detail() for refusal in refusals],
            },
        },
    )


def tm_invoice_id(project_id: str, period: str) -> str:
    """The canonical id of a project's time-and-materials invoice of ``period`` (YYYY-MM):
    the draft step ``invoice_time`` fills, which invoice_feedback posts once issued."""
    return f"tm-{project_id}-{period}"


def tm_invoice_parts(invoice_id: str) -> tuple[str, str] | None:
    """``(project, period)`` of a T&M invoice id (:func:`tm_invoice_id`); None for others."""
    found = _TM_INVOICE.fullmatch(invoice_id)
    return (found["project"], found["period"]) if found else None


# -- the workflow -----------------------------------------------------------------------


class TimePosting(msgspec.Struct, frozen=True, kw_only=True):
    """What ``post_time:<period>`` did: time entry id → ERP time bill id."""

    time_bills: dict[str, str] = {}
    already: tuple[str, ...] = ()
    """Entries the id map already held (posted by an earlier run)."""


class ExpensePosting(msgspec.Struct, frozen=True, kw_only=True):
    """What ``post_expenses:<period>`` did: the journal entry and the expenses on it."""

    document: str = ""
    posted: tuple[str, ...] = ()


class TimeInvoicing(msgspec.Struct, frozen=True, kw_only=True):
    """What ``invoice_time:<period>`` did: the draft invoice and the entries it now bills."""

    invoice: str = ""
    billed: tuple[str, ...] = ()
    canonical: str = ""
    """The draft's canonical id: the period's, or a later one's for late time (empty in
    results recorded before late time was routed: the period's)."""


async def time_expense_to_erp(ctx: RunContext) -> None:
    """Post one project's approved time and expenses, period by period (module docstring)."""
    ctx.amount_at_risk = billable_amount(ctx.events)
    times, expenses = _entries(ctx.events)
    if not times and not expenses:
        return
    psa_project = times[0].project_id if times else expenses[0].project_id
    facts = await project_facts(ctx, psa_project)
    if facts is None:
        ctx.fail(
            "time",
            f"Approved time/expenses of PSA project {psa_project} cannot be posted: pssync "
            "has no record of that project (it was not provisioned from a won deal by "
            "deal_to_project). Provision the project, or map it, then retry.",
            detail={"psa_project_id": psa_project},
        )
    # Every entry is validated first: the refused ones are left out of every step (and
    # named together at the end), so they hold back none of the others.
    refusals = find_refusals(facts, times)
    refused = {refusal.entry.id for refusal in refusals}
    times = [entry for entry in times if entry.id not in refused]
    erp = ctx.deps.erp_for(facts.legal_entity)
    if erp is None:
        ctx.fail(
            "mapping",
            f"No ERP books for legal entity {facts.legal_entity!r} of project "
            f"{facts.project.id}: add it to the ERP routes in the configuration.",
        )
    project_id = facts.project.id
    # The ERP knows the project by its canonical id (deal_to_project's UpsertJob).
    times = [msgspec.structs.replace(entry, project_id=project_id) for entry in times]
    expenses = [msgspec.structs.replace(entry, project_id=project_id) for entry in expenses]
    approved_at = {
        envelope.body.entry.id: envelope.occurred_at.timestamp()
        for envelope in ctx.events
        if isinstance(envelope.body, TimeApproved | ExpenseApproved)
    }
    time_by_period: dict[str, list[TimeEntry]] = defaultdict(list)
    for entry in times:
        time_by_period[month_of(entry.date_performed)].append(entry)
    expense_by_period: dict[str, list[ExpenseEntry]] = defaultdict(list)
    for entry in expenses:
        expense_by_period[month_of(entry.date_incurred)].append(entry)
    flow = _Flow(ctx, facts, erp, approved_at)
    for period in sorted(time_by_period.keys() | expense_by_period.keys()):
        if period in time_by_period:
            posting = await flow.post_time(period, time_by_period[period])
            await flow.mark_time(period, posting)
        if period in expense_by_period:
            expense_posting = await flow.post_expenses(period, expense_by_period[period])
            await flow.mark_expenses(period, expense_posting)
        if facts.time_and_materials and period in time_by_period:
            await flow.invoice_time(period, time_by_period[period])
    if refusals:
        await _report_refusals(ctx, facts, refusals, posted=len(times) + len(expenses))


class _Flow:
    """The steps of one run, sharing what the run resolved."""

    def __init__(
        self, ctx: RunContext, facts: ProjectFacts, erp: str, approved_at: dict[str, float]
    ) -> None:
        self.ctx = ctx
        self.facts = facts
        self.erp = erp
        self.approved_at = approved_at
        self.dimensions = facts.project.dimensions or FinancialDimensions()

    def _observe(self, entry_ids: Iterable[str]) -> None:
        if self.ctx.replay:
            return
        now = self.ctx.deps.now()
        for entry_id in entry_ids:
            if entry_id in self.approved_at:
                delay = max(0.0, now - self.approved_at[entry_id])
                self.ctx.deps.sla.observe_approval_to_posting(delay)

    async def post_time(self, period: str, entries: list[TimeEntry]) -> TimePosting:
        ctx, name = self.ctx, f"post_time:{period}"
        start, end = month_bounds(period)

        async def post() -> TimePosting:
            ids = [entry.id for entry in entries]
            new = await _unmapped(ctx, "time_entry", self.erp, ids)
            todo = tuple(entry for entry in entries if entry.id in new)
            if not todo:
                return TimePosting(already=tuple(ids))
            command = PostTimeEntries(
                idempotency_key=ctx.idempotency_key(name),
                correlation_id=ctx.correlation_id,
                project_id=self.facts.project.id,
                entries=todo,
                period_start=start,
                period_end=end,
                dimensions=self.dimensions,
            )
            try:
                result = await ctx.deps.execute(self.erp, command)
            except PermanentError as exc:
                if "employee" not in exc.message:
                    raise
                ctx.fail(
                    "time",
                    f"The ERP ({self.erp}) refused time of project {self.facts.project.id} "
                    f"for {period}: a consultant has no ERP employee record ({exc.message}). "
                    "Create or map the employee in the ERP, then retry.",
                    detail={"period": period, "error": exc.message},
                )
            missing = [entry.id for entry in todo if entry.id not in result.ids]
            if missing:
                # Dropping them would leave them unmarked in the PSA and unposted for good
                # (this step's result is memoised): say so. A retry posts again, and the
                # ERP finds the time bills it made by external id.
                ctx.fail(
                    "time",
                    f"The ERP ({self.erp}) took time of project {self.facts.project.id} for "
                    f"{period} but reported no time bill for {len(missing)} of "
                    f"{len(todo)} entries ({', '.join(missing[:_LISTED_REFUSALS])}"
                    f"{', …' if len(missing) > _LISTED_REFUSALS else ''}). Check them in "
                    "the ERP, then retry: nothing is posted twice.",
                    detail={"period": period, "entry_ids": missing},
                )
            bills = {entry.id: result.ids[entry.id] for entry in todo}
            self._observe(bills)
            return TimePosting(time_bills=bills, already=tuple(sorted(set(ids) - new)))

        posting = await ctx.step(name, post, result_type=TimePosting)
        await map_ids(ctx, "time_entry", self.erp, posting.time_bills.items())
        return posting

    async def mark_time(self, period: str, posting: TimePosting) -> None:
        """Each entry marked with its own time bill (the ERP document it became)."""
        documents = {
            entry_id: ExternalRef(system=self.erp, id=bill, object_type="timebill")
            for entry_id, bill in posting.time_bills.items()
        }
        await self._mark(f"mark_time:{period}", documents, expenses=False)

    async def _mark(self, name: str, documents: dict[str, ExternalRef], *, expenses: bool) -> None:
        # MarkEntriesExported names one document; each entry has its own (its time bill,
        # its journal entry line), so one command per entry, several in flight. Kantata
        # writes references one at a time anyway: this costs one read more per entry.
        if not documents:
            return
        ctx = self.ctx
        psa = ctx.deps.system("psa")
        limiter = trio.CapacityLimiter(_MARKS_IN_FLIGHT)

        async def mark_one(entry_id: str, document: ExternalRef) -> None:
            async with limiter:
                await ctx.deps.execute(
                    psa,
                    MarkEntriesExported(
                        idempotency_key=f"{ctx.idempotency_key(name)}:{entry_id}",
                        correlation_id=ctx.correlation_id,
                        time_entry_ids=() if expenses else (entry_id,),
                        expense_entry_ids=(entry_id,) if expenses else (),
                        exported_to=document,
                    ),
                )

        async def mark() -> int:
            async with trio.open_nursery() as nursery:
                for entry_id, document in sorted(documents.items()):
                    nursery.start_soon(mark_one, entry_id, document)
            return len(documents)

        await ctx.step(name, mark, result_type=int)

    async def post_expenses(self, period: str, entries: list[ExpenseEntry]) -> ExpensePosting:
        ctx, name = self.ctx, f"post_expenses:{period}"

        async def post() -> ExpensePosting:
            new = await _unmapped(ctx, "expense", self.erp, [entry.id for entry in entries])
            todo = tuple(entry for entry in entries if entry.id in new)
            if not todo:
                return ExpensePosting()
            result = await ctx.deps.execute(
                self.erp,
                PostExpenseLines(
                    idempotency_key=ctx.idempotency_key(name),
                    correlation_id=ctx.correlation_id,
                    project_id=self.facts.project.id,
                    entries=todo,
                    dimensions=self.dimensions,
                ),
            )
            document = result.ids.get("journal_entry", "")
            posted = tuple(entry.id for entry in todo)
            self._observe(posted)
            return ExpensePosting(document=document, posted=posted)

        posting = await ctx.step(name, post, result_type=ExpensePosting)
        if posting.document:
            # One ERP journal entry carries many expenses; the id map wants one system id
            # per canonical one, so each expense maps to its line of that journal entry.
            await map_ids(
                ctx, "expense", self.erp, ((i, f"{posting.document}:{i}") for i in posting.posted)
            )
        return posting

    async def mark_expenses(self, period: str, posting: ExpensePosting) -> None:
        """Each expense marked with its line of the journal entry it was posted on."""
        documents = {
            entry_id: ExternalRef(
                system=self.erp, id=f"{posting.document}:{entry_id}", object_type="journalentry"
            )
            for entry_id in posting.posted
        }
        await self._mark(f"mark_expenses:{period}", documents, expenses=True)

    async def invoice_time(self, period: str, entries: list[TimeEntry]) -> None:
        ctx, facts, name = self.ctx, self.facts, f"invoice_time:{period}"
        billable = [entry for entry in entries if entry.billable and entry.bill_rate]
        if not billable:
            return
        billing = ctx.deps.system("billing")
        customer = facts.customer_ids.get(billing)
        if customer is None:
            ctx.fail(
                "billing",
                f"Project {facts.project.id} bills time and materials, but its customer "
                f"{facts.project.account_id} has no billing customer: re-run provisioning "
                "(deal_to_project) for the deal, then retry.",
            )
        invoice_id = tm_invoice_id(facts.project.id, period)

        async def invoice() -> TimeInvoicing:
            new = await _unmapped(ctx, "billed_time", billing, [e.id for e in billable])
            todo = [entry for entry in billable if entry.id in new]
            if not todo:
                return TimeInvoicing()
            lines = _rate_lines(facts.project.id, period, todo)
            # Finance finalizes a period's draft at month end, and a finalized invoice takes
            # no more lines: time of that period approved later is billed on the project's
            # next draft still open (its lines keep saying which month they are).
            target = period
            for _ in range(_LATE_DRAFTS):
                late = target != period
                try:
                    result = await ctx.deps.execute(
                        billing,
                        CreateInvoice(
                            idempotency_key=ctx.idempotency_key(
                                f"{name}>{target}" if late else name
                            ),
                            correlation_id=ctx.correlation_id,
                            customer_id=customer,
                            invoice=Invoice(
                                id=tm_invoice_id(facts.project.id, target),
                                account_id=facts.project.account_id,
                                project_id=facts.project.id,
                                contract_id=facts.project.contract_id,
                                currency=facts.project.currency,
                                legal_entity=facts.legal_entity,
                                lines=lines,
                            ),
                        ),
                    )
                except PermanentError as exc:
                    if exc.code != _NOT_EDITABLE:
                        raise
                    log.info(
                        "T&M draft closed: late time goes on the next",
                        project=facts.project.id,
                        period=period,
                        closed=target,
                    )
                    target = next_month(target)
                    continue
                return TimeInvoicing(
                    invoice=result.ids.get("invoice", ""),
                    billed=tuple(e.id for e in todo),
                    canonical=tm_invoice_id(facts.project.id, target),
                )
            ctx.fail(
                "billing",
                f"Project {facts.project.id}: billable time of {period} cannot be invoiced: "
                f"its T&M invoice and the next {_LATE_DRAFTS - 1} are all finalized. Bill the "
                "entries by hand (or reopen a draft), then resolve this exception.",
                detail={"entry_ids": [entry.id for entry in todo], "last_tried": target},
            )

        invoicing = await ctx.step(name, invoice, result_type=TimeInvoicing)
        if invoicing.invoice:
            await ctx.journal.map_id(
                "invoice",
                invoicing.canonical or invoice_id,
                billing,
                invoicing.invoice,
                ctx.deps.now(),
            )
            await map_ids(
                ctx,
                "billed_time",
                billing,
                ((i, f"{invoicing.invoice}:{i}") for i in invoicing.billed),
            )


def _rate_lines(project_id: str, period: str, entries: list[TimeEntry]) -> tuple[InvoiceLine, ...]:
    """One line per bill rate; its id names the entries it bills, so a re-run matches it."""
    by_rate: dict[Money, list[TimeEntry]] = defaultdict(list)
    for entry in entries:
        assert entry.bill_rate is not None
        by_rate[entry.bill_rate].append(entry)
    lines = []
    for rate, group in sorted(by_rate.items(), key=lambda item: item[0].amount):
        ids = tuple(sorted(entry.id for entry in group))
        hours = sum((entry.hours for entry in group), Decimal(0))
        amount = Money.zero(rate.currency)
        for entry in group:
            billed = entry.bill_amount()
            assert billed is not None
            amount += billed
        digest = _digest(ids)
        lines.append(
            InvoiceLine(
                id=f"{rate.amount}-{digest}",
                description=f"Time {period}: {hours} h at {rate} per hour ({len(ids)} entries)",
                quantity=hours,
                unit_price=rate,
                amount=amount,
                project_id=project_id,
                time_entry_ids=ids,
            )
        )
    return tuple(lines)


def _digest(ids: tuple[str, ...]) -> str:
    return hashlib.sha256("\n".join(ids).encode()).hexdigest()[:16]


SPEC = WorkflowSpec(
    name="time_expense_to_erp",
    triggers=(TimeApproved, ExpenseApproved),
    run=time_expense_to_erp,
    category="time",
    batching=True,
    amount_at_risk=billable_amount,
)
