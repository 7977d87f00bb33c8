"""Errors surface as the right AdapterError; lanes; concurrency with one idempotency key."""

from __future__ import annotations

import httpx
import pytest
import trio

from actors.errors import PayloadError, PermanentError, RetryableError, ThrottledError
from actors.messages import FinalizeInvoice
from adapters.base import TotalsQuery, VendorAdapter
from adapters.governor import Lane
from adapters.sandbox.faults import FaultConfig
from adapters.stripe import StripeOptions

from .conftest import Harness, build, create_invoice, upsert_customer
from .test_feed import feed_of
from .test_totals import JANUARY


async def test_the_adapter_is_a_vendor_adapter(harness: Harness) -> None:
    assert isinstance(harness.adapter, VendorAdapter)
    assert harness.adapter.system == "billing"


async def test_a_wrong_key_is_permanent(clock) -> None:
    _, _, adapter = build(clock)
    adapter.api.client.auth._token = "sk_test_wrong_key_123456"

    with pytest.raises(PermanentError) as caught:
        await adapter.execute(upsert_customer())

    assert caught.value.status == 401
    assert "sk_test_wrong_key_123456" not in str(caught.value)
    await adapter.aclose()


async def test_exhausted_5xx_is_retryable_and_exhausted_429_throttled(
    autojump_clock, clock
) -> None:
    sandbox, _, adapter = build(clock, max_attempts=3)
    injector = sandbox.injectors["stripe"]

    injector.configure(FaultConfig(error_rate=1.0, error_status=503))
    with pytest.raises(RetryableError) as failed:
        await adapter.execute(upsert_customer())
    injector.configure(FaultConfig(burst_429_every=1, burst_429_length=100))
    with pytest.raises(ThrottledError):
        await adapter.execute(upsert_customer())

    assert not isinstance(failed.value, ThrottledError)
    assert failed.value.status == 503
    assert sandbox.vendors["stripe"].state.counts()["customer"] == 0
    await adapter.aclose()


async def test_concurrent_runs_of_one_command_make_one_customer(autojump_clock, clock) -> None:
    # The first POST is held in flight; the second, same key, gets Stripe's 409 and retries
    # until it can be answered from the first one's stored result.
    async def hold(request) -> None:
        if request.method == "POST":
            await trio.sleep(2)

    sandbox, recorder, adapter = build(clock, sandbox_options={"request_hook": hold})
    results = []

    async def run() -> None:
        results.append(await adapter.execute(upsert_customer()))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(run)
        nursery.start_soon(run)

    state = sandbox.vendors["stripe"].state
    assert state.counts()["customer"] == 1
    assert results[0].ids == results[1].ids
    posts = [p for p in recorder.posts() if p.path == "/v1/customers"]
    assert len(posts) >= 3  # two first attempts and at least one retry after the 409
    await adapter.aclose()


async def test_requests_travel_in_the_right_lanes(harness: Harness) -> None:
    lanes: list[tuple[str, Lane]] = []
    governor = harness.adapter.api.client.governor
    original = governor.slot
    current = {"what": ""}

    def slot(lane: Lane):
        lanes.append((current["what"], lane))
        return original(lane)

    governor.slot = slot  # type: ignore[method-assign]
    current["what"] = "customer"
    customer = (await harness.adapter.execute(upsert_customer())).ids["customer"]
    current["what"] = "invoice"
    await harness.adapter.execute(create_invoice(customer))
    current["what"] = "finalize"
    await harness.adapter.execute(FinalizeInvoice(idempotency_key="f", invoice_id="INV-1"))
    current["what"] = "feed"
    await feed_of(harness.adapter).poll(None, limit=10)
    current["what"] = "totals"
    await harness.adapter.totals(TotalsQuery(project_id="P-1", **JANUARY))

    by_step: dict[str, set[Lane]] = {}
    for what, lane in lanes:
        by_step.setdefault(what, set()).add(lane)
    assert by_step == {
        "customer": {Lane.MASTER_DATA},
        "invoice": {Lane.CRITICAL},
        "finalize": {Lane.CRITICAL},
        "feed": {Lane.ANALYTICS},
        "totals": {Lane.ANALYTICS},
    }


async def test_a_truncated_events_page_is_a_payload_error(harness: Harness) -> None:
    harness.recorder.truncate.add(("GET", "/v1/events"))

    with pytest.raises(PayloadError, match="stripe /v1/events"):
        await feed_of(harness.adapter).poll(None, limit=10)


async def test_an_invoice_of_another_customer_is_a_conflict(harness: Harness) -> None:
    first = (await harness.adapter.execute(upsert_customer())).ids["customer"]
    other = (await harness.adapter.execute(upsert_customer("k2", account_id="A-2"))).ids["customer"]
    await harness.adapter.execute(create_invoice(first))

    with pytest.raises(PermanentError, match="for customer") as caught:
        await harness.adapter.execute(create_invoice(other, "k3"))

    assert caught.value.code == "conflict"


def test_options_refuse_what_stripe_would() -> None:
    with pytest.raises(ValueError, match="between 1 and 100"):
        StripeOptions(events_page_size=101)
    with pytest.raises(ValueError, match="without brackets"):
        StripeOptions(id_key="pssync[id]")
    with pytest.raises(ValueError, match="1 to 20"):
        StripeOptions(event_types=tuple(f"invoice.t{n}" for n in range(21)))


async def test_transport_failures_map_to_retryable(autojump_clock, clock) -> None:
    _, recorder, adapter = build(clock, max_attempts=2)

    async def broken(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadError("connection reset", request=request)

    recorder.inner = httpx.MockTransport(broken)
    with pytest.raises(RetryableError) as caught:
        await adapter.execute(upsert_customer())

    assert caught.value.code == "ReadError"
    await adapter.aclose()
