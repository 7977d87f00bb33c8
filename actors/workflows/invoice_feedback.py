"""invoice_feedback: billing invoice and payment status → ERP receivables, CRM account.

Triggered by the billing feed's ``InvoiceIssued``, ``InvoiceStatusChanged`` and
``PaymentReceived`` (key ``invoice:<id>``, so one invoice's facts are handled in order).
One Stripe ``invoice.paid`` event yields a status change and a payment; each does its
own part:

``PaymentReceived``
    1. ``locate`` — the ERP that holds the invoice and the ERP ids of invoice and customer,
       from the id map written by milestone_to_invoice (``invoice`` ``ms-<milestone>``),
       by this workflow's ``InvoiceIssued`` (``sub-<billing invoice>``, ``tm-<project>-
       <YYYY-MM>``) and by deal_to_project (``account`` or ``customer``). An invoice pssync
       never issued → ``billing`` exception; one issued in billing but not yet in an ERP →
       retried.
    2. ``apply_payment`` — ``ApplyPayment`` to that ERP, against the ERP invoice. NetSuite
       keys the customer payment by the canonical payment id (Stripe's charge), so the
       Stripe payment becomes exactly one ERP payment however often it is replayed.
    3. ``crm_progress`` — ``UpdateBillingProgress`` (see below).

``InvoiceStatusChanged``
    - ``void`` / ``uncollectible``: ``locate``, then ``update_status`` (``UpdateInvoiceStatus``
      to the ERP: a reversing journal), then ``crm_progress``;
    - ``open`` / ``paid`` / ``draft``: nothing to post (issuing is milestone_to_invoice's
      or ``InvoiceIssued``'s below, cash is the payment's); ``crm_progress`` only.

``InvoiceIssued`` (recurring revenue)
    Stripe raises the invoices of the subscriptions deal_to_project created itself; pssync
    never issued them, so nothing else posts them. An issued invoice is ours when its
    billing subscription (the ``subscription`` reference on the invoice) is in the id map
    (kind ``subscription``, deal line ⇄ billing subscription) and a ProjectActivated names
    it; then:

    1. ``recurring_source`` — the project, its ERP and ERP customer (from the activation's
       refs: the ERP job's system and that ERP's customer). Subscription ours but not yet
       activated → retried; not ours → nothing (milestone invoices are
       milestone_to_invoice's, foreign ones park when paid or voided, as before).
    2. ``post_recurring_invoice`` — ``PostInvoice`` to that ERP under canonical id
       ``sub-<billing invoice id>``, mapped ``invoice`` → billing and ERP ids. Lines: the
       feed's (the subscription items' lines as billed) when they add up to the invoice
       total, else one line for the total (tax or discounts on top of the lines).
       NetSuite keys the invoice by that canonical id, and an already-mapped invoice is
       not sent again, so replays and repeated events post it once.

    Its payment and status changes then ``locate`` it under ``sub-<billing invoice id>``
    like a milestone invoice.

``InvoiceIssued`` (time and materials)
    time_expense_to_erp adds a T&M project's billable hours to a *draft* invoice in
    billing, canonical id ``tm-<project>-<YYYY-MM>`` (in the billing invoice's metadata,
    so the feed's invoice carries it as its id), and never finalizes it: tm_close does at
    the month-end close (or finance, in billing). Once it is issued:

    1. ``tm_source`` — the project's facts as time_expense_to_erp reads them
       (:func:`~.time_expense_to_erp.project_facts`, through the ``project`` id map's PSA
       workspace): the ERP that books for its legal entity, that ERP's customer of the
       project's account (id map ``account``), the project's dimensions. Refusals: a
       project pssync never provisioned → ``billing`` exception naming the invoice; no
       ERP for the legal entity → ``mapping``; no ERP customer → ``billing``; a billing
       invoice other than the one the id map holds under that ``tm-`` id (a copy made in
       billing) → ``billing``, nothing posted.
    2. ``post_tm_invoice`` — ``PostInvoice`` to that ERP under the canonical ``tm-`` id,
       the invoice as billing issued it (number, issue date, due date), against the
       project, with its dimensions. Lines: the feed's lines as billing issued them (one
       per bill rate, quantity hours and unit price the rate, as time_expense_to_erp
       created them, plus whatever finance added) when they add up to the invoice total;
       else (tax, discounts, or a feed that reports none) one line for the total, tax
       included, as on the recurring path. Mapped ``invoice``
       ``tm-…`` → billing id (already mapped by time_expense_to_erp) and → ERP id.
       NetSuite keys the invoice by the canonical id and an already-mapped invoice is
       not sent again, so replays and repeated events post it once.

    Its payment and status changes then ``locate`` it under its ``tm-`` id. An issued
    invoice billing nothing (total zero) is not posted, on either path.

CRM progress is the account's position as pssync knows it, recomputed from the journal's
invoice status facts (latest per invoice of the account, in the event's currency):
invoiced = Σ amount due of invoices not void, paid = Σ amount paid, outstanding = Σ (due -
paid) of open invoices. The values are absolute, so writing them twice changes nothing.
Only the account is written (its balance due); the deal's invoiced amount stays
milestone_to_invoice's, so the opportunity's paid amount is not written here.
"""

