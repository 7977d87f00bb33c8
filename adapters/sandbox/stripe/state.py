"""The simulated Stripe account: objects, their lifecycles and the event log.

Handlers in :mod:`.app` translate HTTP into the methods here; the scenario driver calls
the business hooks directly (see the package docstring). Every mutation is synchronous,
so each request's effect is atomic under trio.

Sandbox choices (where Stripe's behaviour is version-dependent or unknown):

- Every customer behaves as if it had a working test card: ``POST /v1/invoices/:id/pay``
  succeeds unless :meth:`StripeState.fail_payment` was used, and a ``charge_automatically``
  invoice is paid when it is finalized. ``paid_out_of_band=true`` marks it paid without
  a charge.
- Invoices default to the customer's currency, else ``usd``; an invoice item in another
  currency than its invoice is refused. A customer's currency is set by its first item.
- ``auto_advance=true`` drafts are finalized one hour (sandbox time) after creation.
- Subscriptions bill immediately (an ``open`` first invoice, paid at once when
  ``charge_automatically``) and renew when their period ends: a draft with
  ``auto_advance=true`` that finalizes an hour later.
- Shapes follow the 2024 API versions (``invoice.paid``, line items with ``price``,
  ``current_period_*`` on the subscription); ``api_version`` is configurable.
"""

from __future__ import annotations

import calendar
import copy
import datetime as dt
import random
import string
from collections.abc import Callable, Iterable
from typing import Any

from ..clock import SandboxClock
from .errors import StripeError, invalid, no_such

DEFAULT_API_VERSION = "2024-06-20"
EVENT_RETENTION_S = 30 * 86400
AUTO_ADVANCE_DELAY_S = 3600
EMBEDDED_LINES = 10
"""Lines an invoice object embeds (Stripe: "the first handful"; the rest by the lines list)."""
KINDS = ("customer", "product", "price", "subscription", "invoiceitem", "invoice")
PREFIX = {
    "customer": "cus",
    "product": "prod",
    "price": "price",
    "subscription": "sub",
    "subscription_item": "si",
    "invoiceitem": "ii",
    "invoice": "in",
    "event": "evt",
}
DEFAULT_SOURCE_KEYS = ("pssync_source", "pssync_id")
_ALPHABET = string.ascii_letters + string.digits
_TIMES = "\N{MULTIPLICATION SIGN}"  # as in Stripe line descriptions


def transition_error(message: str) -> StripeError:
    # The request executed and was refused by the object's state: cache it like Stripe.
    return StripeError(400, message, cacheable=True)


