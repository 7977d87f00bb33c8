"""``CreateInvoice`` (draft + items), ``FinalizeInvoice`` (draft → open) and
``UpdateInvoiceStatus`` (void, uncollectible).

Since API version 2022-08-01 a new invoice does not sweep in pending invoice items, so
the draft is created first and each item is attached with ``invoice=in_…``. Every object
carries its canonical id in metadata and is looked for before it is created: the invoice
by search plus the customer's recent invoices, its items among the invoice's own lines
(strongly consistent). A re-run after a crash between two items therefore adds only the
missing ones, and a replay after Stripe forgot the idempotency keys (24 h) adds nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import NamedTuple

from actors.errors import PermanentError
from actors.messages import (
    CreateInvoice,
    FinalizeInvoice,
    InvoiceLine,
    InvoiceStatus,
    UpdateInvoiceStatus,
)

from ..base import CommandResult
from ..governor import Lane
from .api import StripeApi
from .canonical import ITEM_AMOUNT_KEY, ITEM_QUANTITY_KEY, ITEM_UNIT_KEY
from .money import minor_units, stripe_currency, whole_quantity
from .wire import Invoice, InvoiceItem, LineItem

__all__ = [
    "create_invoice",
    "finalize_invoice",
    "find_invoice",
    "update_invoice_status",
]


async def create_invoice(api: StripeApi, command: CreateInvoice) -> CommandResult:
    """The draft invoice with one invoice item per line (idempotent, module docstring)."""
    options, system, invoice = api.options, api.system, command.invoice
    correlation, key = command.correlation_id, command.idempotency_key
    planned = _planned_items(api, command)
    found = await api.find_by_metadata(
        "invoices",
        Invoice,
        invoice.id,
        lane=Lane.CRITICAL,
        correlation_id=correlation,
        list_params={"customer": command.customer_id},
    )
    live = [candidate for candidate in found if candidate.status != "void"]
    created = False
    if live or found:
        draft = (live or found)[0]
        if draft.customer != command.customer_id:
            raise PermanentError(
                f"invoice {invoice.id} exists in Stripe as {draft.id} for customer "
                f"{draft.customer}, not {command.customer_id}",
                system=system,
                code="conflict",
            )
    else:
        metadata = {
            options.id_key: invoice.id,
            options.source_key: f"invoice:{invoice.id}",
            options.project_key: invoice.project_id,
            options.account_key: invoice.account_id,
            options.correlation_key: correlation,
        }
        body: dict[str, object] = {
            "customer": command.customer_id,
            "currency": stripe_currency(invoice.currency),
            "collection_method": options.collection_method,
            "auto_advance": False,  # finalized by FinalizeInvoice, when the workflow says so
            "pending_invoice_items_behavior": "exclude",
            "metadata": {name: value for name, value in metadata.items() if value},
        }
        if options.collection_method == "send_invoice":
            if invoice.due_date is not None:
                due = datetime.combine(invoice.due_date, time(23, 59, 59), tzinfo=UTC)
                body["due_date"] = int(due.timestamp())
            else:
                body["days_until_due"] = options.days_until_due
        draft = await api.post(
            "/v1/invoices",
            Invoice,
            body,
            lane=Lane.CRITICAL,
            idempotency_key=f"{key}:invoice",
            correlation_id=correlation,
        )
        created = True

    # The invoice's own lines rather than GET /v1/invoiceitems: a strongly consistent list
    # scoped to this invoice. An invoiceitem line shows its item's metadata; should it not
    # (the API reference promises that only for subscription lines), the item is read.
    existing: dict[str, LineItem] = {}
    async for line in api.list_all(
        f"/v1/invoices/{draft.id}/lines", LineItem, lane=Lane.CRITICAL, correlation_id=correlation
    ):
        if line.type != "invoiceitem" or not line.invoice_item:
            continue
        item_id = line.metadata.get(options.id_key)
        if item_id is None:
            item = await api.get(
                f"/v1/invoiceitems/{line.invoice_item}",
                InvoiceItem,
                lane=Lane.CRITICAL,
                correlation_id=correlation,
            )
            item_id = item.metadata.get(options.id_key, "")
        existing.setdefault(item_id, line)
    ids = {"customer": command.customer_id, "invoice": draft.id, invoice.id: draft.id}
    missing = [item_id for item_id, _, _ in planned if item_id not in existing]
    if missing and draft.status != "draft":
        # A finalized invoice takes no lines. Holding none of the command's, the lines
        # may go on another invoice (invoice_not_editable); holding some (a run that
        # added them before finance finalized), moving the rest elsewhere could bill the
        # same work twice, so a person decides (invoice_partly_billed).
        partly = len(missing) < len(planned)
        raise PermanentError(
            f"invoice {invoice.id} ({draft.id}) is {draft.status} and lacks "
            f"{len(missing)} of the command's {len(planned)} items ({', '.join(missing)})"
            + (": the rest cannot be added" if partly else ": it takes no more lines"),
            system=system,
            code="invoice_partly_billed" if partly else "invoice_not_editable",
        )
    for item_id, amount, body in planned:
        line = existing.get(item_id)
        if line is None:
            item = await api.post(
                "/v1/invoiceitems",
                InvoiceItem,
                {**body, "invoice": draft.id, "customer": command.customer_id},
                lane=Lane.CRITICAL,
                idempotency_key=f"{key}:item:{item_id}",
                correlation_id=correlation,
            )
            ids[f"line:{item_id}"] = item.id
            created = True
            continue
        if line.amount != amount or line.currency != body["currency"]:
            raise PermanentError(
                f"invoice {invoice.id}: Stripe item {line.invoice_item} for {item_id} is "
                f"{line.amount} {line.currency}, the command says {amount} {body['currency']}",
                system=system,
                code="conflict",
            )
        ids[f"line:{item_id}"] = line.invoice_item or line.id
    if created:
        # Re-read for the totals Stripe computed over the items just attached.
        draft = await api.get(
            f"/v1/invoices/{draft.id}", Invoice, lane=Lane.CRITICAL, correlation_id=correlation
        )
    return CommandResult(system=system, ids=ids, created=created, details=_details(draft))


async def finalize_invoice(api: StripeApi, command: FinalizeInvoice) -> CommandResult:
    """Draft → open; an invoice already past draft (open, paid…) is a success too."""
    system, correlation = api.system, command.correlation_id
    invoice = await find_invoice(api, command.invoice_id, correlation_id=correlation)
    created = False
    if invoice.status == "draft":
        try:
            invoice = await api.post(
                f"/v1/invoices/{invoice.id}/finalize",
                Invoice,
                {},
                lane=Lane.CRITICAL,
                idempotency_key=f"{command.idempotency_key}:finalize",
                correlation_id=correlation,
            )
            created = True
        except PermanentError:
            # Finalized meanwhile (auto-advance, an operator): the state decides, not the 400.
            invoice = await api.get(
                f"/v1/invoices/{invoice.id}",
                Invoice,
                lane=Lane.CRITICAL,
                correlation_id=correlation,
            )
            if invoice.status == "draft":
                raise
    if invoice.status in ("void", None):
        raise PermanentError(
            f"invoice {command.invoice_id} ({invoice.id}) is {invoice.status or 'deleted'} "
            "and cannot be issued",
            system=system,
            code="invoice_not_open",
        )
    return CommandResult(
        system=system,
        ids={"invoice": invoice.id, command.invoice_id: invoice.id},
        created=created,
        details=_details(invoice),
    )


async def find_invoice(api: StripeApi, invoice_id: str, *, correlation_id: str) -> Invoice:
    """The invoice by Stripe id (``in_…``) or by the canonical id in its metadata."""
    if invoice_id.startswith("in_"):
        invoice = await api.get_or_none(
            f"/v1/invoices/{invoice_id}",
            Invoice,
            lane=Lane.CRITICAL,
            correlation_id=correlation_id,
        )
        if invoice is not None:
            return invoice
    found = await api.find_by_metadata(
        "invoices", Invoice, invoice_id, lane=Lane.CRITICAL, correlation_id=correlation_id
    )
    live = [invoice for invoice in found if invoice.status != "void"]
    if not found:
        raise PermanentError(
            f"no Stripe invoice {invoice_id}", system=api.system, code="resource_missing"
        )
    return (live or found)[0]


class _PlannedItem(NamedTuple):
    item_id: str
    """The canonical id in the item's metadata: ``<invoice id>:<line id or index>``."""
    amount: int
    body: dict[str, object]