from __future__ import annotations

from decimal import Decimal

import msgspec
import structlog

from actors.errors import RetryableError
from actors.messages import (
    ApplyPayment,
    Envelope,
    ExternalRef,
    FinancialDimensions,
    Invoice,
    InvoiceIssued,
    InvoiceLine,
    InvoiceStatus,
    InvoiceStatusChanged,
    Money,
    PaymentReceived,
    PostInvoice,
    ProjectActivated,
    UpdateBillingProgress,
    UpdateInvoiceStatus,
    decode_envelope,
)
from adapters.base import CommandResult

from .context import RunContext
from .deal_to_project import PROJECT
from .spec import WorkflowSpec
from .time_expense_to_erp import project_facts, tm_invoice_parts

__all__ = [
    "CUSTOMER_KINDS",
    "INVOICE",
    "PAYMENT",
    "SPEC",
    "SUBSCRIPTION",
    "Located",
    "Recurring",
    "TimeAndMaterials",
    "invoice_feedback",
    "recurring_invoice_id",
]

log = structlog.get_logger(__name__)

INVOICE = "invoice"
"""Id-map kind of invoices (milestone_to_invoice maps billing and ERP ids under it, and
this workflow the ERP ids of the recurring and T&M invoices it posts)."""
CUSTOMER_KINDS = ("account", "customer")
"""Id-map kinds deal_to_project may map a customer under (as time_expense_to_erp reads)."""
PAYMENT = "payment"
"""Id-map kind of payments (this workflow maps the ERP's customer payment)."""
SUBSCRIPTION = "subscription"
"""Id-map kind deal_to_project maps deal line ⇄ billing subscription under."""

_POSTED_STATUSES = (InvoiceStatus.VOID, InvoiceStatus.UNCOLLECTIBLE)
_PAGE = 1_000


class Located(msgspec.Struct, frozen=True, kw_only=True):
    """Where an invoice lives in the ERP (memoised by the ``locate`` step)."""

    erp: str
    invoice_id: str
    customer_id: str = ""


class Recurring(msgspec.Struct, frozen=True, kw_only=True):
    """A subscription invoice's origin (memoised by ``recurring_source``).

    ``ours`` is False for a subscription pssync did not create: nothing is posted.
    """

    ours: bool
    subscription: str = ""
    line_id: str = ""
    project_id: str = ""
    erp: str = ""
    customer_id: str = ""


def recurring_invoice_id(billing_invoice_id: str) -> str:
    """The canonical id of an invoice billing raised from a pssync subscription."""
    return f"sub-{billing_invoice_id}"


