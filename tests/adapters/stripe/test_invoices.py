"""CreateInvoice and FinalizeInvoice: draft + items, exact amounts, idempotent replays."""

from __future__ import annotations

import pytest

from actors.errors import PermanentError
from actors.messages import FinalizeInvoice, InvoiceLine, InvoiceStatus, UpdateInvoiceStatus
from adapters.governor import Lane
from adapters.sandbox.faults import FaultConfig

from .conftest import Harness, build, create_invoice, upsert_customer, usd


async def customer_id(harness: Harness) -> str:
    result = await harness.adapter.execute(upsert_customer())
    return result.ids["customer"]


async def test_creates_a_draft_with_one_item_per_line_in_minor_units(harness: Harness) -> None:
    customer = await customer_id(harness)

    result = await harness.adapter.execute(create_invoice(customer))

    [invoice] = harness.objects("invoice")
    items = {item["metadata"]["pssync_id"]: item for item in harness.objects("invoiceitem")}
    assert result.created is True
    assert invoice["status"] == "draft"
    assert invoice["auto_advance"] is False
    assert invoice["collection_method"] == "send_invoice"
    assert invoice["due_date"] == 1_771_199_999  # 2026-02-15T23:59:59Z
    assert invoice["metadata"] == {
        "pssync_id": "INV-1",
        "pssync_source": "invoice:INV-1",
        "pssync_project": "P-1",
        "pssync_account": "A-1",
        "pssync_correlation": "corr-inv",
    }
    assert items["INV-1:L-1"]["amount"] == 1_250_000
    assert (items["INV-1:L-2"]["unit_amount"], items["INV-1:L-2"]["quantity"]) == (40_050, 3)
    assert (items["INV-1:L-3"]["amount"], items["INV-1:L-3"]["quantity"]) == (135_000, 1)
    assert items["INV-1:L-1"]["metadata"]["pssync_milestone"] == "M-1"
    assert {item["invoice"] for item in items.values()} == {invoice["id"]}
    assert invoice["total"] == 1_250_000 + 120_150 + 135_000
    assert result.ids["invoice"] == result.ids["INV-1"] == invoice["id"]
    assert result.ids["line:INV-1:L-2"] == items["INV-1:L-2"]["id"]
    assert result.details["status"] == "draft"
    assert result.details["total_minor_units"] == "1505150"
    assert harness.adapter.lane_for(create_invoice(customer)) is Lane.CRITICAL


async def test_every_post_carries_its_own_idempotency_key(harness: Harness) -> None:
    customer = await customer_id(harness)
    harness.recorder.sent.clear()

    await harness.adapter.execute(create_invoice(customer))

    keys = [post.headers["Idempotency-Key"] for post in harness.recorder.posts()]
    assert keys == [
        "run-7:create_invoice:invoice",
        "run-7:create_invoice:item:INV-1:L-1",
        "run-7:create_invoice:item:INV-1:L-2",
        "run-7:create_invoice:item:INV-1:L-3",
    ]
    assert all(s.headers["X-Correlation-ID"] == "corr-inv" for s in harness.recorder.sent)


async def test_executing_twice_leaves_one_invoice_and_reports_not_created(
    harness: Harness,
) -> None:
    customer = await customer_id(harness)
    first = await harness.adapter.execute(create_invoice(customer))
    posts = len(harness.recorder.posts())

    second = await harness.adapter.execute(create_invoice(customer))

    assert second.created is False
    assert second.ids == first.ids
    assert len(harness.recorder.posts()) == posts
    assert len(harness.objects("invoice")) == 1
    assert len(harness.objects("invoiceitem")) == 3
    assert await harness.duplicates() == []


async def test_replay_after_25_hours_creates_nothing_new(autojump_clock, harness: Harness) -> None:
    customer = await customer_id(harness)
    first = await harness.adapter.execute(create_invoice(customer))
    await harness.advance(25 * 3600)

    again = await harness.adapter.execute(create_invoice(customer))
    customer_again = await harness.adapter.execute(upsert_customer())

    assert again.created is False
    assert again.ids == first.ids
    assert customer_again.created is False
    assert len(harness.objects("invoice")) == 1
    assert len(harness.objects("invoiceitem")) == 3
    assert len(harness.objects("customer")) == 1
    assert await harness.duplicates() == []


async def test_a_rerun_after_a_partial_create_adds_only_the_missing_items(
    harness: Harness,
) -> None:
    customer = await customer_id(harness)
    command = create_invoice(customer)
    lines = command.invoice.lines
    # As if the run crashed before sending the second line's item.
    partial = create_invoice(customer, lines=(lines[0], lines[2]))
    await harness.adapter.execute(partial)
    harness.recorder.sent.clear()

    result = await harness.adapter.execute(command)

    assert result.created is True
    assert [p.headers["Idempotency-Key"] for p in harness.recorder.posts()] == [
        "run-7:create_invoice:item:INV-1:L-2"
    ]
    assert len(harness.objects("invoice")) == 1
    assert sorted(i["metadata"]["pssync_id"] for i in harness.objects("invoiceitem")) == [
        "INV-1:L-1",
        "INV-1:L-2",
        "INV-1:L-3",
    ]