def _planned_items(api: StripeApi, command: CreateInvoice) -> list[_PlannedItem]:
    """One invoice item per line, every amount checked before anything is sent."""
    options, system, invoice = api.options, api.system, command.invoice
    if not invoice.lines:
        raise PermanentError(f"invoice {invoice.id} has no lines", system=system, code="empty")
    planned: list[_PlannedItem] = []
    for index, line in enumerate(invoice.lines):
        item_id = f"{invoice.id}:{line.id or index}"
        what = f"invoice {invoice.id} line {line.id or index}"
        if any(item.item_id == item_id for item in planned):
            raise PermanentError(f"{what} appears twice", system=system, code="duplicate_line")
        _check_line(line, invoice.currency, system=system, what=what)
        amount = minor_units(line.amount, system=system, what=what)
        unit = minor_units(line.unit_price, system=system, what=what)
        quantity = line.quantity
        metadata = {
            options.id_key: item_id,
            options.source_key: f"invoice_line:{item_id}",
            options.project_key: line.project_id or invoice.project_id,
            "pssync_milestone": line.milestone_id,
            # The line as sent (Stripe keeps whole quantities only): the feed reads it back.
            ITEM_QUANTITY_KEY: f"{quantity:f}",
            ITEM_UNIT_KEY: str(unit),
            ITEM_AMOUNT_KEY: str(amount),
        }
        body: dict[str, object] = {
            "currency": stripe_currency(invoice.currency),
            "description": line.description or None,
            "metadata": {name: value for name, value in metadata.items() if value},
        }
        if quantity == quantity.to_integral_value() and quantity >= 1 and unit * quantity == amount:
            # Stripe prints "quantity x unit price" on the invoice when both are exact.
            body["unit_amount"] = unit
            body["quantity"] = whole_quantity(quantity, system=system, what=what)
        else:
            body["amount"] = amount
        planned.append(_PlannedItem(item_id, amount, body))
    return planned