class TimeAndMaterials(msgspec.Struct, frozen=True, kw_only=True):
    """A T&M invoice's project and where it books (memoised by ``tm_source``)."""

    project_id: str
    project_name: str = ""
    period: str
    erp: str
    customer_id: str
    contract_id: str | None = None
    legal_entity: str | None = None
    dimensions: FinancialDimensions | None = None


class Progress(msgspec.Struct, frozen=True, kw_only=True):
    """An account's billing position (memoised, so a resumed run writes the same)."""

    currency: str
    invoiced: Decimal
    paid: Decimal
    outstanding: Decimal
    invoices: int


async def invoice_feedback(ctx: RunContext) -> None:
    """Apply one billing fact to the ERP and the CRM (module docstring)."""
    event = ctx.events[0].body
    match event:
        case PaymentReceived(payment=payment):
            if not payment.invoice_id:
                ctx.fail(
                    "billing",
                    f"payment {payment.id} of {payment.amount} from account {payment.account_id}"
                    " names no invoice: apply it to the customer's invoices in the ERP by hand",
                    amount=payment.amount,
                )
            billing_id = next(
                (ref.id for ref in payment.external_refs if ref.object_type == "invoice"),
                payment.invoice_id,
            )
            located = await _locate(
                ctx, payment.invoice_id, billing_id, payment.account_id, payment.amount
            )
            await _apply_payment(ctx, located, event)
            await _crm_progress(ctx, payment.account_id, payment.amount.currency)
        case InvoiceIssued(invoice=invoice):
            subscription = _subscription_ref(invoice.external_refs, ctx.deps.system("billing"))
            if subscription:
                await _post_recurring(ctx, invoice, subscription)
            elif (tm := tm_invoice_parts(invoice.id)) is not None:
                await _post_tm(ctx, invoice, *tm)
        case InvoiceStatusChanged(status=status):
            if status in _POSTED_STATUSES:
                # Without pssync's metadata the canonical id is the billing system's own.
                located = await _locate(
                    ctx, event.invoice_id, event.invoice_id, None, event.amount_due
                )
                await _update_status(ctx, located, event)
            if event.account_id and event.amount_due is not None:
                await _crm_progress(ctx, event.account_id, event.amount_due.currency)
            else:
                log.warning(
                    "invoice status change without account or amount; CRM not updated",
                    invoice=event.invoice_id,
                )
        case _:
            raise TypeError(f"invoice_feedback cannot handle {type(event).__name__}")


async def _locate(
    ctx: RunContext,
    invoice_id: str,
    billing_id: str,
    account_id: str | None,
    amount: Money | None,
) -> Located:
    async def locate() -> Located:
        erps = sorted(ctx.deps.roles.get("erp", ()))
        # A subscription invoice carries Stripe's own id; pssync posted it under sub-<id>.
        candidates = (invoice_id, recurring_invoice_id(invoice_id))
        for erp, canonical in ((erp, c) for erp in erps for c in candidates):
            erp_invoice = await ctx.journal.system_id(INVOICE, canonical, erp)
            if erp_invoice is None:
                continue
            customer = ""
            if account_id is not None:
                customer = await _customer(ctx, account_id, erp)
                if not customer:
                    ctx.fail(
                        "mapping",
                        f"invoice {invoice_id} is in {erp} as {erp_invoice}, but customer account"
                        f" {account_id} has no {erp} id in pssync's id map: map the customer"
                        " (or re-run its deal_to_project) and retry",
                        amount=amount,
                    )
            return Located(erp=erp, invoice_id=erp_invoice, customer_id=customer)
        billing = await ctx.journal.ids_of(INVOICE, invoice_id) or await ctx.journal.ids_of(
            INVOICE, recurring_invoice_id(invoice_id)
        )
        if billing:
            # pssync issued it in billing; milestone_to_invoice (or this workflow's
            # InvoiceIssued run) may still be posting it to the ERP. Retry with backoff;
            # the engine parks it once attempts run out.
            raise RetryableError(
                f"invoice {invoice_id} is issued in billing ({_render(billing)}) but not yet"
                " posted to an ERP"
            )
        what = "was paid" if account_id is not None else "changed status"
        ctx.fail(
            "billing",
            f"billing invoice {billing_id} {what}, but pssync never issued it: no ERP"
            f" ({', '.join(erps) or 'none configured'}) holds it, so nothing was posted."
            " Post the invoice to the ERP and map it, then retry; or resolve this if the"
            " invoice was raised outside pssync and handled there",
            amount=amount,
            detail={"invoice_id": invoice_id, "billing_id": billing_id, "erps": erps},
        )

    return await ctx.step("locate", locate, result_type=Located)


