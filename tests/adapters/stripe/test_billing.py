"""UpsertBillingSchedule (validated, nothing stored) and CreateSubscription."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from actors.errors import PayloadError, PermanentError
from actors.messages import (
    BillingSchedule,
    BillingScheduleItem,
    CreateSubscription,
    SubscriptionLine,
    UpsertBillingSchedule,
)
from adapters.governor import Lane
from adapters.sandbox.faults import FaultConfig

from .conftest import Harness, build, create_invoice, upsert_customer, usd


def subscription(customer: str, key: str = "run-3:subscription", **fields) -> CreateSubscription:
    line = SubscriptionLine(
        id="CL-9",
        description="Managed service retainer",
        amount=fields.pop("amount", usd("2500.00")),
        interval=fields.pop("interval", "quarter"),
        quantity=fields.pop("quantity", Decimal(2)),
        start_date=date(2026, 1, 1),
    )
    return CreateSubscription(
        idempotency_key=key,
        correlation_id="corr-sub",
        customer_id=customer,
        project_id="P-1",
        line=line,
    )


def schedule(*amounts: str) -> BillingSchedule:
    return BillingSchedule(
        id="BS-1",
        project_id="P-1",
        account_id="A-1",
        currency="USD",
        items=tuple(
            BillingScheduleItem(id=f"M-{n}", amount=usd(amount), milestone_id=f"M-{n}")
            for n, amount in enumerate(amounts, 1)
        ),
    )


async def test_subscription_creates_product_recurring_price_and_subscription(
    harness: Harness,
) -> None:
    customer = (await harness.adapter.execute(upsert_customer())).ids["customer"]

    result = await harness.adapter.execute(subscription(customer))

    [product] = harness.objects("product")
    [price] = harness.objects("price")
    [sub] = harness.objects("subscription")
    assert result.created is True
    assert product["id"].startswith("pssync_")
    assert product["name"] == "Managed service retainer"
    assert price["unit_amount"] == 250_000
    assert price["currency"] == "usd"
    assert price["recurring"]["interval"] == "month"
    assert price["recurring"]["interval_count"] == 3
    assert sub["customer"] == customer
    assert sub["items"]["data"][0]["quantity"] == 2
    assert sub["collection_method"] == "send_invoice"
    assert sub["metadata"]["pssync_id"] == "P-1:CL-9"
    assert sub["metadata"]["pssync_project"] == "P-1"
    assert sub["metadata"]["pssync_start_date"] == "2026-01-01"
    assert result.ids["subscription"] == result.ids["CL-9"] == sub["id"]
    assert result.details["status"] == "active"
    assert harness.adapter.lane_for(subscription(customer)) is Lane.CRITICAL


async def test_subscription_twice_and_after_25_hours_is_still_one(
    autojump_clock, harness: Harness
) -> None:
    customer = (await harness.adapter.execute(upsert_customer())).ids["customer"]
    first = await harness.adapter.execute(subscription(customer))
    second = await harness.adapter.execute(subscription(customer))
    await harness.advance(25 * 3600)
    third = await harness.adapter.execute(subscription(customer))

    assert (second.created, third.created) == (False, False)
    assert first.ids == second.ids == third.ids
    counts = harness.state.counts()
    assert (counts["product"], counts["price"], counts["subscription"]) == (1, 1, 1)
    assert await harness.duplicates() == []


async def test_subscription_survives_5xx_faults(autojump_clock, clock) -> None:
    sandbox, _, adapter = build(clock, max_attempts=12)
    customer = (await adapter.execute(upsert_customer())).ids["customer"]
    sandbox.injectors["stripe"].configure(FaultConfig(error_rate=0.4, error_status=502, seed=2))

    await adapter.execute(subscription(customer))
    await adapter.execute(subscription(customer))

    state = sandbox.vendors["stripe"].state
    assert sandbox.injectors["stripe"].stats.errors > 0
    assert (state.counts()["subscription"], state.counts()["price"]) == (1, 1)
    assert state.duplicates() == []
    await adapter.aclose()


async def test_fractional_quantity_is_refused(harness: Harness) -> None:
    with pytest.raises(PermanentError, match="whole numbers"):
        await harness.adapter.execute(subscription("cus_x", quantity=Decimal("1.5")))
    assert harness.recorder.sent == []


async def test_milestone_schedule_is_validated_and_stores_nothing(harness: Harness) -> None:
    customer = (await harness.adapter.execute(upsert_customer())).ids["customer"]
    before = harness.state.counts()
    command = UpsertBillingSchedule(
        idempotency_key="run-3:schedule",
        schedule=schedule("10000", "15000.50"),
        customer_id=customer,
    )

    first = await harness.adapter.execute(command)
    second = await harness.adapter.execute(command)

    assert first == second
    assert first.created is False
    assert first.details["total_minor_units"] == "2500050"
    assert harness.state.counts() == before
    assert harness.adapter.lane_for(command) is Lane.MASTER_DATA


async def test_milestone_schedule_with_unbillable_amount_or_customer_fails_early(
    harness: Harness,
) -> None:
    customer = (await harness.adapter.execute(upsert_customer())).ids["customer"]
    fractional = UpsertBillingSchedule(
        idempotency_key="k1", schedule=schedule("10.001"), customer_id=customer
    )
    unknown = UpsertBillingSchedule(
        idempotency_key="k2", schedule=schedule("10"), customer_id="cus_no"
    )

    with pytest.raises(PermanentError, match="lose precision"):
        await harness.adapter.execute(fractional)
    with pytest.raises(PermanentError, match="no Stripe customer cus_no"):
        await harness.adapter.execute(unknown)


async def test_a_truncated_answer_is_a_payload_error_and_the_retry_finds_the_write(
    harness: Harness,
) -> None:
    customer = (await harness.adapter.execute(upsert_customer())).ids["customer"]
    harness.recorder.truncate.add(("POST", "/v1/invoices"))

    with pytest.raises(PayloadError, match="stripe /v1/invoices"):
        await harness.adapter.execute(create_invoice(customer))
    assert len(harness.objects("invoice")) == 1  # the write happened, its answer was lost
    again = await harness.adapter.execute(create_invoice(customer))

    assert len(harness.objects("invoice")) == 1
    assert again.ids["invoice"] == harness.objects("invoice")[0]["id"]
    assert await harness.duplicates() == []