class StripeState:
    """All objects of one simulated Stripe account (implements ``VendorState``)."""

    def __init__(
        self,
        *,
        clock: SandboxClock,
        seed: int = 0,
        api_version: str = DEFAULT_API_VERSION,
        source_keys: tuple[str, ...] = DEFAULT_SOURCE_KEYS,
        search_lag_s: float = 0.0,
    ) -> None:
        self._clock = clock
        self.seed = seed
        self.api_version = api_version
        self.source_keys = source_keys
        self.search_lag_s = search_lag_s
        self.request: dict[str, str | None] = {"id": None, "idempotency_key": None}
        self.reset()

    def reset(self) -> None:
        self._random = random.Random(self.seed)
        self.objects: dict[str, dict[str, dict[str, Any]]] = {kind: {} for kind in KINDS}
        self.events: dict[str, dict[str, Any]] = {}
        self._sequence: dict[str, int] = {}
        self._counter = 0
        self._failing: set[str] = set()
        self._reindex()

    def _reindex(self) -> None:
        """Indexes that keep :meth:`tick` cheap: auto-advancing drafts, next renewal."""
        self._auto_drafts = {
            invoice["id"]
            for invoice in self.objects["invoice"].values()
            if invoice["status"] == "draft" and invoice["auto_advance"]
        }
        ends = [
            sub["current_period_end"]
            for sub in self.objects["subscription"].values()
            if sub["status"] != "canceled"
        ]
        self._next_renewal: int | None = min(ends) if ends else None

    # ----------------------------------------------------------------- basics

    def now(self) -> int:
        return int(self._clock.now())

    def new_id(self, kind: str) -> str:
        length = 14 if kind in ("customer", "product") else 24
        suffix = "".join(self._random.choices(_ALPHABET, k=length))
        return f"{PREFIX[kind]}_{suffix}"

    def _add(self, kind: str, obj: dict[str, Any]) -> dict[str, Any]:
        self._counter += 1
        self._sequence[obj["id"]] = self._counter
        self.objects[kind][obj["id"]] = obj
        return obj

    def sequence(self, object_id: str) -> int:
        return self._sequence.get(object_id, 0)

    def get(self, kind: str, object_id: str, param: str | None = "id") -> dict[str, Any]:
        obj = self.objects[kind].get(object_id)
        if obj is None:
            raise no_such(kind, object_id, param)
        return obj

    def emit(
        self, type_: str, obj: dict[str, Any], previous: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        data: dict[str, Any] = {"object": copy.deepcopy(public(obj))}
        if previous:
            data["previous_attributes"] = copy.deepcopy(previous)
        event = {
            "id": self.new_id("event"),
            "object": "event",
            "api_version": self.api_version,
            "created": self.now(),
            "data": data,
            "livemode": False,
            "pending_webhooks": 0,
            "request": dict(self.request),
            "type": type_,
        }
        self._counter += 1
        self._sequence[event["id"]] = self._counter
        self.events[event["id"]] = event
        return event

    def live_events(self) -> list[dict[str, Any]]:
        """Events of the last 30 days (older ones are dropped, as Stripe does)."""
        horizon = self.now() - EVENT_RETENTION_S
        expired = []
        for event_id, event in self.events.items():  # creation order: oldest first
            if event["created"] >= horizon:
                break
            expired.append(event_id)
        for event_id in expired:
            del self.events[event_id]
        return list(self.events.values())

    # ----------------------------------------------------------------- VendorState

    def counts(self) -> dict[str, int]:
        counts = {kind: len(objects) for kind, objects in self.objects.items()}
        counts["event"] = len(self.events)
        return counts

    def source_key(self, obj: dict[str, Any]) -> str | None:
        metadata = obj.get("metadata") or {}
        for key in self.source_keys:
            if metadata.get(key):
                return f"{key}:{metadata[key]}"
        return None

    def duplicates(self) -> list[dict[str, Any]]:
        found = []
        for kind in ("customer", "invoice", "invoiceitem", "subscription", "product"):
            groups: dict[str, list[str]] = {}
            for obj in self.objects[kind].values():
                if kind == "invoice" and obj["status"] == "void":
                    continue  # a voided invoice replaced by a new one is not a duplicate
                key = self.source_key(obj)
                if key is not None:
                    groups.setdefault(key, []).append(obj["id"])
            found += [
                {"type": kind, "source_key": key, "ids": ids}
                for key, ids in sorted(groups.items())
                if len(ids) > 1
            ]
        return found

    def snapshot(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "counter": self._counter,
            "random": _encode_random(self._random.getstate()),
            "objects": copy.deepcopy(self.objects),
            "events": copy.deepcopy(list(self.events.values())),
            "sequence": dict(self._sequence),
            "failing": sorted(self._failing),
        }

    def restore(self, data: dict[str, Any]) -> None:
        self.seed = int(data["seed"])
        self._random = random.Random(self.seed)
        self._random.setstate(_decode_random(data["random"]))
        self._counter = int(data["counter"])
        self.objects = {kind: dict(data["objects"].get(kind, {})) for kind in KINDS}
        self.objects = copy.deepcopy(self.objects)
        self.events = {event["id"]: copy.deepcopy(event) for event in data["events"]}
        self._sequence = {key: int(value) for key, value in data["sequence"].items()}
        self._failing = set(data.get("failing", []))
        self._reindex()

    # ----------------------------------------------------------------- time

    def tick(self) -> None:
        """Let sandbox time act: renew subscriptions, auto-finalize drafts."""
        now = self.now()
        if self._next_renewal is not None and self._next_renewal <= now:
            for subscription in list(self.objects["subscription"].values()):
                renewals = 0
                while (
                    subscription["status"] in ("active", "past_due", "trialing", "incomplete")
                    and subscription["current_period_end"] <= now
                    and renewals < 100
                ):
                    self._renew(subscription)
                    renewals += 1
            self._reindex()
        due = [
            invoice_id
            for invoice_id in self._auto_drafts
            if self.objects["invoice"][invoice_id]["created"] + AUTO_ADVANCE_DELAY_S <= now
        ]
        for invoice_id in sorted(due, key=self.sequence):
            self.finalize_invoice(invoice_id)

    # ----------------------------------------------------------------- customers

    def create_customer(self, fields: dict[str, Any]) -> dict[str, Any]:
        customer = {
            "id": self.new_id("customer"),
            "object": "customer",
            "address": fields.get("address"),
            "balance": 0,
            "created": self.now(),
            "currency": None,
            "default_source": None,
            "delinquent": False,
            "description": fields.get("description"),
            "discount": None,
            "email": fields.get("email"),
            "invoice_prefix": "".join(self._random.choices(string.ascii_uppercase, k=8)),
            "invoice_settings": {
                "custom_fields": None,
                "default_payment_method": None,
                "footer": None,
                "rendering_options": None,
            },
            "livemode": False,
            "metadata": fields.get("metadata") or {},
            "name": fields.get("name"),
            "next_invoice_sequence": 1,
            "phone": fields.get("phone"),
            "preferred_locales": fields.get("preferred_locales") or [],
            "shipping": None,
            "tax_exempt": "none",
            "test_clock": None,
        }
        self._add("customer", customer)
        self.emit("customer.created", customer)
        return customer

    def update(self, kind: str, object_id: str, fields: dict[str, Any]) -> dict[str, Any]:
        obj = self.get(kind, object_id)
        previous = {
            key: copy.deepcopy(obj.get(key)) for key in fields if obj.get(key) != fields[key]
        }
        obj.update(fields)
        if kind == "product":
            obj["updated"] = self.now()
        if previous:
            event_kind = "customer.subscription" if kind == "subscription" else kind
            if kind != "invoiceitem":
                self.emit(f"{event_kind}.updated", obj, previous)
        if kind == "invoice":
            self._recompute(obj)
            if obj["status"] == "draft" and obj["auto_advance"]:
                self._auto_drafts.add(obj["id"])
            else:
                self._auto_drafts.discard(obj["id"])
        return obj

    def delete_customer(self, customer_id: str) -> dict[str, Any]:
        customer = self.get("customer", customer_id)
        del self.objects["customer"][customer_id]
        self.emit("customer.deleted", customer)
        return {"id": customer_id, "object": "customer", "deleted": True}

    # ----------------------------------------------------------------- catalogue

    def create_product(self, fields: dict[str, Any]) -> dict[str, Any]:
        now = self.now()
        product = {
            "id": fields.get("id") or self.new_id("product"),
            "object": "product",
            "active": fields.get("active", True),
            "created": now,
            "default_price": None,
            "description": fields.get("description"),
            "images": [],
            "livemode": False,
            "metadata": fields.get("metadata") or {},
            "name": fields["name"],
            "type": "service",
            "unit_label": fields.get("unit_label"),
            "updated": now,
            "url": None,
        }
        if product["id"] in self.objects["product"]:
            raise invalid(
                f"Product already exists: {product['id']}", "id", "resource_already_exists"
            )
        self._add("product", product)
        self.emit("product.created", product)
        return product

    def create_price(self, fields: dict[str, Any]) -> dict[str, Any]:
        self.get("product", fields["product"], "product")
        recurring = fields.get("recurring")
        if recurring is not None:
            recurring = {
                "aggregate_usage": None,
                "interval": recurring["interval"],
                "interval_count": recurring.get("interval_count", 1),
                "meter": None,
                "trial_period_days": None,
                "usage_type": "licensed",
            }
        price = {
            "id": self.new_id("price"),
            "object": "price",
            "active": fields.get("active", True),
            "billing_scheme": "per_unit",
            "created": self.now(),
            "currency": fields["currency"],
            "custom_unit_amount": None,
            "livemode": False,
            "lookup_key": fields.get("lookup_key"),
            "metadata": fields.get("metadata") or {},
            "nickname": fields.get("nickname"),
            "product": fields["product"],
            "recurring": recurring,
            "tax_behavior": "unspecified",
            "tiers_mode": None,
            "transform_quantity": None,
            "type": "recurring" if recurring else "one_time",
            "unit_amount": fields["unit_amount"],
            "unit_amount_decimal": str(fields["unit_amount"]),
        }
        self._add("price", price)
        self.emit("price.created", price)
        return price

    # ----------------------------------------------------------------- invoice items

    def create_invoiceitem(self, fields: dict[str, Any]) -> dict[str, Any]:
        customer = self.get("customer", fields["customer"], "customer")
        price = None
        quantity = fields.get("quantity") or 1
        if fields.get("price") is not None:
            if fields.get("amount") is not None or fields.get("unit_amount") is not None:
                raise invalid(
                    "You may only specify one of these parameters: amount, price.", "price"
                )
            price = self.get("price", fields["price"], "price")
            unit_amount = price["unit_amount"]
            currency = price["currency"]
            if fields.get("currency") not in (None, currency):
                raise invalid("The currency must match the price's currency.", "currency")
            amount = unit_amount * quantity
        elif fields.get("amount") is not None:
            amount = fields["amount"]
            unit_amount = amount // quantity if quantity else amount
            if fields.get("quantity") not in (None, 1):
                raise invalid(
                    "You may not specify quantity with amount; use unit_amount.", "quantity"
                )
            currency = fields.get("currency") or customer["currency"]
        elif fields.get("unit_amount") is not None:
            unit_amount = fields["unit_amount"]
            amount = unit_amount * quantity
            currency = fields.get("currency") or customer["currency"]
        else:
            raise invalid("You must specify either amount, unit_amount or price.", "amount")
        if currency is None:
            raise invalid("Missing required param: currency.", "currency", "parameter_missing")
        invoice = None
        if fields.get("invoice") is not None:
            invoice = self.get("invoice", fields["invoice"], "invoice")
            if invoice["status"] != "draft":
                raise invalid(
                    f"Invoice {invoice['id']} is not a draft: items can only be added to "
                    "draft invoices.",
                    "invoice",
                    "invoice_not_editable",
                )
            if invoice["customer"] != customer["id"]:
                raise invalid("The invoice belongs to another customer.", "invoice")
            if invoice["currency"] != currency:
                raise invalid(
                    f"The currency of this invoice item ({currency}) must match the currency "
                    f"of the invoice ({invoice['currency']}).",
                    "currency",
                )
        now = self.now()
        period = fields.get("period") or {"start": now, "end": now}
        item = {
            "id": self.new_id("invoiceitem"),
            "object": "invoiceitem",
            "amount": amount,
            "currency": currency,
            "customer": customer["id"],
            "date": now,
            "description": fields.get("description"),
            "discountable": True,
            "discounts": [],
            "invoice": invoice["id"] if invoice else None,
            "livemode": False,
            "metadata": fields.get("metadata") or {},
            "period": period,
            "price": copy.deepcopy(price),
            "proration": False,
            "quantity": quantity,
            "subscription": None,
            "test_clock": None,
            "unit_amount": unit_amount,
            "unit_amount_decimal": str(unit_amount),
        }
        if customer["currency"] is None:
            customer["currency"] = currency
        self._add("invoiceitem", item)
        if invoice is not None:
            self._recompute(invoice)
        return item

    def check_item_editable(self, item: dict[str, Any]) -> None:
        if item["invoice"] is not None:
            invoice = self.objects["invoice"].get(item["invoice"])
            if invoice is not None and invoice["status"] != "draft":
                raise invalid(
                    "This invoice item is on a finalized invoice and can no longer be changed.",
                    code="invoice_not_editable",
                )

    def update_invoiceitem(self, item_id: str, fields: dict[str, Any]) -> dict[str, Any]:
        item = self.get("invoiceitem", item_id)
        self.check_item_editable(item)
        item.update(fields)
        if "quantity" in fields or "unit_amount" in fields:
            item["amount"] = item["unit_amount"] * item["quantity"]
            item["unit_amount_decimal"] = str(item["unit_amount"])
        elif "amount" in fields:
            item["unit_amount"] = item["amount"] // max(1, item["quantity"])
        if item["invoice"] is not None:
            self._recompute(self.objects["invoice"][item["invoice"]])
        return item

    def delete_invoiceitem(self, item_id: str) -> dict[str, Any]:
        item = self.get("invoiceitem", item_id)
        self.check_item_editable(item)
        del self.objects["invoiceitem"][item_id]
        if item["invoice"] is not None:
            self._recompute(self.objects["invoice"][item["invoice"]])
        return {"id": item_id, "object": "invoiceitem", "deleted": True}

    # ----------------------------------------------------------------- invoices

    def create_invoice(
        self,
        fields: dict[str, Any],
        *,
        subscription: dict[str, Any] | None = None,
        lines: Iterable[dict[str, Any]] = (),
        billing_reason: str = "manual",
    ) -> dict[str, Any]:
        customer = self.get("customer", fields["customer"], "customer")
        collection = fields.get("collection_method") or "charge_automatically"
        days = fields.get("days_until_due")
        if collection == "send_invoice" and days is None and fields.get("due_date") is None:
            raise invalid(
                "Missing required param: days_until_due (or due_date) for send_invoice.",
                "days_until_due",
                "parameter_missing",
            )
        if collection == "charge_automatically" and days is not None:
            raise invalid(
                "days_until_due can only be set when collection_method is send_invoice.",
                "days_until_due",
            )
        now = self.now()
        invoice = {
            "id": self.new_id("invoice"),
            "object": "invoice",
            "account_country": "US",
            "account_name": "pssync sandbox",
            "amount_due": 0,
            "amount_paid": 0,
            "amount_remaining": 0,
            "attempt_count": 0,
            "attempted": False,
            "auto_advance": bool(fields.get("auto_advance", False)),
            "billing_reason": billing_reason,
            "collection_method": collection,
            "created": now,
            "currency": fields.get("currency") or customer["currency"] or "usd",
            "customer": customer["id"],
            "customer_email": customer["email"],
            "customer_name": customer["name"],
            "days_until_due": days,
            "description": fields.get("description"),
            "due_date": fields.get("due_date"),
            "effective_at": None,
            "ending_balance": None,
            "footer": fields.get("footer"),
            "hosted_invoice_url": None,
            "invoice_pdf": None,
            "lines": {},
            "livemode": False,
            "metadata": fields.get("metadata") or {},
            "number": None,
            "paid": False,
            "paid_out_of_band": False,
            "period_end": now,
            "period_start": now,
            "starting_balance": 0,
            "status": "draft",
            "status_transitions": {
                "finalized_at": None,
                "marked_uncollectible_at": None,
                "paid_at": None,
                "voided_at": None,
            },
            "subscription": subscription["id"] if subscription else None,
            "subtotal": 0,
            "total": 0,
            "webhooks_delivered_at": None,
            "_lines": list(lines),
        }
        self._add("invoice", invoice)
        if invoice["auto_advance"]:
            self._auto_drafts.add(invoice["id"])
        if fields.get("pending_invoice_items_behavior") == "include":
            for item in self.objects["invoiceitem"].values():
                if (
                    item["customer"] == customer["id"]
                    and item["invoice"] is None
                    and item["currency"] == invoice["currency"]
                ):
                    item["invoice"] = invoice["id"]
        self._recompute(invoice)
        self.emit("invoice.created", invoice)
        return invoice

    def invoice_lines(self, invoice: dict[str, Any]) -> list[dict[str, Any]]:
        lines = list(invoice.get("_lines", []))
        for item in self.objects["invoiceitem"].values():
            if item["invoice"] == invoice["id"]:
                lines.append(
                    {
                        "id": "il_" + item["id"][3:],
                        "object": "line_item",
                        "amount": item["amount"],
                        "currency": item["currency"],
                        "description": item["description"],
                        "discountable": True,
                        "invoice": invoice["id"],
                        "invoice_item": item["id"],
                        "livemode": False,
                        "metadata": item["metadata"],
                        "period": item["period"],
                        "price": item["price"],
                        "proration": False,
                        "quantity": item["quantity"],
                        "subscription": None,
                        "type": "invoiceitem",
                    }
                )
        return lines

    def _recompute(self, invoice: dict[str, Any]) -> None:
        lines = self.invoice_lines(invoice)
        subtotal = sum(line["amount"] for line in lines)
        invoice["subtotal"] = subtotal
        invoice["subtotal_excluding_tax"] = subtotal
        invoice["total"] = subtotal
        invoice["total_excluding_tax"] = subtotal
        invoice["amount_due"] = max(0, subtotal - invoice["starting_balance"])
        invoice["amount_remaining"] = max(0, invoice["amount_due"] - invoice["amount_paid"])
        # Like Stripe, the invoice object embeds only the first lines; the rest are read
        # from GET /v1/invoices/:id/lines ("the first handful of those items":
        # https://docs.stripe.com/api/invoice-line-item/retrieve).
        invoice["lines"] = {
            "object": "list",
            "data": lines[:EMBEDDED_LINES],
            "has_more": len(lines) > EMBEDDED_LINES,
            "total_count": len(lines),
            "url": f"/v1/invoices/{invoice['id']}/lines",
        }

    def _require_status(
        self, invoice: dict[str, Any], allowed: tuple[str, ...], action: str
    ) -> None:
        if invoice["status"] not in allowed:
            raise transition_error(
                f"You can only {action} an invoice with status {' or '.join(allowed)}; "
                f"invoice {invoice['id']} is {invoice['status']}."
            )

    def delete_invoice(self, invoice_id: str) -> dict[str, Any]:
        invoice = self.get("invoice", invoice_id)
        self._require_status(invoice, ("draft",), "delete")
        for item in self.objects["invoiceitem"].values():
            if item["invoice"] == invoice_id:
                item["invoice"] = None  # back to pending, as Stripe does
        del self.objects["invoice"][invoice_id]
        self._auto_drafts.discard(invoice_id)
        self.emit("invoice.deleted", invoice)
        return {"id": invoice_id, "object": "invoice", "deleted": True}

    def finalize_invoice(self, invoice_id: str, auto_advance: bool | None = None) -> dict[str, Any]:
        invoice = self.get("invoice", invoice_id)
        self._require_status(invoice, ("draft",), "finalize")
        customer = self.objects["customer"].get(invoice["customer"])
        now = self.now()
        self._recompute(invoice)
        if customer is not None:
            sequence = customer["next_invoice_sequence"]
            customer["next_invoice_sequence"] = sequence + 1
            invoice["number"] = f"{customer['invoice_prefix']}-{sequence:04d}"
        else:
            invoice["number"] = f"DELETED-{self._counter:04d}"
        token = "".join(self._random.choices(_ALPHABET, k=40))
        invoice["hosted_invoice_url"] = f"https://invoice.stripe.com/i/acct_sandbox/test_{token}"
        invoice["invoice_pdf"] = f"https://pay.stripe.com/invoice/acct_sandbox/test_{token}/pdf"
        invoice["status"] = "open"
        self._auto_drafts.discard(invoice_id)
        invoice["effective_at"] = now
        invoice["status_transitions"]["finalized_at"] = now
        if auto_advance is not None:
            invoice["auto_advance"] = auto_advance
        if invoice["collection_method"] == "send_invoice" and invoice["due_date"] is None:
            invoice["due_date"] = now + 86400 * (invoice["days_until_due"] or 0)
        self.emit("invoice.finalized", invoice)
        if invoice["amount_due"] == 0:
            self._mark_paid(invoice, now)
        elif invoice["collection_method"] == "charge_automatically":
            self._attempt(invoice, now)
        return invoice

    def pay_invoice(self, invoice_id: str, at: float | None = None) -> dict[str, Any]:
        """Business hook: the customer pays the open (or uncollectible) invoice in full.

        Clears a failure set by :meth:`fail_payment`; ``at`` backdates ``paid_at``.
        """
        invoice = self.get("invoice", invoice_id)
        self._require_status(invoice, ("open", "uncollectible"), "pay")
        self._failing.discard(invoice_id)
        self._attempt(invoice, self.now() if at is None else int(at))
        return invoice

    def attempt_payment(self, invoice_id: str, *, out_of_band: bool = False) -> dict[str, Any]:
        """``POST /v1/invoices/:id/pay``: charge the test card (402 while failing)."""
        invoice = self.get("invoice", invoice_id)
        self._require_status(invoice, ("open", "uncollectible"), "pay")
        if out_of_band:
            invoice["paid_out_of_band"] = True
            self._mark_paid(invoice, self.now())
            return invoice
        self._attempt(invoice, self.now())
        if invoice["status"] != "paid":
            raise StripeError(
                402,
                "Your card was declined.",
                type_="card_error",
                code="card_declined",
                cacheable=True,
            )
        return invoice

    def fail_payment(self, invoice_id: str) -> dict[str, Any]:
        """Business hook: a payment attempt on the open invoice fails (it stays open).

        The next ``POST /pay`` on it also fails, until :meth:`pay_invoice` is called.
        """
        invoice = self.get("invoice", invoice_id)
        self._require_status(invoice, ("open", "uncollectible"), "fail a payment of")
        self._failing.add(invoice_id)
        self._attempt(invoice, self.now())
        return invoice

    def mark_uncollectible(self, invoice_id: str) -> dict[str, Any]:
        """Business hook (and ``POST /mark_uncollectible``)."""
        invoice = self.get("invoice", invoice_id)
        self._require_status(invoice, ("open",), "mark as uncollectible")
        invoice["status"] = "uncollectible"
        invoice["status_transitions"]["marked_uncollectible_at"] = self.now()
        self.emit("invoice.marked_uncollectible", invoice)
        return invoice

    def void_invoice(self, invoice_id: str) -> dict[str, Any]:
        invoice = self.get("invoice", invoice_id)
        self._require_status(invoice, ("open", "uncollectible"), "void")
        invoice["status"] = "void"
        invoice["amount_remaining"] = 0
        invoice["status_transitions"]["voided_at"] = self.now()
        self.emit("invoice.voided", invoice)
        return invoice

    def send_invoice(self, invoice_id: str) -> dict[str, Any]:
        invoice = self.get("invoice", invoice_id)
        self._require_status(invoice, ("open",), "send")
        if invoice["collection_method"] != "send_invoice":
            raise transition_error("Only send_invoice invoices can be sent.")
        self.emit("invoice.sent", invoice)
        return invoice

    def open_invoices(self) -> list[dict[str, Any]]:
        """Business hook: every open invoice, oldest first."""
        return [
            invoice for invoice in self.objects["invoice"].values() if invoice["status"] == "open"
        ]

    def open_invoice_ids(self) -> list[str]:
        """Business hook (the scenario driver's name for :meth:`open_invoices`)."""
        return [invoice["id"] for invoice in self.open_invoices()]

    def _attempt(self, invoice: dict[str, Any], moment: int) -> None:
        invoice["attempt_count"] += 1
        invoice["attempted"] = True
        if invoice["id"] in self._failing:
            self.emit("invoice.payment_failed", invoice)
            subscription = self.objects["subscription"].get(invoice["subscription"] or "")
            if subscription is not None and subscription["status"] == "active":
                self.update("subscription", subscription["id"], {"status": "past_due"})
            return
        self._mark_paid(invoice, moment)

    def _mark_paid(self, invoice: dict[str, Any], moment: int) -> None:
        self._failing.discard(invoice["id"])
        invoice["status"] = "paid"
        invoice["paid"] = True
        invoice["amount_paid"] = invoice["amount_due"]
        invoice["amount_remaining"] = 0
        invoice["status_transitions"]["paid_at"] = moment
        if not invoice["paid_out_of_band"] and invoice["amount_due"] > 0:
            self.emit("invoice.payment_succeeded", invoice)
        self.emit("invoice.paid", invoice)
        subscription = self.objects["subscription"].get(invoice["subscription"] or "")
        if subscription is not None and subscription["status"] in ("incomplete", "past_due"):
            self.update("subscription", subscription["id"], {"status": "active"})

    # ----------------------------------------------------------------- subscriptions

    def create_subscription(self, fields: dict[str, Any]) -> dict[str, Any]:
        customer = self.get("customer", fields["customer"], "customer")
        prices = []
        for index, entry in enumerate(fields["items"]):
            price = self.get("price", entry["price"], f"items[{index}][price]")
            if price["recurring"] is None:
                raise invalid(
                    f"The price specified ({price['id']}) is not recurring.",
                    f"items[{index}][price]",
                )
            prices.append((price, entry.get("quantity", 1)))
        currencies = {price["currency"] for price, _ in prices}
        intervals = {
            (p["recurring"]["interval"], p["recurring"]["interval_count"]) for p, _ in prices
        }
        if len(currencies) > 1 or len(intervals) > 1:
            raise invalid("All prices on a subscription must share currency and interval.", "items")
        collection = fields.get("collection_method") or "charge_automatically"
        if collection == "send_invoice" and fields.get("days_until_due") is None:
            raise invalid(
                "Missing required param: days_until_due.", "days_until_due", "parameter_missing"
            )
        now = self.now()
        interval, count = intervals.pop()
        subscription = {
            "id": self.new_id("subscription"),
            "object": "subscription",
            "billing_cycle_anchor": now,
            "cancel_at": None,
            "cancel_at_period_end": False,
            "canceled_at": None,
            "collection_method": collection,
            "created": now,
            "currency": currencies.pop(),
            "current_period_end": add_interval(now, interval, count),
            "current_period_start": now,
            "customer": customer["id"],
            "days_until_due": fields.get("days_until_due"),
            "ended_at": None,
            "items": {},
            "latest_invoice": None,
            "livemode": False,
            "metadata": fields.get("metadata") or {},
            "start_date": now,
            "status": "incomplete" if collection == "charge_automatically" else "active",
        }
        subscription["items"] = {
            "object": "list",
            "data": [
                {
                    "id": self.new_id("subscription_item"),
                    "object": "subscription_item",
                    "created": now,
                    "metadata": {},
                    "price": copy.deepcopy(price),
                    "quantity": quantity,
                    "subscription": subscription["id"],
                }
                for price, quantity in prices
            ],
            "has_more": False,
            "total_count": len(prices),
            "url": f"/v1/subscription_items?subscription={subscription['id']}",
        }
        if customer["currency"] is None:
            customer["currency"] = subscription["currency"]
        self._add("subscription", subscription)
        end = subscription["current_period_end"]
        self._next_renewal = end if self._next_renewal is None else min(self._next_renewal, end)
        self.emit("customer.subscription.created", subscription)
        invoice = self._bill(subscription, "subscription_create")
        self.finalize_invoice(invoice["id"], auto_advance=True)
        return subscription

    def _bill(self, subscription: dict[str, Any], reason: str) -> dict[str, Any]:
        start, end = subscription["current_period_start"], subscription["current_period_end"]
        lines = [
            {
                "id": "il_" + item["id"][3:] + f"_{start}",
                "object": "line_item",
                "amount": item["price"]["unit_amount"] * item["quantity"],
                "currency": subscription["currency"],
                "description": f"{item['quantity']} {_TIMES} {item['price']['product']}",
                "discountable": True,
                "livemode": False,
                "metadata": {},
                "period": {"start": start, "end": end},
                "price": copy.deepcopy(item["price"]),
                "proration": False,
                "quantity": item["quantity"],
                "subscription": subscription["id"],
                "type": "subscription",
            }
            for item in subscription["items"]["data"]
        ]
        fields = {
            "customer": subscription["customer"],
            "collection_method": subscription["collection_method"],
            "days_until_due": subscription["days_until_due"],
            "currency": subscription["currency"],
            "auto_advance": True,
        }
        invoice = self.create_invoice(
            fields, subscription=subscription, lines=lines, billing_reason=reason
        )
        invoice["period_start"], invoice["period_end"] = start, end
        subscription["latest_invoice"] = invoice["id"]
        return invoice

    def _renew(self, subscription: dict[str, Any]) -> None:
        price = subscription["items"]["data"][0]["price"]["recurring"]
        start = subscription["current_period_end"]
        previous = {
            "current_period_start": subscription["current_period_start"],
            "current_period_end": start,
        }
        subscription["current_period_start"] = start
        subscription["current_period_end"] = add_interval(
            start, price["interval"], price["interval_count"]
        )
        self.emit("customer.subscription.updated", subscription, previous)
        self._bill(subscription, "subscription_cycle")

    def cancel_subscription(self, subscription_id: str) -> dict[str, Any]:
        subscription = self.get("subscription", subscription_id)
        if subscription["status"] == "canceled":
            raise transition_error(
                f"No such subscription: '{subscription_id}' is already canceled."
            )
        now = self.now()
        subscription.update(status="canceled", canceled_at=now, ended_at=now)
        self.emit("customer.subscription.deleted", subscription)
        return subscription

    # ----------------------------------------------------------------- listing

    def select(
        self, kind: str, keep: Callable[[dict[str, Any]], bool] | None = None
    ) -> list[dict[str, Any]]:
        """Objects of a kind, newest first (dicts keep creation order)."""
        pool = self.live_events() if kind == "event" else list(self.objects[kind].values())
        return [obj for obj in reversed(pool) if keep is None or keep(obj)]

    def searchable(self, obj: dict[str, Any]) -> bool:
        """Search is eventually consistent: objects younger than ``search_lag_s`` hide."""
        return obj["created"] + self.search_lag_s <= self._clock.now()


def add_interval(epoch: int, interval: str, count: int) -> int:
    moment = dt.datetime.fromtimestamp(epoch, tz=dt.UTC)
    if interval == "day":
        return int((moment + dt.timedelta(days=count)).timestamp())
    if interval == "week":
        return int((moment + dt.timedelta(weeks=count)).timestamp())
    months = count * (12 if interval == "year" else 1)
    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return int(moment.replace(year=year, month=month, day=day).timestamp())


def public(obj: dict[str, Any]) -> dict[str, Any]:
    """The object as the API shows it (sandbox-private ``_keys`` dropped)."""
    return {key: value for key, value in obj.items() if not key.startswith("_")}


def _encode_random(state: tuple) -> list:
    version, internal, gauss = state
    return [version, list(internal), gauss]


def _decode_random(data: list) -> tuple:
    version, internal, gauss = data
    return (version, tuple(internal), gauss)