def _subscription_ref(refs: tuple[ExternalRef, ...], billing: str) -> str:
    return next((r.id for r in refs if r.object_type == SUBSCRIPTION and r.system == billing), "")


async def _post_recurring(ctx: RunContext, invoice: Invoice, subscription: str) -> None:
    billing = ctx.deps.system("billing")
    billing_invoice = _billing_invoice(invoice, billing)
    canonical = recurring_invoice_id(billing_invoice)
    source = await ctx.step(
        "recurring_source",
        lambda: _recurring_source(ctx, subscription, billing, invoice),
        result_type=Recurring,
    )
    if not source.ours:
        log.info(
            "subscription invoice of a subscription pssync did not create; not posted",
            invoice=billing_invoice,
            subscription=subscription,
        )
        return
    total = invoice.total or invoice.amount_due
    if total is None or total.amount <= 0:
        log.info("subscription invoice bills nothing; not posted", invoice=billing_invoice)
        return
    ctx.amount_at_risk = total

    async def post() -> CommandResult:
        posted = await ctx.journal.system_id(INVOICE, canonical, source.erp)
        if posted is not None:
            # Another run (a repeated event) already posted it: post nothing twice.
            return CommandResult(system=source.erp, ids={canonical: posted}, created=False)
        receivable = msgspec.structs.replace(
            invoice,
            id=canonical,
            project_id=source.project_id,
            status=InvoiceStatus.OPEN,
            lines=_recurring_lines(invoice, source, total),
        )
        await ctx.journal.map_id(INVOICE, canonical, billing, billing_invoice, ctx.deps.now())
        return await ctx.deps.execute(
            source.erp,
            PostInvoice(
                idempotency_key=ctx.idempotency_key("post_recurring_invoice"),
                correlation_id=ctx.correlation_id,
                invoice=receivable,
                customer_id=source.customer_id,
            ),
        )

    result = await ctx.step("post_recurring_invoice", post, result_type=CommandResult)
    await ctx.journal.map_id(INVOICE, canonical, source.erp, result.ids[canonical], ctx.deps.now())


async def _recurring_source(
    ctx: RunContext, subscription: str, billing: str, invoice: Invoice
) -> Recurring:
    line_id = await ctx.journal.canonical_id(SUBSCRIPTION, billing, subscription)
    if line_id is None:
        return Recurring(ours=False, subscription=subscription)
    activated = await _activation_naming(ctx.journal, billing, subscription)
    if activated is None:
        # deal_to_project created the subscription but has not published the project yet.
        raise RetryableError(
            f"subscription {subscription} (deal line {line_id}) billed invoice {invoice.id}"
            " before its project was activated"
        )
    erp = next((r.system for r in activated.refs if r.object_type == "job"), "")
    customer = next(
        (r.id for r in activated.refs if r.object_type == "customer" and r.system == erp), ""
    )
    if not erp or not customer:
        ctx.fail(
            "mapping",
            f"billing invoice {invoice.id} of subscription {subscription} (deal line {line_id},"
            f" project {activated.project.id}) cannot be posted: the project's activation names"
            " no ERP job or ERP customer. Re-run the deal's provisioning (deal_to_project),"
            " then retry",
            amount=invoice.total or invoice.amount_due,
        )
    return Recurring(
        ours=True,
        subscription=subscription,
        line_id=line_id,
        project_id=activated.project.id,
        erp=erp,
        customer_id=customer,
    )


