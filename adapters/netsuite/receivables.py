"""Receivables: invoices, customer payments, and voids / write-offs from billing.

- PostInvoice → an ``invoice`` (external id from the canonical invoice id), against the
  project's job when the invoice names a project (``invoice_against_job``), else against
  the customer. Looked up first and never re-posted: 2 calls, 1 on a replay.
- ApplyPayment → a ``customerpayment`` (external id from the canonical payment id),
  applied to the ERP invoice when known. The applied amount is left to NetSuite (the
  lesser of the invoice's remaining amount and the payment), so an overpayment stays as
  unapplied credit instead of being refused.
- UpdateInvoiceStatus (void / uncollectible) → a reversing journal entry: debit the
  revenue-reversal (void) or bad-debt (write-off) account, credit accounts receivable, both
  for the invoice's open amount and its entity. This is what NetSuite's own "void using
  reversing journals" posts. The invoice record itself stays open in NetSuite until a
  person (or a later credit-memo flow) applies the journal to it: REST has no void action
  for invoices, and the credit memo (``!transform/creditmemo``) is not in the sandbox.
  External id ``<prefix>-void-<invoice>`` / ``-woff-``: at most one per invoice and kind.
"""

from __future__ import annotations

from typing import Any

from actors.errors import PermanentError
from actors.messages import (
    ApplyPayment,
    FinancialDimensions,
    InvoiceStatus,
    PostInvoice,
    UpdateInvoiceStatus,
)

from ..base import CommandResult
from ..governor import Lane
from .context import Context
from .fields import InvoiceFacts
from .wire import require

__all__ = ["apply_payment", "post_invoice", "update_invoice_status"]


async def post_invoice(ctx: Context, command: PostInvoice) -> CommandResult:
    """The issued invoice as a receivable; ``ids`` maps the invoice id to NetSuite's."""
    invoice = command.invoice
    if not invoice.lines:
        raise PermanentError(
            f"netsuite: invoice {invoice.id} has no lines", system=ctx.system, code="NO_LINES"
        )
    defaults = command.dimensions or FinancialDimensions()
    body = ctx.fields.write(
        "invoice",
        {
            "issue_date": invoice.issue_date,
            "due_date": invoice.due_date,
            "number": invoice.number,
            "id": invoice.id,
        },
    )
    if ctx.options.invoice_against_job and invoice.project_id:
        body["entity"] = ctx.refs.job(invoice.project_id)
    else:
        body["entity"] = {"id": command.customer_id}
    body["currency"] = ctx.refs.currency(invoice.currency)
    subsidiary = ctx.refs.subsidiary(defaults, legal_entity=invoice.legal_entity)
    if subsidiary is not None:
        body["subsidiary"] = subsidiary
    items: list[dict[str, Any]] = []
    for line in invoice.lines:
        if line.amount.currency != invoice.currency:
            raise PermanentError(
                f"netsuite: invoice {invoice.id} mixes {line.amount.currency} into "
                f"{invoice.currency}",
                system=ctx.system,
                code="MIXED_CURRENCY",
            )
        item_id = ctx.options.invoice_item_id
        if line.milestone_id:
            item_id = ctx.options.milestone_item_id or item_id
        fields = ctx.fields.write(
            "invoice_line",
            {
                "description": line.description,
                "quantity": line.quantity,
                "rate": line.unit_price.amount,
                "amount": line.amount.amount,
            },
        )
        fields["item"] = {"id": require(item_id, "options.invoice_item_id", system=ctx.system)}
        dims = (line.dimensions or FinancialDimensions()).merged_over(defaults)
        items.append(fields | ctx.refs.segments(dims))
    body["item"] = {"items": items}
    return await ctx.upsert_record(
        "invoice",
        "inv",
        invoice.id,
        body,
        lane=Lane.CRITICAL,
        correlation_id=command.correlation_id,
        update_existing=False,
    )


