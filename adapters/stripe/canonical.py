"""Stripe invoices as canonical :class:`Invoice` and :class:`Payment` values.

Business fields go through the declarative mapping (``config/mappings/stripe.toml``,
entities ``invoice`` and ``payment``); what the mapping layer cannot say is done here:
canonical ids come from pssync's metadata (falling back to Stripe's ids for invoices
Stripe made itself, such as subscription renewals), currencies are upper-cased, and epoch
timestamps become UTC dates.

Lines (:meth:`InvoiceMapper.lines`, for issued invoices only; the feed reads them all) are
Stripe's lines as billed: the line id is pssync's (the invoice item's metadata, less its
``<invoice id>:`` prefix) for items pssync created, else Stripe's ``il_…``; quantity and
unit price are the ones pssync sent when the item's metadata records them and its amount
is still the one pssync sent (Stripe keeps whole quantities only, so ``7.5 h at 180.00``
goes as an amount), else Stripe's quantity and price when they make the amount, else one
unit of the amount. An invoice whose lines do not add up to its total — tax, discounts,
anything else Stripe applied on top of the lines — gets no lines: the ERP then gets one
line for the total (invoice_feedback), never lines that disagree with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import msgspec

from actors.errors import PayloadError
from actors.messages import ExternalRef, Invoice, InvoiceLine, Money, Payment

from ..mapping import LiveMappings
from .options import StripeOptions
from .wire import Invoice as StripeInvoice
from .wire import LineItem, to_record

__all__ = ["ITEM_AMOUNT_KEY", "ITEM_QUANTITY_KEY", "ITEM_UNIT_KEY", "InvoiceMapper"]

ITEM_QUANTITY_KEY = "pssync_quantity"
"""Invoice item metadata: the canonical line's quantity (a decimal, e.g. hours)."""
ITEM_UNIT_KEY = "pssync_unit_amount"
"""Invoice item metadata: the canonical line's unit price, in minor units."""
ITEM_AMOUNT_KEY = "pssync_amount"
"""Invoice item metadata: the canonical line's amount in minor units, as sent."""