async def _post_tm(ctx: RunContext, invoice: Invoice, project_id: str, period: str) -> None:
    """Post an issued time-and-materials invoice to the ERP (module docstring)."""
    billing = ctx.deps.system("billing")
    billing_invoice = _billing_invoice(invoice, billing)
    canonical = invoice.id
    total = invoice.total or invoice.amount_due
    if total is None or total.amount <= 0:
        log.info(
            "T&M invoice bills nothing; not posted", invoice=canonical, billing=billing_invoice
        )
        return
    ctx.amount_at_risk = total
    source = await ctx.step(
        "tm_source",
        lambda: _tm_source(ctx, invoice, project_id, period, billing, billing_invoice),
        result_type=TimeAndMaterials,
    )

    async def post() -> CommandResult:
        posted = await ctx.journal.system_id(INVOICE, canonical, source.erp)
        if posted is not None:
            # Another run (a repeated event, a replay) already posted it: post nothing twice.
            return CommandResult(system=source.erp, ids={canonical: posted}, created=False)
        receivable = msgspec.structs.replace(
            invoice,
            project_id=source.project_id,
            contract_id=source.contract_id or invoice.contract_id,
            legal_entity=source.legal_entity or invoice.legal_entity,
            status=InvoiceStatus.OPEN,
            lines=_tm_lines(invoice, source, total),
        )
        await ctx.journal.map_id(INVOICE, canonical, billing, billing_invoice, ctx.deps.now())
        return await ctx.deps.execute(
            source.erp,
            PostInvoice(
                idempotency_key=ctx.idempotency_key("post_tm_invoice"),
                correlation_id=ctx.correlation_id,
                invoice=receivable,
                customer_id=source.customer_id,
                dimensions=source.dimensions,
            ),
        )

    result = await ctx.step("post_tm_invoice", post, result_type=CommandResult)
    await ctx.journal.map_id(INVOICE, canonical, source.erp, result.ids[canonical], ctx.deps.now())


def _recurring_lines(invoice: Invoice, source: Recurring, total: Money) -> tuple[InvoiceLine, ...]:
    """The lines billing reports (the subscription items' lines) when they make the total,
    else one line for the total."""
    if _lines_make(invoice, total):
        return tuple(
            # The activation's project: a subscription bills for one project only.
            msgspec.structs.replace(line, project_id=source.project_id)
            for line in invoice.lines
        )
    return (
        InvoiceLine(
            id=source.line_id,
            description=f"Subscription {source.subscription} (deal line {source.line_id})",
            unit_price=total,
            amount=total,
            project_id=source.project_id,
        ),
    )


def _lines_make(invoice: Invoice, total: Money) -> bool:
    """Whether ``invoice`` has lines and they add up to ``total`` (never post lines that
    disagree with the total: tax or discounts billing applied on top of them)."""
    return bool(invoice.lines) and invoice.lines_total() == total


def _tm_lines(invoice: Invoice, source: TimeAndMaterials, total: Money) -> tuple[InvoiceLine, ...]:
    """The lines billing reports when they make the total, else one line for the total."""
    if _lines_make(invoice, total):
        return tuple(
            msgspec.structs.replace(
                line,
                project_id=line.project_id or source.project_id,
                dimensions=line.dimensions or source.dimensions,
            )
            for line in invoice.lines
        )
    name = f"{source.project_name} ({source.project_id})" if source.project_name else ""
    number = f" (invoice {invoice.number})" if invoice.number else ""
    return (
        InvoiceLine(
            id=invoice.id,
            description=f"Time and materials {source.period}: {name or source.project_id}{number}",
            unit_price=total,
            amount=total,
            project_id=source.project_id,
            dimensions=source.dimensions,
        ),
    )