async def test_an_item_that_disagrees_with_the_command_is_a_conflict(harness: Harness) -> None:
    customer = await customer_id(harness)
    await harness.adapter.execute(create_invoice(customer))
    line = create_invoice(customer).invoice.lines[0]
    changed = InvoiceLine(id=line.id, unit_price=usd("1.00"), amount=usd("1.00"))

    with pytest.raises(PermanentError, match="the command says 100 usd") as caught:
        await harness.adapter.execute(create_invoice(customer, "other", lines=(changed,)))

    assert caught.value.code == "conflict"


async def test_precision_loss_is_refused_before_anything_is_sent(harness: Harness) -> None:
    customer = await customer_id(harness)
    harness.recorder.sent.clear()
    line = InvoiceLine(id="L-9", unit_price=usd("10.505"), amount=usd("10.505"))

    with pytest.raises(PermanentError, match="lose precision") as caught:
        await harness.adapter.execute(create_invoice(customer, lines=(line,)))

    assert caught.value.code == "precision"
    assert caught.value.system == "billing"
    assert harness.recorder.sent == []


async def test_line_tax_is_refused_rather_than_dropped(harness: Harness) -> None:
    line = InvoiceLine(id="L-1", unit_price=usd("100"), amount=usd("100"), tax=usd("20"))

    with pytest.raises(PermanentError, match="tax"):
        await harness.adapter.execute(create_invoice("cus_x", lines=(line,)))


async def test_an_unknown_customer_is_a_permanent_404(harness: Harness) -> None:
    with pytest.raises(PermanentError) as caught:
        await harness.adapter.execute(create_invoice("cus_missing"))

    assert caught.value.status == 404
    assert caught.value.code == "resource_missing"
    assert harness.objects("invoice") == []


async def test_finalize_opens_numbers_and_is_idempotent(harness: Harness) -> None:
    customer = await customer_id(harness)
    created = await harness.adapter.execute(create_invoice(customer))
    stripe_id = created.ids["invoice"]
    finalize = FinalizeInvoice(idempotency_key="run-7:finalize", invoice_id=stripe_id)

    first = await harness.adapter.execute(finalize)
    again = await harness.adapter.execute(finalize)
    by_canonical_id = await harness.adapter.execute(
        FinalizeInvoice(idempotency_key="run-8:finalize", invoice_id="INV-1")
    )

    [invoice] = harness.objects("invoice")
    assert invoice["status"] == "open"
    assert first.created is True
    assert first.details["status"] == "open"
    assert first.details["number"] == invoice["number"] != ""
    assert first.details["hosted_invoice_url"].startswith("https://invoice.stripe.com/")
    assert again.created is False
    assert again.details == first.details
    assert by_canonical_id.ids["invoice"] == stripe_id
    assert by_canonical_id.created is False
    assert len([p for p in harness.recorder.posts() if p.path.endswith("/finalize")]) == 1


async def test_finalizing_a_paid_invoice_is_a_success_a_void_one_is_not(harness: Harness) -> None:
    customer = await customer_id(harness)
    first = (await harness.adapter.execute(create_invoice(customer))).ids["invoice"]
    second = (
        await harness.adapter.execute(create_invoice(customer, "k2", invoice_id="INV-2"))
    ).ids["invoice"]
    for invoice_id in (first, second):
        harness.state.finalize_invoice(invoice_id)
    harness.state.pay_invoice(first)
    harness.state.void_invoice(second)

    paid = await harness.adapter.execute(FinalizeInvoice(idempotency_key="f1", invoice_id=first))
    with pytest.raises(PermanentError, match="void"):
        await harness.adapter.execute(FinalizeInvoice(idempotency_key="f2", invoice_id=second))

    assert paid.created is False
    assert paid.details["status"] == "paid"


async def test_items_cannot_be_added_once_the_invoice_is_open(harness: Harness) -> None:
    customer = await customer_id(harness)
    result = await harness.adapter.execute(create_invoice(customer))
    [lost] = [
        i for i in harness.objects("invoiceitem") if i["metadata"]["pssync_id"].endswith("L-3")
    ]
    harness.state.delete_invoiceitem(lost["id"])
    harness.state.finalize_invoice(result.ids["invoice"])

    # Some of the command's lines are on it: the rest must not go elsewhere unseen.
    with pytest.raises(PermanentError, match="lacks 1 of the command's 3 items") as partly:
        await harness.adapter.execute(create_invoice(customer))
    assert partly.value.code == "invoice_partly_billed"


async def test_an_open_invoice_with_none_of_the_lines_takes_no_more(harness: Harness) -> None:
    customer = await customer_id(harness)
    result = await harness.adapter.execute(create_invoice(customer))
    for item in harness.objects("invoiceitem"):
        harness.state.delete_invoiceitem(item["id"])
    harness.state.finalize_invoice(result.ids["invoice"])
    before = len(harness.objects("invoiceitem"))

    with pytest.raises(PermanentError, match="it takes no more lines") as closed:
        await harness.adapter.execute(create_invoice(customer))

    # Nothing was added anywhere: the caller may bill these lines on another invoice.
    assert closed.value.code == "invoice_not_editable"
    assert len(harness.objects("invoiceitem")) == before