async def apply_payment(ctx: Context, command: ApplyPayment) -> CommandResult:
    """A customer payment, applied to ``invoice_id`` (NetSuite's id) when given."""
    payment = command.payment
    body = ctx.fields.write(
        "payment",
        {
            "amount": payment.amount.amount,
            "received_on": payment.received_on,
            "reference": payment.reference,
            "id": payment.id,
        },
    )
    body["customer"] = {"id": command.customer_id}
    body["currency"] = ctx.refs.currency(payment.amount.currency)
    if ctx.options.payment_account_id:
        body["account"] = {"id": ctx.options.payment_account_id}
    if command.invoice_id:
        body["apply"] = {"items": [{"doc": {"id": command.invoice_id}, "apply": True}]}
    return await ctx.upsert_record(
        "payment",
        "pay",
        payment.id,
        body,
        lane=Lane.CRITICAL,
        correlation_id=command.correlation_id,
        update_existing=False,
    )


async def update_invoice_status(ctx: Context, command: UpdateInvoiceStatus) -> CommandResult:
    """Void or write off ``invoice_id`` (NetSuite's id) with a reversing journal entry."""
    if command.status is InvoiceStatus.VOID:
        kind, account, option = "void", ctx.options.void_account_id, "void_account_id"
    elif command.status is InvoiceStatus.UNCOLLECTIBLE:
        kind, account = "woff", ctx.options.write_off_account_id
        option = "write_off_account_id"
    else:
        raise PermanentError(
            f"netsuite: invoice status {command.status.value!r} is not a receivable change "
            "(payments arrive as ApplyPayment); only void and uncollectible are posted",
            system=ctx.system,
            code="UNSUPPORTED_STATUS",
        )
    debit_account = require(account, f"options.{option}", system=ctx.system)
    receivables = require(
        ctx.options.receivables_account_id, "options.receivables_account_id", system=ctx.system
    )
    target = ctx.target("journal_entry")
    external_id = ctx.refs.external_id(kind, command.invoice_id)
    lane, correlation_id = Lane.CRITICAL, command.correlation_id
    found = await ctx.lookup(target, [external_id], lane=lane, correlation_id=correlation_id)
    if external_id in found:
        return _status_result(ctx, command, found[external_id], created=False)
    raw = await ctx.records.read(
        ctx.options.record_types.invoice,
        command.invoice_id,
        dict[str, Any],
        lane=lane,
        correlation_id=correlation_id,
    )
    facts = ctx.fields.read("invoice_record", raw, InvoiceFacts, record_id=command.invoice_id)
    if facts.unpaid <= 0:
        return CommandResult(
            system=ctx.system, details={"note": "nothing open on the invoice", "status": kind}
        )
    memo = f"{command.status.value} of invoice {command.invoice_id}"
    entity = {"id": facts.entity}
    lines = [
        ctx.fields.write("expense_line", {"debit": facts.unpaid, "memo": memo})
        | {"account": {"id": debit_account}, "entity": entity},
        ctx.fields.write("expense_line", {"credit": facts.unpaid, "memo": memo})
        | {"account": {"id": receivables}, "entity": entity},
    ]
    body = ctx.fields.write(
        "journal_entry",
        {"date": ctx.today(), "memo": memo, "source": f"{command.invoice_id}:{kind}"},
    )
    body["currency"] = {"id": facts.currency}
    if facts.subsidiary:
        body["subsidiary"] = {"id": facts.subsidiary}
    body["line"] = {"items": lines}
    internal_id = await ctx.records.upsert(
        target.record_type, external_id, body, lane=lane, correlation_id=correlation_id
    )
    return _status_result(ctx, command, internal_id, created=True)


def _status_result(
    ctx: Context, command: UpdateInvoiceStatus, journal_id: str, *, created: bool
) -> CommandResult:
    return CommandResult(
        system=ctx.system,
        ids={"journal_entry": journal_id},
        created=created,
        details={"status": command.status.value},
    )