async def _tm_source(
    ctx: RunContext,
    invoice: Invoice,
    project_id: str,
    period: str,
    billing: str,
    billing_invoice: str,
) -> TimeAndMaterials:
    what = f"T&M invoice {invoice.id} (billing invoice {billing_invoice}"
    what += f", number {invoice.number})" if invoice.number else ")"
    mapped = await ctx.journal.system_id(INVOICE, invoice.id, billing)
    if mapped is not None and mapped != billing_invoice:
        ctx.fail(
            "billing",
            f"{what} was issued, but pssync's draft under that id is billing invoice"
            f" {mapped}: two billing invoices carry one T&M id (a copy made in billing?)."
            " Nothing was posted to the ERP. Void the copy, or post it to the ERP by hand,"
            " then resolve this",
            detail={"invoice_id": invoice.id, "billing_id": billing_invoice, "mapped": mapped},
        )
    workspace = await ctx.journal.system_id(PROJECT, project_id, ctx.deps.system("psa"))
    facts = await project_facts(ctx, workspace) if workspace is not None else None
    if facts is None or facts.project.id != project_id:
        ctx.fail(
            "billing",
            f"{what} was issued for project {project_id}, which pssync never provisioned"
            " (no PSA workspace or activation in its records): it cannot be posted to an ERP."
            " Provision the project from its deal (deal_to_project), then retry; or post"
            " the invoice to the ERP by hand and resolve this",
            detail={
                "invoice_id": invoice.id,
                "billing_id": billing_invoice,
                "project_id": project_id,
            },
        )
    project = facts.project
    erp = ctx.deps.erp_for(facts.legal_entity)
    if erp is None:
        ctx.fail(
            "mapping",
            f"{what} cannot be posted: no ERP books for legal entity {facts.legal_entity!r}"
            f" of project {project.id}. Add it to the ERP routes in the configuration, then"
            " retry",
        )
    customer = facts.customer_ids.get(erp)
    if not customer:
        ctx.fail(
            "billing",
            f"{what} cannot be posted: customer {project.account_id} of project {project.id}"
            f" has no record in {erp}. Re-run provisioning (deal_to_project) for the deal,"
            " then retry",
        )
    return TimeAndMaterials(
        project_id=project.id,
        project_name=project.name,
        period=period,
        erp=erp,
        customer_id=customer,
        contract_id=project.contract_id,
        legal_entity=facts.legal_entity,
        dimensions=project.dimensions,
    )


def _billing_invoice(invoice: Invoice, billing: str) -> str:
    """The billing system's id of ``invoice`` (its reference), else its canonical id."""
    return next(
        (r.id for r in invoice.external_refs if r.object_type == INVOICE and r.system == billing),
        invoice.id,
    )


async def _activation_naming(journal, billing: str, subscription: str) -> ProjectActivated | None:
    """The ProjectActivated whose refs name ``subscription`` (one scan; activations are few)."""
    after = 0
    while True:
        page = await journal.read_events(after, _PAGE, [ProjectActivated.__struct_config__.tag])
        for record in page:
            fact = decode_envelope(record.body, origin=f"journal seq {record.seq}").body
            if isinstance(fact, ProjectActivated) and any(
                r.object_type == SUBSCRIPTION and r.system == billing and r.id == subscription
                for r in fact.refs
            ):
                return fact
        if len(page) < _PAGE:
            return None
        after = page[-1].seq or after


async def _apply_payment(ctx: RunContext, located: Located, event: PaymentReceived) -> None:
    payment = event.payment

    async def apply() -> CommandResult:
        command = ApplyPayment(
            idempotency_key=ctx.idempotency_key("apply_payment"),
            correlation_id=ctx.correlation_id,
            payment=payment,
            customer_id=located.customer_id,
            invoice_id=located.invoice_id,
        )
        result = await ctx.deps.execute(located.erp, command)
        erp_payment = result.ids.get(payment.id)
        if erp_payment:
            await ctx.journal.map_id(PAYMENT, payment.id, located.erp, erp_payment, ctx.deps.now())
        return result

    await ctx.step("apply_payment", apply, result_type=CommandResult)