@pytest.mark.parametrize(
    "faults",
    [
        FaultConfig(error_rate=0.3, error_status=500, seed=5),
        FaultConfig(error_rate=0.3, error_status=503, seed=9),
        FaultConfig(burst_429_every=3, burst_429_length=2),
    ],
    ids=["500s", "503s", "429-bursts"],
)
async def test_faults_are_absorbed_without_duplicates(
    autojump_clock, clock, faults: FaultConfig
) -> None:
    sandbox, _, adapter = build(clock, max_attempts=12)
    sandbox.injectors["stripe"].configure(faults)
    results = []
    customer = (await adapter.execute(upsert_customer())).ids["customer"]
    for number in range(1, 6):
        command = create_invoice(customer, f"run-{number}", invoice_id=f"INV-{number}")
        results.append(await adapter.execute(command))
        results.append(await adapter.execute(command))
        finalize = FinalizeInvoice(idempotency_key=f"fin-{number}", invoice_id=f"INV-{number}")
        await adapter.execute(finalize)

    state = sandbox.vendors["stripe"].state
    stats = sandbox.injectors["stripe"].stats
    assert stats.errors + stats.throttled > 5
    assert state.counts()["customer"] == 1
    assert state.counts()["invoice"] == 5
    assert state.counts()["invoiceitem"] == 15
    assert state.duplicates() == []
    assert {invoice["status"] for invoice in state.objects["invoice"].values()} == {"open"}
    assert [r.created for r in results] == [True, False] * 5
    await adapter.aclose()


async def test_the_sandbox_rate_limit_is_respected_by_the_governor(autojump_clock, clock) -> None:
    # Stripe's test mode allows 25 requests/s; a governor at 20/s never meets its 429.
    sandbox, recorder, adapter = build(
        clock, sandbox_options={"rate_limit_per_s": 25}, rate_per_s=20
    )
    customer = (await adapter.execute(upsert_customer())).ids["customer"]
    for number in range(10):
        await adapter.execute(create_invoice(customer, f"r{number}", invoice_id=f"INV-{number}"))

    assert sandbox.vendors["stripe"].state.counts()["invoice"] == 10
    assert len(recorder.sent) > 25
    assert sandbox.injectors["stripe"].stats.throttled == 0
    await adapter.aclose()


async def test_void_and_write_off_are_idempotent_and_refuse_the_impossible(
    harness: Harness,
) -> None:
    customer = await customer_id(harness)
    ids = []
    for n in (1, 2, 3):
        ids.append(
            (
                await harness.adapter.execute(
                    create_invoice(customer, f"k{n}", invoice_id=f"INV-{n}")
                )
            ).ids["invoice"]
        )
    harness.state.finalize_invoice(ids[0])
    harness.state.finalize_invoice(ids[1])
    void = UpdateInvoiceStatus(idempotency_key="v1", invoice_id="INV-1", status=InvoiceStatus.VOID)
    write_off = UpdateInvoiceStatus(
        idempotency_key="u2", invoice_id=ids[1], status=InvoiceStatus.UNCOLLECTIBLE
    )

    first = await harness.adapter.execute(void)
    again = await harness.adapter.execute(void)
    written_off = await harness.adapter.execute(write_off)
    with pytest.raises(PermanentError, match="is draft"):
        await harness.adapter.execute(
            UpdateInvoiceStatus(idempotency_key="v3", invoice_id="INV-3", status=InvoiceStatus.VOID)
        )
    with pytest.raises(PermanentError, match="only void and uncollectible"):
        await harness.adapter.execute(
            UpdateInvoiceStatus(idempotency_key="p", invoice_id="INV-3", status=InvoiceStatus.PAID)
        )

    assert (first.created, first.details["status"]) == (True, "void")
    assert (again.created, again.details["status"]) == (False, "void")
    assert written_off.details["status"] == "uncollectible"
    assert harness.adapter.lane_for(void) is Lane.CRITICAL
    assert len([p for p in harness.recorder.posts() if p.path.endswith("/void")]) == 1


async def test_lines_without_item_metadata_are_matched_through_their_items(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Should Stripe not copy an item's metadata onto its invoice line, the item is read.
    lines_of = harness.state.invoice_lines
    monkeypatch.setattr(
        harness.state,
        "invoice_lines",
        lambda invoice: [{**line, "metadata": {}} for line in lines_of(invoice)],
    )
    customer = await customer_id(harness)
    first = await harness.adapter.execute(create_invoice(customer))
    harness.recorder.sent.clear()

    again = await harness.adapter.execute(create_invoice(customer))

    assert again.created is False
    assert again.ids == first.ids
    assert len(harness.objects("invoiceitem")) == 3
    reads = [s.path for s in harness.recorder.sent if s.path.startswith("/v1/invoiceitems/")]
    assert len(reads) == 3
