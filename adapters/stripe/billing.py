"""Billing plans: ``UpsertBillingSchedule`` and ``CreateSubscription``.

Milestone schedules. Stripe has no object for "invoice this fee when the milestone is
approved": a subscription schedule bills by date, a pending invoice item would be swept
into the next subscription invoice. The honest representation is therefore nothing in
Stripe until a milestone completes (then ``CreateInvoice`` bills it); the command checks
what the later invoices will need — the customer exists, every amount is in the
schedule's currency and converts to minor units exactly — so a bad plan fails at
activation, not months later at the first milestone. It writes nothing, so it is
idempotent by construction.

Recurring lines become a product, a recurring price and a subscription. The product id
is derived from the project and line (Stripe accepts caller-chosen product ids), so it is
looked up with a plain, strongly consistent GET; the price is found among the product's
prices by metadata, the subscription among the customer's subscriptions. The subscription
starts when it is created: a later ``start_date`` or an ``end_date`` is recorded in
metadata, not scheduled (that needs subscription schedules, not built yet).
"""

from __future__ import annotations

import hashlib

from actors.errors import PermanentError
from actors.messages import CreateSubscription, UpsertBillingSchedule

from ..base import CommandResult
from ..governor import Lane
from .api import StripeApi
from .money import minor_units, stripe_currency, whole_quantity
from .wire import Customer, Price, Product, Subscription

__all__ = ["create_subscription", "upsert_billing_schedule"]

_INTERVALS = {"month": ("month", 1), "quarter": ("month", 3), "year": ("year", 1)}


async def upsert_billing_schedule(api: StripeApi, command: UpsertBillingSchedule) -> CommandResult:
    """Validate a milestone schedule against Stripe; nothing is stored there (docstring)."""
    schedule = command.schedule
    system = api.system
    total = 0
    for item in schedule.items:
        if item.amount.currency != schedule.currency:
            raise PermanentError(
                f"billing schedule {schedule.id} item {item.id} is in {item.amount.currency}, "
                f"the schedule in {schedule.currency}",
                system=system,
                code="currency",
            )
        if item.status != "cancelled":
            total += minor_units(item.amount, system=system, what=f"schedule item {item.id}")
    customer = await api.get_or_none(
        f"/v1/customers/{command.customer_id}",
        Customer,
        lane=Lane.MASTER_DATA,
        correlation_id=command.correlation_id,
    )
    if customer is None:
        raise PermanentError(
            f"billing schedule {schedule.id}: no Stripe customer {command.customer_id}",
            system=system,
            code="resource_missing",
        )
    return CommandResult(
        system=system,
        ids={"customer": customer.id},
        created=False,
        details={
            "representation": "none until a milestone is invoiced",
            "items": str(len(schedule.items)),
            "total_minor_units": str(total),
            "currency": schedule.currency,
        },
    )


async def create_subscription(api: StripeApi, command: CreateSubscription) -> CommandResult:
    """Product, recurring price and subscription for one recurring contract line."""
    options, system, line = api.options, api.system, command.line
    correlation, key = command.correlation_id, command.idempotency_key
    canonical_id = f"{command.project_id}:{line.id}"
    amount = minor_units(line.amount, system=system, what=f"subscription line {line.id}")
    quantity = whole_quantity(line.quantity, system=system, what=f"subscription line {line.id}")
    interval, per = _INTERVALS[line.interval]
    interval_count = per * line.interval_count
    metadata = {
        options.id_key: canonical_id,
        options.source_key: f"contract_line:{canonical_id}",
        options.project_key: command.project_id,
        options.correlation_key: correlation,
        "pssync_start_date": line.start_date.isoformat(),
        "pssync_end_date": line.end_date.isoformat() if line.end_date else "",
    }
    metadata = {name: value for name, value in metadata.items() if value}
    created = False

    product_id = "pssync_" + hashlib.sha256(canonical_id.encode()).hexdigest()[:32]
    product = await api.get_or_none(
        f"/v1/products/{product_id}", Product, lane=Lane.CRITICAL, correlation_id=correlation
    )
    if product is None:
        product = await api.post(
            "/v1/products",
            Product,
            {
                "id": product_id,
                "name": line.description or f"Subscription {line.id}",
                "metadata": metadata,
            },
            lane=Lane.CRITICAL,
            idempotency_key=f"{key}:product",
            correlation_id=correlation,
        )
        created = True

    currency = stripe_currency(line.amount.currency)
    price = None
    async for candidate in api.list_all(
        "/v1/prices",
        Price,
        lane=Lane.CRITICAL,
        correlation_id=correlation,
        params={"product": product.id, "currency": currency, "type": "recurring"},
    ):
        same = (
            candidate.metadata.get(options.id_key) == canonical_id
            and candidate.unit_amount == amount
            and candidate.recurring is not None
            and (candidate.recurring.interval, candidate.recurring.interval_count)
            == (interval, interval_count)
        )
        if same and candidate.active:
            price = candidate
    if price is None:
        price = await api.post(
            "/v1/prices",
            Price,
            {
                "product": product.id,
                "currency": currency,
                "unit_amount": amount,
                "recurring": {"interval": interval, "interval_count": interval_count},
                "metadata": metadata,
            },
            lane=Lane.CRITICAL,
            idempotency_key=f"{key}:price",
            correlation_id=correlation,
        )
        created = True

    subscription = None
    async for candidate in api.list_all(
        "/v1/subscriptions",
        Subscription,
        lane=Lane.CRITICAL,
        correlation_id=correlation,
        params={"customer": command.customer_id, "status": "all"},
    ):
        if candidate.metadata.get(options.id_key) == canonical_id:
            subscription = candidate  # newest first: keep the oldest
    if subscription is None:
        body: dict[str, object] = {
            "customer": command.customer_id,
            "items": [{"price": price.id, "quantity": quantity}],
            "collection_method": options.collection_method,
            "metadata": metadata,
        }
        if options.collection_method == "send_invoice":
            body["days_until_due"] = options.days_until_due
        subscription = await api.post(
            "/v1/subscriptions",
            Subscription,
            body,
            lane=Lane.CRITICAL,
            idempotency_key=f"{key}:subscription",
            correlation_id=correlation,
        )
        created = True
    return CommandResult(
        system=system,
        ids={
            "customer": command.customer_id,
            "product": product.id,
            "price": price.id,
            "subscription": subscription.id,
            line.id: subscription.id,
        },
        created=created,
        details={
            "status": subscription.status,
            "latest_invoice": subscription.latest_invoice or "",
        },
    )