async def _update_status(ctx: RunContext, located: Located, event: InvoiceStatusChanged) -> None:
    async def update() -> CommandResult:
        command = UpdateInvoiceStatus(
            idempotency_key=ctx.idempotency_key("update_status"),
            correlation_id=ctx.correlation_id,
            invoice_id=located.invoice_id,
            status=event.status,
        )
        return await ctx.deps.execute(located.erp, command)

    await ctx.step("update_status", update, result_type=CommandResult)


async def _crm_progress(ctx: RunContext, account_id: str, currency: str) -> None:
    progress = await ctx.step(
        "crm_ledger",
        lambda: account_progress(ctx.journal, account_id, currency),
        result_type=Progress,
    )

    async def update() -> CommandResult:
        command = UpdateBillingProgress(
            idempotency_key=ctx.idempotency_key("crm_progress"),
            correlation_id=ctx.correlation_id,
            account_id=account_id,
            invoiced=Money(amount=progress.invoiced, currency=progress.currency),
            paid=Money(amount=progress.paid, currency=progress.currency),
            outstanding=Money(amount=progress.outstanding, currency=progress.currency),
        )
        return await ctx.deps.execute(ctx.deps.system("crm"), command)

    await ctx.step("crm_progress", update, result_type=CommandResult)


async def account_progress(journal, account_id: str, currency: str) -> Progress:
    """The account's billing position from the journal's invoice status facts.

    The latest fact per invoice counts (journal order). Invoices in other currencies are
    left out: the CRM's amounts are in one currency. The scan reads every invoice status
    event, which is cheap at invoice volumes (hundreds a month).
    """
    latest: dict[str, InvoiceStatusChanged] = {}
    after = 0
    while True:
        page = await journal.read_events(after, _PAGE, [InvoiceStatusChanged.__struct_config__.tag])
        for record in page:
            fact = decode_envelope(record.body, origin=f"journal seq {record.seq}").body
            if isinstance(fact, InvoiceStatusChanged) and fact.account_id == account_id:
                latest[fact.invoice_id] = fact
        if len(page) < _PAGE:
            break
        after = page[-1].seq or after
    invoiced = paid = outstanding = Decimal(0)
    counted = 0
    for fact in latest.values():
        due, got = fact.amount_due, fact.amount_paid
        if due is None or due.currency != currency or fact.status is InvoiceStatus.VOID:
            continue
        counted += 1
        received = got.amount if got is not None else Decimal(0)
        invoiced += due.amount
        paid += received
        if fact.status is InvoiceStatus.OPEN:
            outstanding += max(due.amount - received, Decimal(0))
    return Progress(
        currency=currency, invoiced=invoiced, paid=paid, outstanding=outstanding, invoices=counted
    )


async def _customer(ctx: RunContext, account_id: str, system: str) -> str:
    for kind in CUSTOMER_KINDS:
        found = await ctx.journal.system_id(kind, account_id, system)
        if found:
            return found
    return ""


def _render(ids: dict[str, str]) -> str:
    return ", ".join(f"{system} {system_id}" for system, system_id in sorted(ids.items()))


def _amount_at_risk(events: tuple[Envelope, ...]) -> Money | None:
    body = events[0].body
    if isinstance(body, PaymentReceived):
        return body.payment.amount
    if isinstance(body, InvoiceStatusChanged):
        return body.amount_due
    if isinstance(body, InvoiceIssued):
        return body.invoice.total or body.invoice.amount_due
    return None


SPEC = WorkflowSpec(
    name="invoice_feedback",
    triggers=(InvoiceIssued, InvoiceStatusChanged, PaymentReceived),
    run=invoice_feedback,
    category="billing",
    amount_at_risk=_amount_at_risk,
)
"""invoice_feedback's declaration (registered by ``actors.workflows.catalog``)."""
