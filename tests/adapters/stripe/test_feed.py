"""The invoice_events feed: oldest to newest, every event once, canonical values right."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from actors.errors import PayloadError, PermanentError
from actors.messages import (
    FinalizeInvoice,
    InvoiceIssued,
    InvoiceLine,
    InvoiceStatus,
    InvoiceStatusChanged,
    Money,
    PaymentReceived,
    envelope_id,
)
from adapters.base import ChangeFeed
from adapters.governor import Lane
from adapters.sandbox.faults import FaultConfig
from adapters.stripe import StripeOptions

from .conftest import START, Harness, build, create_invoice, upsert_customer, usd
from .test_billing import subscription

FOLLOWED = {"invoice.finalized", "invoice.paid", "invoice.voided", "invoice.marked_uncollectible"}


def feed_of(adapter) -> ChangeFeed:
    [feed] = adapter.feeds()
    assert isinstance(feed, ChangeFeed)
    assert (feed.name, feed.workflow) == ("invoice_events", "invoice_feedback")
    return feed


async def invoices(adapter, state, count: int) -> list[str]:
    customer = (await adapter.execute(upsert_customer())).ids["customer"]
    ids = []
    for n in range(1, count + 1):
        created = await adapter.execute(create_invoice(customer, f"k{n}", invoice_id=f"INV-{n}"))
        await adapter.execute(FinalizeInvoice(idempotency_key=f"f{n}", invoice_id=f"INV-{n}"))
        ids.append(created.ids["invoice"])
    return ids


async def drain(
    feed: ChangeFeed, watermark: str | None, limit: int
) -> tuple[list, str | None, int]:
    envelopes, polls = [], 0
    while True:
        page = await feed.poll(watermark, limit=limit)
        polls += 1
        envelopes += page.envelopes
        watermark = page.watermark
        if not page.more:
            return envelopes, watermark, polls


async def test_pages_deliver_every_event_once_oldest_first(clock) -> None:
    sandbox, _, adapter = build(clock, options=StripeOptions(start_epoch_s=int(START)))
    state = sandbox.vendors["stripe"].state
    ids = await invoices(adapter, state, 7)
    for invoice_id in ids[:3]:
        state.pay_invoice(invoice_id)
    state.void_invoice(ids[3])
    state.mark_uncollectible(ids[4])
    feed = feed_of(adapter)

    envelopes, watermark, polls = await drain(feed, None, limit=5)
    again, _, _ = await drain(feed, watermark, limit=5)

    expected = [e["id"] for e in state.live_events() if e["type"] in FOLLOWED]
    assert len(expected) == 12
    assert polls == 3
    # Envelopes of one event sit together, events in Stripe's creation order.
    event_order = []
    for envelope in envelopes:
        stripe_event = next(e for e in state.live_events() if _envelope_of(envelope, e))
        if not event_order or event_order[-1] != stripe_event["id"]:
            event_order.append(stripe_event["id"])
    assert event_order == expected
    assert len(envelopes) == 7 * 2 + 3 * 2 + 1 + 1
    assert len({envelope.id for envelope in envelopes}) == len(envelopes)
    assert again == []
    assert watermark is not None
    assert watermark.startswith(expected[-1] + "@")
    await adapter.aclose()


def _envelope_of(envelope, event: dict) -> bool:
    return envelope.id == envelope_id(
        source="billing",
        event_type=envelope.type,
        object_id=event["data"]["object"]["id"],
        version=event["id"],
    )


async def test_events_arriving_between_polls_follow_without_gaps(clock) -> None:
    sandbox, _, adapter = build(clock, options=StripeOptions(start_epoch_s=int(START)))
    state = sandbox.vendors["stripe"].state
    ids = await invoices(adapter, state, 2)
    feed = feed_of(adapter)
    first, watermark, _ = await drain(feed, None, limit=100)

    state.pay_invoice(ids[1])
    state.pay_invoice(ids[0])
    second, _, _ = await drain(feed, watermark, limit=1)

    assert [e.type for e in first] == ["invoice.issued", "invoice.status_changed"] * 2
    paid = [e.body.payment.invoice_id for e in second if isinstance(e.body, PaymentReceived)]
    assert paid == ["INV-2", "INV-1"]
    await adapter.aclose()


async def test_repolling_a_watermark_gives_the_same_envelope_ids(harness: Harness) -> None:
    await invoices(harness.adapter, harness.state, 2)
    feed = feed_of(harness.adapter)
    start = await feed.poll(None, limit=10)  # no start configured: begins after the newest
    harness.state.pay_invoice(harness.objects("invoice")[0]["id"])

    first = await feed.poll(start.watermark, limit=10)
    second = await feed.poll(start.watermark, limit=10)

    assert start.envelopes == ()
    assert [e.id for e in first.envelopes] == [e.id for e in second.envelopes]
    assert [e.type for e in first.envelopes] == ["invoice.status_changed", "payment.received"]


async def test_a_fresh_account_starts_by_time_and_misses_nothing(autojump_clock, clock) -> None:
    sandbox, _, adapter = build(clock)
    feed = feed_of(adapter)
    start = await feed.poll(None, limit=10)
    await invoices(adapter, sandbox.vendors["stripe"].state, 1)

    page = await feed.poll(start.watermark, limit=10)

    assert start.envelopes == ()
    assert start.watermark is not None
    assert start.watermark.startswith("@")
    assert [e.type for e in page.envelopes] == ["invoice.issued", "invoice.status_changed"]
    await adapter.aclose()


async def test_canonical_values_of_issued_paid_and_status(clock) -> None:
    sandbox, _, adapter = build(clock, options=StripeOptions(start_epoch_s=int(START)))
    state = sandbox.vendors["stripe"].state
    [stripe_id] = await invoices(adapter, state, 1)
    state.pay_invoice(stripe_id)

    envelopes, _, _ = await drain(feed_of(adapter), None, limit=100)

    issued, opened, paid, payment = (e.body for e in envelopes)
    number = state.objects["invoice"][stripe_id]["number"]
    assert isinstance(issued, InvoiceIssued)
    invoice = issued.invoice
    assert (invoice.id, invoice.account_id, invoice.project_id) == ("INV-1", "A-1", "P-1")
    assert invoice.number == number
    assert invoice.status is InvoiceStatus.OPEN
    assert invoice.total == Money.of("15051.50", "USD")
    assert invoice.amount_due == Money.of("15051.50", "USD")
    assert invoice.issue_date == date(2026, 1, 1)
    assert invoice.due_date == date(2026, 2, 15)
    assert invoice.external_refs[0].id == stripe_id
    assert isinstance(opened, InvoiceStatusChanged)
    assert (opened.previous, opened.status) == (InvoiceStatus.DRAFT, InvoiceStatus.OPEN)
    assert isinstance(paid, InvoiceStatusChanged)
    assert paid.status is InvoiceStatus.PAID
    assert paid.amount_paid == Money.of("15051.50", "USD")
    assert isinstance(payment, PaymentReceived)
    assert payment.payment.amount == Money.of("15051.50", "USD")
    assert payment.payment.invoice_id == "INV-1"
    assert payment.payment.account_id == "A-1"
    assert payment.payment.received_on == date(2026, 1, 1)
    assert payment.payment.reference == number
    assert payment.payment.id == f"{stripe_id}:payment"
    envelope = envelopes[3]
    assert envelope.key == "invoice:INV-1"
    assert envelope.source == "billing"
    assert envelope.correlation_id == "corr-inv"
    assert envelope.occurred_at == datetime.fromtimestamp(START, UTC)
    await adapter.aclose()


async def test_invoices_stripe_made_itself_name_the_customers_account(clock) -> None:
    _, _, adapter = build(clock, options=StripeOptions(start_epoch_s=int(START)))
    customer = (await adapter.execute(upsert_customer())).ids["customer"]
    await adapter.execute(subscription(customer))

    envelopes, _, _ = await drain(feed_of(adapter), None, limit=100)

    [issued] = [e.body for e in envelopes if isinstance(e.body, InvoiceIssued)]
    assert issued.invoice.account_id == "A-1"
    assert issued.invoice.id.startswith("in_")  # no canonical id: Stripe's own
    assert issued.invoice.total == Money.of("5000.00", "USD")
    # The subscription item's line, under Stripe's line id (pssync made no item for it).
    [line] = issued.invoice.lines
    assert line.id.startswith("il_")
    assert line.amount == issued.invoice.total
    assert line.unit_price * line.quantity == line.amount
    await adapter.aclose()


async def test_a_watermark_past_the_30_day_retention_fails_loudly(autojump_clock, clock) -> None:
    sandbox, _, adapter = build(clock, options=StripeOptions(start_epoch_s=int(START)))
    await invoices(adapter, sandbox.vendors["stripe"].state, 1)
    page = await feed_of(adapter).poll(None, limit=10)
    clock.advance(31 * 86_400)

    with pytest.raises(PermanentError, match="30-day event retention") as caught:
        await feed_of(adapter).poll(page.watermark, limit=10)

    assert caught.value.code == "events_expired"
    await adapter.aclose()


async def test_quiet_polls_keep_the_watermark_inside_the_retention(autojump_clock, clock) -> None:
    sandbox, _, adapter = build(clock, options=StripeOptions(start_epoch_s=int(START)))
    await invoices(adapter, sandbox.vendors["stripe"].state, 1)
    feed = feed_of(adapter)
    watermark = (await feed.poll(None, limit=10)).watermark
    for _ in range(40):  # a quiet account polled daily for 40 days
        clock.advance(86_400)
        watermark = (await feed.poll(watermark, limit=10)).watermark

    page = await feed.poll(watermark, limit=10)

    assert page.envelopes == ()
    await adapter.aclose()


async def test_a_foreign_watermark_is_a_payload_error(harness: Harness) -> None:
    with pytest.raises(PayloadError, match="not a Stripe events watermark"):
        await feed_of(harness.adapter).poll("2026-01-01T00:00:00Z", limit=10)


async def test_faults_while_paging_lose_and_repeat_nothing(autojump_clock, clock) -> None:
    sandbox, _, adapter = build(
        clock, options=StripeOptions(start_epoch_s=int(START)), max_attempts=12
    )
    state = sandbox.vendors["stripe"].state
    for invoice_id in await invoices(adapter, state, 6):
        state.pay_invoice(invoice_id)
    clean, _, _ = await drain(feed_of(adapter), None, limit=4)
    sandbox.injectors["stripe"].configure(
        FaultConfig(burst_429_every=2, burst_429_length=2, error_rate=0.3, seed=4)
    )

    faulty, _, _ = await drain(feed_of(adapter), None, limit=4)

    assert sandbox.injectors["stripe"].stats.throttled > 0
    assert sandbox.injectors["stripe"].stats.errors > 0
    assert [e.id for e in faulty] == [e.id for e in clean]
    assert len(clean) == 6 * 2 + 6 * 2
    await adapter.aclose()


async def issued_of(adapter) -> list[InvoiceIssued]:
    envelopes, _, _ = await drain(feed_of(adapter), None, limit=100)
    return [e.body for e in envelopes if isinstance(e.body, InvoiceIssued)]


async def test_an_issued_invoice_carries_its_lines_as_pssync_sent_them(clock) -> None:
    sandbox, recorder, adapter = build(clock, options=StripeOptions(start_epoch_s=int(START)))
    await invoices(adapter, sandbox.vendors["stripe"].state, 1)
    recorder.sent.clear()

    [issued] = await issued_of(adapter)

    invoice = issued.invoice
    assert [
        (line.id, line.description, line.quantity, line.unit_price, line.amount, line.project_id)
        for line in invoice.lines
    ] == [
        ("L-1", "Milestone 1: discovery", 1, usd("12500.00"), usd("12500.00"), "P-1"),
        ("L-2", "Workshops", 3, usd("400.50"), usd("1201.50"), "P-1"),
        # Stripe holds 7.5 h only as an amount: the quantity comes back from the metadata.
        ("L-3", "Senior consultant, 7.5 h", Decimal("7.5"), usd("180.00"), usd("1350.00"), "P-1"),
    ]
    assert invoice.lines_total() == invoice.total
    # Every line was in the event: no extra reads.
    assert not [s for s in recorder.sent if s.path.endswith("/lines")]
    await adapter.aclose()


async def test_lines_past_those_the_event_embeds_are_read_from_the_lines_list(clock) -> None:
    sandbox, recorder, adapter = build(clock, options=StripeOptions(start_epoch_s=int(START)))
    state = sandbox.vendors["stripe"].state
    customer = (await adapter.execute(upsert_customer())).ids["customer"]
    many = tuple(
        InvoiceLine(
            id=f"L-{n}",
            description=f"Line {n}",
            quantity=Decimal(n),
            unit_price=Money.of("10.00", "USD"),
            amount=Money.of(10 * n, "USD"),
        )
        for n in range(1, 26)
    )
    created = await adapter.execute(create_invoice(customer, "k1", lines=many))
    await adapter.execute(FinalizeInvoice(idempotency_key="f1", invoice_id="INV-1"))
    stripe_id = created.ids["invoice"]
    [finalized] = [e for e in state.events.values() if e["type"] == "invoice.finalized"]
    embedded = finalized["data"]["object"]["lines"]
    assert (len(embedded["data"]), embedded["has_more"]) == (10, True)  # as Stripe does
    feed = feed_of(adapter)
    lanes = []
    get = feed.api.get

    async def spy(path, kind, *, lane, **kwargs):
        lanes.append((path, lane))
        return await get(path, kind, lane=lane, **kwargs)

    feed.api.get = spy  # type: ignore[method-assign]
    recorder.sent.clear()

    [issued] = await issued_of(adapter)

    assert [line.id for line in issued.invoice.lines] == [f"L-{n}" for n in range(1, 26)]
    assert [line.quantity for line in issued.invoice.lines] == list(range(1, 26))
    assert issued.invoice.lines_total() == issued.invoice.total == Money.of("3250.00", "USD")
    reads = [p for p, _ in lanes if p == f"/v1/invoices/{stripe_id}/lines"]
    assert reads
    assert {lane for _, lane in lanes} == {Lane.ANALYTICS}  # the feed's own lane
    await adapter.aclose()


@pytest.mark.parametrize(
    ("extra", "change"),
    [
        ({"tax": 1505, "total_tax_amounts": [{"amount": 1505}]}, 1505),
        ({"total_discount_amounts": [{"amount": 1000}]}, -1000),
    ],
    ids=["taxed", "discounted"],
)
async def test_an_invoice_whose_lines_do_not_make_its_total_has_none(
    clock, monkeypatch: pytest.MonkeyPatch, extra: dict, change: int
) -> None:
    sandbox, _, adapter = build(clock, options=StripeOptions(start_epoch_s=int(START)))
    state = sandbox.vendors["stripe"].state
    recompute = state._recompute

    def with_extra(invoice: dict) -> None:
        # Tax on top of the lines, or a discount off them, as Stripe computes them.
        recompute(invoice)
        invoice.update(extra)
        invoice["total"] += change
        invoice["amount_due"] += change

    monkeypatch.setattr(state, "_recompute", with_extra)
    await invoices(adapter, state, 1)

    [issued] = await issued_of(adapter)

    # invoice_feedback then posts one line for the total, never lines that disagree with it.
    assert issued.invoice.lines == ()
    assert issued.invoice.total == Money.from_minor_units(1_505_150 + change, "USD")
    await adapter.aclose()
