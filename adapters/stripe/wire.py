"""Stripe's JSON, decoded with msgspec into the few fields pssync reads.

Structs ignore fields they do not name (Stripe adds fields without a version bump), and a
body that does not match is a :class:`~actors.errors.PayloadError` naming the object and
the field. Amounts are integers in minor units, times are Unix epoch seconds.
"""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec
from msgspec import Raw, Struct

from actors.errors import PayloadError

__all__ = [
    "Address",
    "Amount",
    "Customer",
    "Event",
    "Invoice",
    "InvoiceItem",
    "LineItem",
    "LinePrice",
    "ListPage",
    "Price",
    "Product",
    "StripeObject",
    "Subscription",
    "decode",
    "decode_items",
    "to_record",
]

T = TypeVar("T")


class StripeObject(Struct, kw_only=True):
    """What every Stripe object pssync reads has: an id, metadata, a creation time."""

    id: str
    metadata: dict[str, str] = {}
    created: int = 0


class Address(Struct, kw_only=True):
    """A customer's postal address."""

    line1: str | None = None
    line2: str | None = None
    city: str | None = None
    state: str | None = None
    postal_code: str | None = None
    country: str | None = None


class Customer(StripeObject, kw_only=True):
    """``customer``: whom invoices are addressed to."""

    name: str | None = None
    email: str | None = None
    phone: str | None = None
    address: Address | None = None


class Product(StripeObject, kw_only=True):
    """``product``: what a recurring price sells."""

    name: str | None = None
    active: bool = True


class Recurring(Struct, kw_only=True):
    """A price's billing cycle."""

    interval: str
    interval_count: int = 1


class Price(StripeObject, kw_only=True):
    """``price``: an amount per unit (and cycle, for a recurring price)."""

    product: str
    currency: str
    unit_amount: int | None = None
    recurring: Recurring | None = None
    active: bool = True


class Subscription(StripeObject, kw_only=True):
    """``subscription``: a customer billed for recurring prices."""

    customer: str
    status: str
    latest_invoice: str | None = None


class InvoiceItem(StripeObject, kw_only=True):
    """``invoiceitem``: one charge, attached to a draft invoice with ``invoice=``."""

    customer: str
    invoice: str | None = None
    amount: int
    currency: str
    description: str | None = None


class LinePrice(Struct, kw_only=True):
    """The price a line bills at (``unit_amount`` in minor units)."""

    unit_amount: int | None = None


class LineItem(StripeObject, kw_only=True):
    """An invoice's line (``il_…``); ``invoice_item`` names the item it shows (2024 API
    versions; the 2025 "basil" versions moved it under ``parent``). ``metadata`` is the
    invoice item's (or, for ``type`` ``subscription``, the subscription's)."""

    amount: int
    currency: str
    invoice_item: str | None = None
    type: str = ""
    description: str | None = None
    quantity: int | None = None
    price: LinePrice | None = None


class Amount(Struct, kw_only=True):
    """One entry of an invoice's ``total_discount_amounts`` / ``total_tax_amounts``."""

    amount: int = 0


class StatusTransitions(Struct, kw_only=True):
    """When an invoice changed status (epoch seconds)."""

    finalized_at: int | None = None
    paid_at: int | None = None
    voided_at: int | None = None
    marked_uncollectible_at: int | None = None


class Invoice(StripeObject, kw_only=True):
    """``invoice``; ``number`` and ``hosted_invoice_url`` stay null until finalized."""

    customer: str
    status: str | None = None
    number: str | None = None
    currency: str
    total: int = 0
    amount_due: int = 0
    amount_paid: int = 0
    hosted_invoice_url: str | None = None
    due_date: int | None = None
    paid_out_of_band: bool = False
    charge: str | None = None
    payment_intent: str | None = None
    subscription: str | None = None
    """The subscription that raised it (API versions before 2025-03-31; null for others)."""
    status_transitions: StatusTransitions = msgspec.field(default_factory=StatusTransitions)
    lines: ListPage | None = None
    """The first lines (``has_more`` when there are others: ``GET /v1/invoices/:id/lines``)."""
    tax: int | None = None
    total_tax_amounts: list[Amount] = []
    total_discount_amounts: list[Amount] | None = None
    total_taxes: list[Amount] | None = None
    """Tax from the 2025 "basil" API versions on (``tax`` and ``total_tax_amounts`` before)."""


class EventData(Struct, kw_only=True):
    """The object an event is about, as it was then, and what changed."""

    object: Raw
    previous_attributes: dict[str, Any] | None = None


class Event(StripeObject, kw_only=True):
    """``event``: one fact from ``GET /v1/events`` (rendered in its own ``api_version``)."""

    type: str
    data: EventData
    api_version: str | None = None


class ListPage(Struct, kw_only=True):
    """A list or search result page; items stay raw until decoded one by one."""

    data: list[Raw]
    has_more: bool = False
    next_page: str | None = None


class _Identified(Struct):
    id: str = "?"


def decode(content: bytes | Raw, kind: type[T], *, what: str) -> T:
    """Decode one Stripe body as ``kind``; PayloadError naming ``what``, the id and the field."""
    try:
        return msgspec.json.decode(content, type=kind)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise PayloadError(str(exc), where=f"stripe {what} {_id_of(content)}".rstrip()) from exc


def decode_items(page: ListPage, kind: type[T], *, what: str) -> list[T]:
    """Each item of a list page as ``kind`` (a bad one names its own id)."""
    return [decode(item, kind, what=what) for item in page.data]


def to_record(obj: Struct) -> dict[str, Any]:
    """The decoded object as plain data, for the declarative mappings."""
    return msgspec.to_builtins(obj)


def _id_of(content: bytes | Raw) -> str:
    try:
        return msgspec.json.decode(content, type=_Identified).id
    except (msgspec.DecodeError, msgspec.ValidationError):
        return ""
