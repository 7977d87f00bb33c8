"""Stripe invoices as canonical :class:`Invoice` and :class:`Payment` values.

Business fields go through the declarative mapping (``config/mappings/stripe.toml``,
entities ``invoice`` and ``payment``); what the mapping layer cannot say is done here:
canonical ids come from pssync's metadata (falling back to Stripe's ids for invoices
Stripe made itself, such as subscription renewals), currencies are upper-cased, and epoch
timestamps become UTC dates.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import msgspec

from actors.errors import PayloadError
from actors.messages import ExternalRef, Invoice, Payment

from ..mapping import LiveMappings
from .options import StripeOptions
from .wire import Invoice as StripeInvoice
from .wire import to_record

__all__ = ["InvoiceMapper"]


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

    def invoice(self, invoice: StripeInvoice, *, account_id: str) -> Invoice:
        """The canonical invoice (without lines: they stay with the invoice pssync sent)."""
        values = self._mappings.entity("invoice").to_canonical(
            to_record(invoice), record_id=invoice.id
        )
        values["currency"] = str(values.get("currency", "")).upper()
        _dates(values, "issue_date", "due_date")
        values |= {
            "id": self.invoice_id(invoice),
            "account_id": account_id,
            "project_id": invoice.metadata.get(self.options.project_key),
            "external_refs": [self._ref(invoice), *self._subscription_ref(invoice)],
        }
        return _convert(values, Invoice, invoice.id)

    def payment(self, invoice: StripeInvoice, *, account_id: str, fallback: datetime) -> Payment:
        """The payment that settled ``invoice`` (one per invoice: paid is final)."""
        values = self._mappings.entity("payment").to_canonical(
            to_record(invoice), record_id=invoice.id
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
