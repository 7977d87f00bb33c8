"""The ``/v1`` endpoints: parameters in, state calls out.

Each handler takes the request's :class:`~.params.Params` (plus path ids), reads every
parameter it knows — :meth:`~.params.Params.finish` then refuses the rest — and returns
the object (or list) to render. Lists and search share :class:`~.app.StripeApp`'s
paging helpers.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .errors import invalid, no_such
from .params import Params, merge_metadata

if TYPE_CHECKING:
    from .app import StripeApp

Route = tuple[str, re.Pattern[str], Callable[..., Any]]
_CURRENCY = re.compile(r"^[a-z]{3}$")


def _currency(params: Params, key: str = "currency", *, required: bool = False) -> str | None:
    value = params.str(key, required=required)
    if value is None:
        return None
    value = value.lower()
    if not _CURRENCY.match(value):
        raise invalid(f"Invalid currency: {value}", params.name(key))
    return value


def _address(params: Params) -> dict[str, Any] | None:
    child = params.child("address")
    if child is None:
        return None
    fields = ("city", "country", "line1", "line2", "postal_code", "state")
    address = {name: child.str(name) for name in fields}
    child.finish()
    return address


def _period(params: Params) -> dict[str, int] | None:
    child = params.child("period")
    if child is None:
        return None
    start = child.int("start", required=True)
    end = child.int("end", required=True)
    child.finish()
    assert start is not None
    assert end is not None
    if end < start:
        raise invalid("period[end] must not be before period[start].", "period[end]")
    return {"start": start, "end": end}


def build_routes(app: StripeApp) -> list[Route]:
    state = app.state
    table: list[tuple[str, str, Callable[..., Any]]] = []

    def route(method: str, path: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        def register(handler: Callable[..., Any]) -> Callable[..., Any]:
            table.append((method, path, handler))
            return handler

        return register

    # ------------------------------------------------------------- customers

    def customer_fields(p: Params) -> dict[str, Any]:
        fields: dict[str, Any] = {}
        for name in ("name", "email", "description", "phone"):
            if p.has(name):
                fields[name] = p.str(name) or None
        if p.has("address"):
            fields["address"] = _address(p)
        if p.has("preferred_locales"):
            fields["preferred_locales"] = p.list("preferred_locales")
        metadata = p.metadata()
        if metadata is not None:
            fields["metadata"] = metadata
        return fields

    @route("POST", "/v1/customers")
    def create_customer(p: Params) -> dict:
        fields = customer_fields(p)
        fields["metadata"] = merge_metadata({}, fields.get("metadata"))
        return state.create_customer(fields)

    @route("GET", "/v1/customers")
    def list_customers(p: Params) -> dict:
        email = p.str("email")
        return app.list_response(
            p, "customer", lambda c: email is None or (c["email"] or "").lower() == email.lower()
        )

    @route("GET", "/v1/customers/search")
    def search_customers(p: Params) -> dict:
        return app.search_response(p, "customer")

    @route("GET", r"/v1/customers/([^/]+)")
    def get_customer(p: Params, customer_id: str) -> dict:
        return state.get("customer", customer_id)

    @route("POST", r"/v1/customers/([^/]+)")
    def update_customer(p: Params, customer_id: str) -> dict:
        customer = state.get("customer", customer_id)
        fields = customer_fields(p)
        if "metadata" in fields:
            fields["metadata"] = merge_metadata(customer["metadata"], fields["metadata"])
        return state.update("customer", customer_id, fields)

    @route("DELETE", r"/v1/customers/([^/]+)")
    def delete_customer(p: Params, customer_id: str) -> dict:
        return state.delete_customer(customer_id)

    # ------------------------------------------------------------- products and prices

    @route("POST", "/v1/products")
    def create_product(p: Params) -> dict:
        fields = {
            "name": p.str("name", required=True),
            "id": p.str("id"),
            "description": p.str("description"),
            "unit_label": p.str("unit_label"),
            "metadata": merge_metadata({}, p.metadata()),
        }
        active = p.bool("active")
        fields["active"] = True if active is None else active
        return state.create_product(fields)

    @route("GET", "/v1/products")
    def list_products(p: Params) -> dict:
        active = p.bool("active")
        return app.list_response(p, "product", lambda o: active is None or o["active"] == active)

    @route("GET", "/v1/products/search")
    def search_products(p: Params) -> dict:
        return app.search_response(p, "product")

    @route("GET", r"/v1/products/([^/]+)")
    def get_product(p: Params, product_id: str) -> dict:
        return state.get("product", product_id)

    @route("POST", r"/v1/products/([^/]+)")
    def update_product(p: Params, product_id: str) -> dict:
        product = state.get("product", product_id)
        fields: dict[str, Any] = {}
        for name in ("name", "description", "unit_label"):
            if p.has(name):
                fields[name] = p.str(name, required=name == "name")
        if p.has("active"):
            fields["active"] = p.bool("active")
        if p.has("metadata"):
            fields["metadata"] = merge_metadata(product["metadata"], p.metadata())
        return state.update("product", product_id, fields)

    def price_fields(p: Params) -> dict[str, Any]:
        fields: dict[str, Any] = {}
        for name in ("nickname", "lookup_key"):
            if p.has(name):
                fields[name] = p.str(name) or None
        if p.has("active"):
            fields["active"] = p.bool("active")
        return fields

    @route("POST", "/v1/prices")
    def create_price(p: Params) -> dict:
        fields = price_fields(p)
        fields["product"] = p.str("product", required=True)
        fields["currency"] = _currency(p, required=True)
        fields["unit_amount"] = p.int("unit_amount", required=True, minimum=0)
        fields["metadata"] = merge_metadata({}, p.metadata())
        recurring = p.child("recurring")
        if recurring is not None:
            fields["recurring"] = {
                "interval": recurring.enum(
                    "interval", ("day", "week", "month", "year"), required=True
                ),
                "interval_count": recurring.int("interval_count", minimum=1, maximum=365) or 1,
            }
            recurring.raw("usage_type")
            recurring.finish()
        return state.create_price(fields)

    @route("GET", "/v1/prices")
    def list_prices(p: Params) -> dict:
        product, currency = p.str("product"), _currency(p)
        active, type_ = p.bool("active"), p.enum("type", ("one_time", "recurring"))
        return app.list_response(
            p,
            "price",
            lambda o: (
                (product is None or o["product"] == product)
                and (currency is None or o["currency"] == currency)
                and (active is None or o["active"] == active)
                and (type_ is None or o["type"] == type_)
            ),
        )

    @route("GET", "/v1/prices/search")
    def search_prices(p: Params) -> dict:
        return app.search_response(p, "price")

    @route("GET", r"/v1/prices/([^/]+)")
    def get_price(p: Params, price_id: str) -> dict:
        return state.get("price", price_id)

    @route("POST", r"/v1/prices/([^/]+)")
    def update_price(p: Params, price_id: str) -> dict:
        price = state.get("price", price_id)
        fields = price_fields(p)
        if p.has("metadata"):
            fields["metadata"] = merge_metadata(price["metadata"], p.metadata())
        return state.update("price", price_id, fields)

    # ------------------------------------------------------------- subscriptions

    @route("POST", "/v1/subscriptions")
    def create_subscription(p: Params) -> dict:
        items = p.list("items")
        if not items:
            raise invalid("Missing required param: items.", "items", "parameter_missing")
        entries = []
        for index, raw in enumerate(items):
            if not isinstance(raw, dict):
                raise invalid(f"Invalid object: items[{index}]", f"items[{index}]")
            item = Params(raw, f"items[{index}]")
            entries.append(
                {
                    "price": item.str("price", required=True),
                    "quantity": item.int("quantity", minimum=1) or 1,
                }
            )
            item.raw("metadata")
            item.finish()
        fields = {
            "customer": p.str("customer", required=True),
            "items": entries,
            "collection_method": p.enum(
                "collection_method", ("charge_automatically", "send_invoice")
            ),
            "days_until_due": p.int("days_until_due", minimum=0),
            "metadata": merge_metadata({}, p.metadata()),
        }
        p.enum(
            "payment_behavior",
            (
                "allow_incomplete",
                "default_incomplete",
                "error_if_incomplete",
                "pending_if_incomplete",
            ),
        )
        p.str("description")
        return state.create_subscription(fields)

    @route("GET", "/v1/subscriptions")
    def list_subscriptions(p: Params) -> dict:
        customer = p.str("customer")
        status = p.enum(
            "status",
            (
                "active",
                "all",
                "canceled",
                "ended",
                "incomplete",
                "incomplete_expired",
                "past_due",
                "paused",
                "trialing",
                "unpaid",
            ),
        )

        def keep(sub: dict) -> bool:
            if customer is not None and sub["customer"] != customer:
                return False
            if status is None:
                return sub["status"] != "canceled"
            if status == "all":
                return True
            if status == "ended":
                return sub["status"] in ("canceled", "incomplete_expired")
            return sub["status"] == status

        return app.list_response(p, "subscription", keep)

    @route("GET", "/v1/subscriptions/search")
    def search_subscriptions(p: Params) -> dict:
        return app.search_response(p, "subscription")

    @route("GET", r"/v1/subscriptions/([^/]+)")
    def get_subscription(p: Params, subscription_id: str) -> dict:
        return state.get("subscription", subscription_id)

    @route("POST", r"/v1/subscriptions/([^/]+)")
    def update_subscription(p: Params, subscription_id: str) -> dict:
        subscription = state.get("subscription", subscription_id)
        fields: dict[str, Any] = {}
        if p.has("metadata"):
            fields["metadata"] = merge_metadata(subscription["metadata"], p.metadata())
        if p.has("days_until_due"):
            fields["days_until_due"] = p.int("days_until_due", minimum=0)
        if p.has("cancel_at_period_end"):
            fields["cancel_at_period_end"] = p.bool("cancel_at_period_end")
        return state.update("subscription", subscription_id, fields)

    @route("DELETE", r"/v1/subscriptions/([^/]+)")
    def cancel_subscription(p: Params, subscription_id: str) -> dict:
        p.bool("invoice_now")
        p.bool("prorate")
        return state.cancel_subscription(subscription_id)

    # ------------------------------------------------------------- invoice items

    def item_amounts(p: Params) -> dict[str, Any]:
        fields: dict[str, Any] = {}
        for name in ("amount", "unit_amount"):
            if p.has(name):
                fields[name] = p.int(name)
        if p.has("quantity"):
            fields["quantity"] = p.int("quantity", minimum=0)
        if p.has("description"):
            fields["description"] = p.str("description") or None
        if p.has("period"):
            fields["period"] = _period(p)
        return fields

    @route("POST", "/v1/invoiceitems")
    def create_invoiceitem(p: Params) -> dict:
        fields = item_amounts(p)
        fields["customer"] = p.str("customer", required=True)
        fields["price"] = p.str("price")
        fields["currency"] = _currency(p)
        fields["invoice"] = p.str("invoice")
        fields["metadata"] = merge_metadata({}, p.metadata())
        p.bool("discountable")
        return state.create_invoiceitem(fields)

    @route("GET", "/v1/invoiceitems")
    def list_invoiceitems(p: Params) -> dict:
        customer, invoice, pending = p.str("customer"), p.str("invoice"), p.bool("pending")
        return app.list_response(
            p,
            "invoiceitem",
            lambda o: (
                (customer is None or o["customer"] == customer)
                and (invoice is None or o["invoice"] == invoice)
                and (pending is None or (o["invoice"] is None) == pending)
            ),
        )

    @route("GET", r"/v1/invoiceitems/([^/]+)")
    def get_invoiceitem(p: Params, item_id: str) -> dict:
        return state.get("invoiceitem", item_id)

    @route("POST", r"/v1/invoiceitems/([^/]+)")
    def update_invoiceitem(p: Params, item_id: str) -> dict:
        item = state.get("invoiceitem", item_id)
        fields = item_amounts(p)
        if p.has("metadata"):
            fields["metadata"] = merge_metadata(item["metadata"], p.metadata())
        return state.update_invoiceitem(item_id, fields)

    @route("DELETE", r"/v1/invoiceitems/([^/]+)")
    def delete_invoiceitem(p: Params, item_id: str) -> dict:
        return state.delete_invoiceitem(item_id)

    # ------------------------------------------------------------- invoices

    @route("POST", "/v1/invoices")
    def create_invoice(p: Params) -> dict:
        fields = {
            "customer": p.str("customer", required=True),
            "collection_method": p.enum(
                "collection_method", ("charge_automatically", "send_invoice")
            ),
            "days_until_due": p.int("days_until_due", minimum=0),
            "due_date": p.int("due_date"),
            "auto_advance": p.bool("auto_advance"),
            "description": p.str("description"),
            "footer": p.str("footer"),
            "currency": _currency(p),
            "pending_invoice_items_behavior": p.enum(
                "pending_invoice_items_behavior", ("exclude", "include")
            ),
            "metadata": merge_metadata({}, p.metadata()),
        }
        return state.create_invoice(fields)

    @route("GET", "/v1/invoices")
    def list_invoices(p: Params) -> dict:
        customer, subscription = p.str("customer"), p.str("subscription")
        status = p.enum("status", ("draft", "open", "paid", "uncollectible", "void"))
        collection = p.enum("collection_method", ("charge_automatically", "send_invoice"))
        return app.list_response(
            p,
            "invoice",
            lambda o: (
                (customer is None or o["customer"] == customer)
                and (subscription is None or o["subscription"] == subscription)
                and (status is None or o["status"] == status)
                and (collection is None or o["collection_method"] == collection)
            ),
        )

    @route("GET", "/v1/invoices/search")
    def search_invoices(p: Params) -> dict:
        return app.search_response(p, "invoice")

    @route("GET", r"/v1/invoices/([^/]+)")
    def get_invoice(p: Params, invoice_id: str) -> dict:
        return state.get("invoice", invoice_id)

    @route("GET", r"/v1/invoices/([^/]+)/lines")
    def invoice_lines(p: Params, invoice_id: str) -> dict:
        invoice = state.get("invoice", invoice_id)
        lines = state.invoice_lines(invoice)
        limit = p.int("limit", minimum=1, maximum=100) or 10
        after = p.str("starting_after")
        start = 0
        if after:
            ids = [line["id"] for line in lines]
            if after not in ids:
                raise no_such("line item", after, "starting_after")
            start = ids.index(after) + 1
        page = lines[start : start + limit]
        return {
            "object": "list",
            "data": page,
            "has_more": start + limit < len(lines),
            "url": f"/v1/invoices/{invoice_id}/lines",
        }

    @route("POST", r"/v1/invoices/([^/]+)")
    def update_invoice(p: Params, invoice_id: str) -> dict:
        invoice = state.get("invoice", invoice_id)
        fields: dict[str, Any] = {}
        if p.has("metadata"):
            fields["metadata"] = merge_metadata(invoice["metadata"], p.metadata())
        for name in ("description", "footer"):
            if p.has(name):
                fields[name] = p.str(name) or None
        draft_only: dict[str, Any] = {}
        if p.has("auto_advance"):
            draft_only["auto_advance"] = p.bool("auto_advance")
        if p.has("days_until_due"):
            draft_only["days_until_due"] = p.int("days_until_due", minimum=0)
        if p.has("due_date"):
            draft_only["due_date"] = p.int("due_date")
        if p.has("collection_method"):
            draft_only["collection_method"] = p.enum(
                "collection_method", ("charge_automatically", "send_invoice")
            )
        if draft_only and invoice["status"] != "draft":
            name = next(iter(draft_only))
            raise invalid(
                f"Finalized invoices can't be updated in this way ({name}).",
                name,
                "invoice_not_editable",
            )
        return state.update("invoice", invoice_id, {**fields, **draft_only})

    @route("DELETE", r"/v1/invoices/([^/]+)")
    def delete_invoice(p: Params, invoice_id: str) -> dict:
        return state.delete_invoice(invoice_id)

    @route("POST", r"/v1/invoices/([^/]+)/finalize")
    def finalize_invoice(p: Params, invoice_id: str) -> dict:
        return state.finalize_invoice(invoice_id, p.bool("auto_advance"))

    @route("POST", r"/v1/invoices/([^/]+)/pay")
    def pay_invoice(p: Params, invoice_id: str) -> dict:
        out_of_band = bool(p.bool("paid_out_of_band"))
        p.bool("forgive")
        p.bool("off_session")
        p.str("payment_method")
        return state.attempt_payment(invoice_id, out_of_band=out_of_band)

    @route("POST", r"/v1/invoices/([^/]+)/void")
    def void_invoice(p: Params, invoice_id: str) -> dict:
        return state.void_invoice(invoice_id)

    @route("POST", r"/v1/invoices/([^/]+)/mark_uncollectible")
    def mark_uncollectible(p: Params, invoice_id: str) -> dict:
        return state.mark_uncollectible(invoice_id)

    @route("POST", r"/v1/invoices/([^/]+)/send")
    def send_invoice(p: Params, invoice_id: str) -> dict:
        return state.send_invoice(invoice_id)

    # ------------------------------------------------------------- events

    @route("GET", "/v1/events")
    def list_events(p: Params) -> dict:
        single = p.str("type")
        many = p.list("types")
        p.bool("delivery_success")
        if single is not None and many is not None:
            raise invalid("You may only specify one of these parameters: type, types.", "types")
        if many is not None and len(many) > 20:
            raise invalid("You can only specify up to 20 event types.", "types")
        patterns = [single] if single is not None else many
        regexes = None
        if patterns is not None:
            regexes = [
                re.compile("^" + ".*".join(re.escape(part) for part in str(pat).split("*")) + "$")
                for pat in patterns
            ]
        return app.list_response(
            p, "event", lambda e: regexes is None or any(r.match(e["type"]) for r in regexes)
        )

    @route("GET", r"/v1/events/([^/]+)")
    def get_event(p: Params, event_id: str) -> dict:
        events = {event["id"]: event for event in state.live_events()}
        if event_id not in events:
            raise no_such("event", event_id)
        return events[event_id]

    return [(method, re.compile(path), handler) for method, path, handler in table]