def _check_line(line: InvoiceLine, currency: str, *, system: str, what: str) -> None:
    for name in ("unit_price", "amount"):
        if getattr(line, name).currency != currency:
            raise PermanentError(
                f"{what}: {name} is in {getattr(line, name).currency}, the invoice in {currency}",
                system=system,
                code="currency",
            )
    if line.tax is not None and not line.tax.is_zero():
        # Stripe computes tax itself (tax rates or Stripe Tax); posting ours as an amount
        # would be wrong either way, and dropping it would lose money silently.
        raise PermanentError(
            f"{what} carries tax {line.tax}; the Stripe adapter does not post canonical tax",
            system=system,
            code="tax",
        )


def _details(invoice: Invoice) -> dict[str, str]:
    return {
        "status": invoice.status or "",
        "number": invoice.number or "",
        "hosted_invoice_url": invoice.hosted_invoice_url or "",
        "total_minor_units": str(invoice.total),
        "amount_due_minor_units": str(invoice.amount_due),
        "currency": invoice.currency.upper(),
    }


_STATUS_CALLS = {
    InvoiceStatus.VOID: ("void", ("open", "uncollectible")),
    InvoiceStatus.UNCOLLECTIBLE: ("mark_uncollectible", ("open",)),
}


async def update_invoice_status(api: StripeApi, command: UpdateInvoiceStatus) -> CommandResult:
    """Void an invoice or write it off (mark uncollectible); already there is a success."""
    system, correlation = api.system, command.correlation_id
    if command.status not in _STATUS_CALLS:
        raise PermanentError(
            f"stripe cannot set invoice {command.invoice_id} to {command.status}: only void "
            "and uncollectible are commands (paid comes from the customer, open from finalize)",
            system=system,
            code="unsupported_status",
        )
    action, allowed = _STATUS_CALLS[command.status]
    invoice = await find_invoice(api, command.invoice_id, correlation_id=correlation)
    created = False
    if invoice.status != command.status:
        if invoice.status not in allowed:
            raise PermanentError(
                f"invoice {command.invoice_id} ({invoice.id}) is {invoice.status}: Stripe "
                f"can {action.replace('_', ' ')} only an invoice that is {' or '.join(allowed)}",
                system=system,
                code="invoice_status",
            )
        invoice = await api.post(
            f"/v1/invoices/{invoice.id}/{action}",
            Invoice,
            {},
            lane=Lane.CRITICAL,
            idempotency_key=f"{command.idempotency_key}:{action}",
            correlation_id=correlation,
        )
        created = True
    return CommandResult(
        system=system,
        ids={"invoice": invoice.id, command.invoice_id: invoice.id},
        created=created,
        details=_details(invoice),
    )