class InvoiceMapper:
    """Maps decoded Stripe invoices for one system through its mapping set."""

    def __init__(self, *, system: str, mappings: LiveMappings, options: StripeOptions) -> None:
        self.system = system
        self.options = options
        # Entities are looked up at each use: a reload swaps the mapping under the feed.
        self._mappings = mappings

    def invoice_id(self, invoice: StripeInvoice) -> str:
        """The canonical invoice id: pssync's metadata, else Stripe's own id."""
        return invoice.metadata.get(self.options.id_key) or invoice.id

    def invoice(
        self,
        invoice: StripeInvoice,
        *,
        account_id: str,
        lines: Sequence[LineItem] | None = None,
    ) -> Invoice:
        """The canonical invoice; with ``lines`` (all of Stripe's), its lines when they
        add up to its total (module docstring), else none."""
        values = self._mappings.entity("invoice").to_canonical(
            _record(invoice), record_id=invoice.id
        )
        values["currency"] = str(values.get("currency", "")).upper()
        _dates(values, "issue_date", "due_date")
        values |= {
            "id": self.invoice_id(invoice),
            "account_id": account_id,
            "project_id": invoice.metadata.get(self.options.project_key),
            "external_refs": [self._ref(invoice), *self._subscription_ref(invoice)],
        }
        if lines:
            values["lines"] = self.lines(invoice, lines)
        return _convert(values, Invoice, invoice.id)

    def lines(self, invoice: StripeInvoice, lines: Sequence[LineItem]) -> list[InvoiceLine]:
        """``lines`` as canonical lines, or none when they do not make the invoice's total."""
        discounted = any(d.amount for d in invoice.total_discount_amounts or ())
        taxes = [*invoice.total_tax_amounts, *(invoice.total_taxes or ())]
        taxed = bool(invoice.tax) or any(t.amount for t in taxes)
        if discounted or taxed or sum(line.amount for line in lines) != invoice.total:
            return []
        currency = invoice.currency.upper()
        if any(line.currency.upper() != currency for line in lines):
            return []
        prefix = f"{self.invoice_id(invoice)}:"
        project = invoice.metadata.get(self.options.project_key)
        return [self._line(line, currency, prefix, project) for line in lines]

    def _line(self, line: LineItem, currency: str, prefix: str, project: str | None) -> InvoiceLine:
        amount = Money.from_minor_units(line.amount, currency)
        item_id = line.metadata.get(self.options.id_key, "")
        quantity, unit = _as_sent(line) or _as_billed(line)
        return InvoiceLine(
            id=item_id.removeprefix(prefix) if item_id else line.id,
            description=line.description or "",
            quantity=quantity,
            unit_price=Money.from_minor_units(unit, currency) if unit is not None else amount,
            amount=amount,
            project_id=line.metadata.get(self.options.project_key) or project,
        )

    def payment(self, invoice: StripeInvoice, *, account_id: str, fallback: datetime) -> Payment:
        """The payment that settled ``invoice`` (one per invoice: paid is final)."""
        values = self._mappings.entity("payment").to_canonical(
            _record(invoice), record_id=invoice.id
        )
        received = values.pop("received_at", None) or fallback
        values |= {
            # The charge or payment intent when Stripe names one; else the invoice, which
            # can be paid only once, keeps the id stable across re-polls.
            "id": invoice.charge or invoice.payment_intent or f"{invoice.id}:payment",
            "account_id": account_id,
            "invoice_id": self.invoice_id(invoice),
            "received_on": received.astimezone(UTC).date(),
            "method": "out_of_band" if invoice.paid_out_of_band else "stripe",
            "external_refs": [self._ref(invoice)],
        }
        return _convert(values, Payment, invoice.id)

    def _ref(self, invoice: StripeInvoice) -> ExternalRef:
        return ExternalRef(system=self.system, id=invoice.id, object_type="invoice")

    def _subscription_ref(self, invoice: StripeInvoice) -> list[ExternalRef]:
        # Invoices Stripe raises from a subscription name it: how invoice_feedback tells
        # pssync's recurring revenue (subscriptions deal_to_project created) from others.
        if not invoice.subscription:
            return []
        return [
            ExternalRef(system=self.system, id=invoice.subscription, object_type="subscription")
        ]


def _record(invoice: StripeInvoice) -> dict[str, Any]:
    # The mapping reads invoice fields; the raw embedded lines are the feed's business.
    return to_record(msgspec.structs.replace(invoice, lines=None))


def _as_sent(line: LineItem) -> tuple[Decimal, int | None] | None:
    """Quantity and unit price (minor units) pssync sent, if the item still bills them."""
    sent = [line.metadata.get(k) for k in (ITEM_QUANTITY_KEY, ITEM_UNIT_KEY, ITEM_AMOUNT_KEY)]
    if None in sent:
        return None
    try:
        quantity, unit, amount = Decimal(sent[0]), int(sent[1]), int(sent[2])
    except (InvalidOperation, ValueError):
        return None
    if amount != line.amount or not quantity.is_finite() or quantity <= 0:
        return None  # changed in billing since: Stripe's figures below
    return quantity, unit


def _as_billed(line: LineItem) -> tuple[Decimal, int | None]:
    """Stripe's quantity and price when they make the amount, else one of the amount."""
    quantity = line.quantity or 1
    unit = line.price.unit_amount if line.price is not None else None
    if unit is None and line.amount % quantity == 0:
        unit = line.amount // quantity
    if unit is not None and quantity * unit == line.amount:
        return Decimal(quantity), unit
    return Decimal(1), None


def _dates(values: dict[str, Any], *names: str) -> None:
    # The mapping reads epoch seconds as aware datetimes; the canonical fields are dates.
    for name in names:
        value = values.get(name)
        if isinstance(value, datetime):
            values[name] = value.astimezone(UTC).date()
        elif value is not None and not isinstance(value, date):
            raise PayloadError(f"{name} is not a timestamp: {value!r}", where="stripe invoice")


def _convert(values: dict[str, Any], kind: type[Any], stripe_id: str) -> Any:
    try:
        return msgspec.convert(values, kind)
    except msgspec.ValidationError as exc:
        raise PayloadError(str(exc), where=f"stripe invoice {stripe_id}") from exc
