"""The simulated Stripe: auth, form encoding, lists, invoices, idempotency, events."""

from __future__ import annotations

import base64
import json

import httpx
import pytest
import trio
import trio.testing

from adapters.sandbox.clock import SandboxClock
from adapters.sandbox.stripe import StripeErrors, create_vendor, parse_form
from adapters.sandbox.stripe.errors import StripeError
from adapters.sandbox.stripe.forms import parse_pairs
from adapters.sandbox.vendor import Vendor

BASE = "https://api.stripe.com"
START = 1_767_225_600.0  # 2026-01-01T00:00:00Z
DAY = 86_400


@pytest.fixture
def clock() -> SandboxClock:
    return SandboxClock(start=START, monotonic_source=trio.current_time)


@pytest.fixture
async def vendor(clock: SandboxClock) -> Vendor:
    return create_vendor(clock=clock, seed=11, rate_limit_per_s=1000)


def client_for(vendor: Vendor, **headers: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=vendor.app),
        base_url=BASE,
        headers={"Authorization": f"Bearer {vendor.credentials['api_key']}", **headers},
    )


@pytest.fixture
async def client(vendor: Vendor):
    async with client_for(vendor) as client:
        yield client


async def post(client: httpx.AsyncClient, path: str, data: dict | None = None, **kw) -> dict:
    response = await client.post(path, data=data or {}, **kw)
    assert response.status_code == 200, response.text
    return response.json()


def error_of(response: httpx.Response) -> dict:
    assert response.headers["Request-Id"].startswith("req_")
    return response.json()["error"]


async def draft_invoice(client: httpx.AsyncClient, **extra: str) -> tuple[str, dict]:
    customer = await post(client, "/v1/customers", {"name": "Acme", "email": "ap@acme.test"})
    invoice = await post(
        client,
        "/v1/invoices",
        {
            "customer": customer["id"],
            "collection_method": "send_invoice",
            "days_until_due": "30",
            "metadata[pssync_source]": "milestone-1",
            **extra,
        },
    )
    return customer["id"], invoice


# ----------------------------------------------------------------------------- auth


async def test_missing_and_wrong_keys_get_stripe_401(vendor: Vendor) -> None:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=vendor.app), base_url=BASE
    ) as anonymous:
        missing = await anonymous.get("/v1/customers")
        wrong = await anonymous.get(
            "/v1/customers", headers={"Authorization": "Bearer sk_test_wrongwrongwrong1234"}
        )

    assert missing.status_code == 401
    assert error_of(missing)["type"] == "invalid_request_error"
    assert "did not provide an API key" in error_of(missing)["message"]
    assert wrong.status_code == 401
    assert error_of(wrong)["message"].startswith("Invalid API Key provided: sk_test_")
    assert "wrongwrongwrong" not in error_of(wrong)["message"]


async def test_basic_auth_with_key_as_user_name(vendor: Vendor) -> None:
    token = base64.b64encode(f"{vendor.credentials['api_key']}:".encode()).decode()
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=vendor.app),
        base_url=BASE,
        headers={"Authorization": f"Basic {token}"},
    ) as basic:
        response = await basic.get("/v1/customers")

    assert response.status_code == 200
    assert response.json() == {
        "object": "list",
        "data": [],
        "has_more": False,
        "url": "/v1/customers",
    }


# ----------------------------------------------------------------------------- forms


def test_form_parser_builds_nested_dicts_and_lists() -> None:
    text = (
        "metadata[erp_id]=1&items[0][price]=price_1&items[1][price]=price_2"
        "&items[1][quantity]=3&expand[]=a&expand[]=b&name=Acme%20Corp&address[line1]="
    )

    assert parse_form(parse_pairs(text)) == {
        "metadata": {"erp_id": "1"},
        "items": [{"price": "price_1"}, {"price": "price_2", "quantity": "3"}],
        "expand": ["a", "b"],
        "name": "Acme Corp",
        "address": {"line1": ""},
    }


@pytest.mark.parametrize(
    ("text", "param"),
    [
        ("metadata[erp_id=1", "metadata[erp_id"),
        ("name]=x", "name]"),
        ("[name]=x", "[name]"),
        ("metadata[a]b=1", "metadata[a]b"),
        ("name=x&name[first]=y", "name[first]"),
        ("items[0][price]=p&items[2][price]=q", "items"),
        ("expand[][x]=1", "expand[][x]"),
    ],
)
def test_form_parser_refuses_malformed_keys_naming_them(text: str, param: str) -> None:
    with pytest.raises(StripeError) as raised:
        parse_form(parse_pairs(text))

    body = raised.value.body()
    assert body["error"]["type"] == "invalid_request_error"
    assert body["error"]["param"] == param


async def test_malformed_and_unknown_params_are_400_over_http(client: httpx.AsyncClient) -> None:
    malformed = await client.post(
        "/v1/customers",
        content=b"metadata[erp_id=1",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    unknown = await client.post("/v1/customers", data={"nmae": "typo"})
    bad_integer = await client.get("/v1/customers", params={"limit": "ten"})

    assert malformed.status_code == 400
    assert error_of(malformed)["param"] == "metadata[erp_id"
    assert unknown.status_code == 400
    assert error_of(unknown) == {
        "code": "parameter_unknown",
        "doc_url": "https://stripe.com/docs/error-codes/parameter-unknown",
        "message": "Received unknown parameter: nmae",
        "param": "nmae",
        "type": "invalid_request_error",
    }
    assert error_of(bad_integer)["code"] == "parameter_invalid_integer"


async def test_metadata_round_trips_and_empty_value_unsets(client: httpx.AsyncClient) -> None:
    customer = await post(
        client, "/v1/customers", {"metadata[pssync_id]": "A-1", "metadata[erp_id]": "42"}
    )
    updated = await post(client, f"/v1/customers/{customer['id']}", {"metadata[erp_id]": ""})

    assert customer["metadata"] == {"pssync_id": "A-1", "erp_id": "42"}
    assert updated["metadata"] == {"pssync_id": "A-1"}


# ----------------------------------------------------------------------------- lists


async def test_lists_are_newest_first_and_page_with_cursors(client: httpx.AsyncClient) -> None:
    created = [(await post(client, "/v1/customers", {"name": f"C{n}"}))["id"] for n in range(25)]
    newest_first = list(reversed(created))

    first = (await client.get("/v1/customers")).json()
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 7, **({"starting_after": cursor} if cursor else {})}
        page = (await client.get("/v1/customers", params=params)).json()
        pages += 1
        seen += [customer["id"] for customer in page["data"]]
        if not page["has_more"]:
            break
        cursor = page["data"][-1]["id"]
    before = (
        await client.get("/v1/customers", params={"limit": 3, "ending_before": newest_first[10]})
    ).json()

    assert len(first["data"]) == 10
    assert first["has_more"] is True
    assert seen == newest_first
    assert pages == 4
    assert [c["id"] for c in before["data"]] == newest_first[7:10]
    assert before["has_more"] is True


async def test_list_parameter_errors(client: httpx.AsyncClient) -> None:
    too_many = await client.get("/v1/customers", params={"limit": 101})
    both = await client.get(
        "/v1/customers", params={"starting_after": "cus_a", "ending_before": "cus_b"}
    )
    unknown_cursor = await client.get("/v1/customers", params={"starting_after": "cus_nope"})

    assert too_many.status_code == 400
    assert error_of(too_many)["param"] == "limit"
    assert both.status_code == 400
    assert unknown_cursor.status_code == 404
    assert error_of(unknown_cursor)["message"] == "No such customer: 'cus_nope'"


async def test_missing_object_is_resource_missing(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/customers/cus_x")

    assert response.status_code == 404
    assert error_of(response) == {
        "code": "resource_missing",
        "doc_url": "https://stripe.com/docs/error-codes/resource-missing",
        "message": "No such customer: 'cus_x'",
        "param": "id",
        "type": "invalid_request_error",
    }


async def test_search_customers_by_metadata(client: httpx.AsyncClient) -> None:
    await post(client, "/v1/customers", {"name": "Acme", "metadata[erp_id]": "123"})
    target = await post(
        client, "/v1/customers", {"name": "Beta", "email": "b@x.io", "metadata[erp_id]": "456"}
    )

    by_metadata = (
        await client.get("/v1/customers/search", params={"query": "metadata['erp_id']:'456'"})
    ).json()
    combined = (
        await client.get(
            "/v1/customers/search",
            params={"query": "metadata[\"erp_id\"]:'456' AND email~'x.io'"},
        )
    ).json()
    nothing = (
        await client.get("/v1/customers/search", params={"query": "-name:'Acme' AND name:'Acme'"})
    ).json()
    mixed = await client.get(
        "/v1/customers/search", params={"query": "name:'a' AND name:'b' OR name:'c'"}
    )

    assert by_metadata["object"] == "search_result"
    assert [c["id"] for c in by_metadata["data"]] == [target["id"]]
    assert [c["id"] for c in combined["data"]] == [target["id"]]
    assert nothing["data"] == []
    assert mixed.status_code == 400
    assert error_of(mixed)["param"] == "query"


# ----------------------------------------------------------------------------- invoices


async def test_invoice_totals_and_lifecycle_to_paid(client: httpx.AsyncClient) -> None:
    customer, invoice = await draft_invoice(client, currency="gbp")
    product = await post(client, "/v1/products", {"name": "Consulting"})
    price = await post(
        client,
        "/v1/prices",
        {"product": product["id"], "currency": "gbp", "unit_amount": "15000"},
    )
    await post(
        client,
        "/v1/invoiceitems",
        {"customer": customer, "invoice": invoice["id"], "price": price["id"], "quantity": "8"},
    )
    await post(
        client,
        "/v1/invoiceitems",
        {
            "customer": customer,
            "invoice": invoice["id"],
            "amount": "5000",
            "currency": "gbp",
            "description": "Travel",
            "period[start]": str(int(START) - DAY),
            "period[end]": str(int(START)),
        },
    )

    draft = (await client.get(f"/v1/invoices/{invoice['id']}")).json()
    finalized = await post(client, f"/v1/invoices/{invoice['id']}/finalize")
    paid = await post(client, f"/v1/invoices/{invoice['id']}/pay")

    assert draft["status"] == "draft"
    assert draft["number"] is None
    assert draft["hosted_invoice_url"] is None
    assert (draft["subtotal"], draft["total"], draft["amount_due"]) == (125000, 125000, 125000)
    assert draft["lines"]["total_count"] == 2
    assert finalized["status"] == "open"
    assert finalized["number"].endswith("-0001")
    assert finalized["hosted_invoice_url"].startswith("https://invoice.stripe.com/")
    assert finalized["due_date"] == finalized["status_transitions"]["finalized_at"] + 30 * DAY
    assert paid["status"] == "paid"
    assert (paid["amount_paid"], paid["amount_remaining"]) == (125000, 0)
    assert paid["status_transitions"]["paid_at"] == int(START)


@pytest.mark.parametrize(
    ("setup", "action", "allowed"),
    [
        ([], "pay", False),
        ([], "void", False),
        ([], "mark_uncollectible", False),
        (["finalize"], "finalize", False),
        (["finalize", "pay"], "void", False),
        (["finalize", "pay"], "mark_uncollectible", False),
        (["finalize", "void"], "pay", False),
        (["finalize"], "void", True),
        (["finalize"], "mark_uncollectible", True),
        (["finalize", "mark_uncollectible"], "pay", True),
        (["finalize", "mark_uncollectible"], "void", True),
    ],
)
async def test_invoice_transitions(
    client: httpx.AsyncClient, setup: list[str], action: str, allowed: bool
) -> None:
    customer, invoice = await draft_invoice(client)
    await post(
        client,
        "/v1/invoiceitems",
        {"customer": customer, "invoice": invoice["id"], "amount": "100", "currency": "usd"},
    )
    for step in setup:
        await post(client, f"/v1/invoices/{invoice['id']}/{step}")

    response = await client.post(f"/v1/invoices/{invoice['id']}/{action}")

    assert (response.status_code == 200) is allowed, response.text
    if not allowed:
        assert response.status_code == 400
        assert error_of(response)["type"] == "invalid_request_error"


async def test_draft_can_be_deleted_but_open_cannot(client: httpx.AsyncClient) -> None:
    _, draft = await draft_invoice(client)
    _, other = await draft_invoice(client)
    await post(client, f"/v1/invoices/{other['id']}/finalize")

    deleted = await client.delete(f"/v1/invoices/{draft['id']}")
    refused = await client.delete(f"/v1/invoices/{other['id']}")

    assert deleted.json() == {"id": draft["id"], "object": "invoice", "deleted": True}
    assert (await client.get(f"/v1/invoices/{draft['id']}")).status_code == 404
    assert refused.status_code == 400


async def test_items_cannot_join_finalized_invoices(client: httpx.AsyncClient) -> None:
    customer, invoice = await draft_invoice(client)
    await post(client, f"/v1/invoices/{invoice['id']}/finalize")

    response = await client.post(
        "/v1/invoiceitems",
        data={"customer": customer, "invoice": invoice["id"], "amount": "1", "currency": "usd"},
    )

    assert response.status_code == 400
    assert error_of(response)["param"] == "invoice"


async def test_business_hooks_fail_then_pay(client: httpx.AsyncClient, vendor: Vendor) -> None:
    customer, invoice = await draft_invoice(client)
    await post(
        client,
        "/v1/invoiceitems",
        {"customer": customer, "invoice": invoice["id"], "amount": "900", "currency": "usd"},
    )
    await post(client, f"/v1/invoices/{invoice['id']}/finalize")

    assert [i["id"] for i in vendor.state.open_invoices()] == [invoice["id"]]
    vendor.state.fail_payment(invoice["id"])
    declined = await client.post(f"/v1/invoices/{invoice['id']}/pay")
    vendor.state.pay_invoice(invoice["id"], at=START + 5 * DAY)
    listed = (await client.get("/v1/events", params={"type": "invoice.*"})).json()["data"]
    events = [e for e in listed if e["type"].startswith("invoice.pa")]

    assert declined.status_code == 402
    assert error_of(declined)["type"] == "card_error"
    paid = (await client.get(f"/v1/invoices/{invoice['id']}")).json()
    assert paid["status"] == "paid"
    assert paid["status_transitions"]["paid_at"] == int(START + 5 * DAY)
    assert paid["attempt_count"] == 3
    assert [e["type"] for e in events] == [
        "invoice.paid",
        "invoice.payment_succeeded",
        "invoice.payment_failed",
        "invoice.payment_failed",
    ]
    assert events[0]["request"] == {"id": None, "idempotency_key": None}
    assert vendor.state.open_invoices() == []


async def test_subscription_bills_and_renews(
    client: httpx.AsyncClient, vendor: Vendor, clock: SandboxClock
) -> None:
    customer = await post(client, "/v1/customers", {"name": "Managed"})
    product = await post(client, "/v1/products", {"name": "Managed services"})
    price = await post(
        client,
        "/v1/prices",
        {
            "product": product["id"],
            "currency": "eur",
            "unit_amount": "250000",
            "recurring[interval]": "month",
        },
    )
    subscription = await post(
        client,
        "/v1/subscriptions",
        {
            "customer": customer["id"],
            "items[0][price]": price["id"],
            "collection_method": "send_invoice",
            "days_until_due": "14",
            "metadata[pssync_source]": "contract-9",
        },
    )
    first = (await client.get(f"/v1/invoices/{subscription['latest_invoice']}")).json()

    clock.advance(31 * DAY)
    vendor.state.tick()
    renewed = (await client.get(f"/v1/subscriptions/{subscription['id']}")).json()
    second = (await client.get(f"/v1/invoices/{renewed['latest_invoice']}")).json()
    clock.advance(3600)
    vendor.state.tick()

    assert subscription["status"] == "active"
    assert first["status"] == "open"
    assert first["total"] == 250000
    assert first["currency"] == "eur"
    assert second["status"] == "draft"
    assert second["billing_reason"] == "subscription_cycle"
    assert vendor.state.objects["invoice"][second["id"]]["status"] == "open"
    assert renewed["current_period_start"] == subscription["current_period_end"]


# ----------------------------------------------------------------------------- idempotency


async def test_same_key_same_params_replays(client: httpx.AsyncClient, vendor: Vendor) -> None:
    headers = {"Idempotency-Key": "key-1"}
    data = {"name": "Acme", "metadata[pssync_id]": "A-1"}

    first = await client.post("/v1/customers", data=data, headers=headers)
    again = await client.post("/v1/customers", data=dict(reversed(data.items())), headers=headers)

    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.headers["Original-Request"] == first.headers["Request-Id"]
    assert again.headers["Request-Id"] != first.headers["Request-Id"]
    assert "Idempotent-Replayed" not in first.headers
    assert vendor.state.counts()["customer"] == 1


async def test_same_key_other_params_is_idempotency_error(client: httpx.AsyncClient) -> None:
    headers = {"Idempotency-Key": "key-2"}
    await post(client, "/v1/customers", {"name": "Acme"}, headers=headers)

    response = await client.post("/v1/customers", data={"name": "Other"}, headers=headers)
    other_path = await client.post("/v1/products", data={"name": "Acme"}, headers=headers)

    assert response.status_code == 400
    assert error_of(response)["type"] == "idempotency_error"
    assert "key-2" in error_of(response)["message"]
    assert other_path.status_code == 400


async def test_keys_expire_after_24_hours_of_sandbox_time(
    client: httpx.AsyncClient, vendor: Vendor, clock: SandboxClock
) -> None:
    headers = {"Idempotency-Key": "key-3"}
    first = await post(client, "/v1/customers", {"name": "Acme"}, headers=headers)
    clock.advance(DAY - 1)
    replay = await client.post("/v1/customers", data={"name": "Acme"}, headers=headers)
    clock.advance(1)
    fresh = await client.post("/v1/customers", data={"name": "Acme"}, headers=headers)

    assert replay.headers.get("Idempotent-Replayed") == "true"
    assert "Idempotent-Replayed" not in fresh.headers
    assert fresh.json()["id"] != first["id"]
    assert vendor.state.counts()["customer"] == 2


async def test_validation_failures_are_not_stored(
    client: httpx.AsyncClient, vendor: Vendor
) -> None:
    headers = {"Idempotency-Key": "key-4"}
    refused = await client.post("/v1/invoices", data={}, headers=headers)
    customer = await post(client, "/v1/customers", {"name": "Acme"})

    fixed = await client.post("/v1/invoices", data={"customer": customer["id"]}, headers=headers)

    assert refused.status_code == 400
    assert error_of(refused)["code"] == "parameter_missing"
    assert fixed.status_code == 200
    assert "Idempotent-Replayed" not in fixed.headers
    assert vendor.state.counts()["invoice"] == 1


async def test_state_refusals_are_stored_and_replayed(client: httpx.AsyncClient) -> None:
    _, invoice = await draft_invoice(client)
    headers = {"Idempotency-Key": "key-5"}

    first = await client.post(f"/v1/invoices/{invoice['id']}/void", headers=headers)
    again = await client.post(f"/v1/invoices/{invoice['id']}/void", headers=headers)

    assert first.status_code == again.status_code == 400
    assert again.headers["Idempotent-Replayed"] == "true"


async def test_concurrent_request_with_same_key_is_409(clock: SandboxClock) -> None:
    release = trio.Event()

    async def hold(request) -> None:
        if request.headers.get("x-hold"):
            await release.wait()

    vendor = create_vendor(clock=clock, request_hook=hold)
    headers = {"Idempotency-Key": "key-6"}
    async with client_for(vendor) as client, trio.open_nursery() as nursery:
        results: list[httpx.Response] = []

        async def first() -> None:
            results.append(
                await client.post(
                    "/v1/customers", data={"name": "A"}, headers={**headers, "X-Hold": "1"}
                )
            )

        nursery.start_soon(first)
        await trio.testing.wait_all_tasks_blocked()
        conflict = await client.post("/v1/customers", data={"name": "A"}, headers=headers)
        release.set()

    assert conflict.status_code == 409
    assert error_of(conflict)["code"] == "idempotency_key_in_use"
    assert conflict.headers["Stripe-Should-Retry"] == "true"
    assert results[0].status_code == 200
    assert vendor.state.counts()["customer"] == 1


# ----------------------------------------------------------------------------- events


async def test_events_filter_by_type_wildcard_and_page(
    client: httpx.AsyncClient, clock: SandboxClock
) -> None:
    for n in range(3):
        customer, invoice = await draft_invoice(client, description=f"#{n}")
        await post(
            client,
            "/v1/invoiceitems",
            {"customer": customer, "invoice": invoice["id"], "amount": "100", "currency": "usd"},
        )
        await post(
            client,
            f"/v1/invoices/{invoice['id']}/finalize",
            headers={"Idempotency-Key": f"fin-{n}"},
        )
        clock.advance(60)

    invoice_events = (await client.get("/v1/events", params={"type": "invoice.*"})).json()
    finalized = (await client.get("/v1/events", params={"type": "invoice.finalized"})).json()
    several = (
        await client.get(
            "/v1/events", params={"types[]": ["customer.created", "invoice.finalized"]}
        )
    ).json()
    recent = (
        await client.get("/v1/events", params={"created[gte]": int(START) + 60, "limit": 100})
    ).json()
    page_one = (await client.get("/v1/events", params={"limit": 4})).json()
    page_two = (
        await client.get(
            "/v1/events", params={"limit": 4, "starting_after": page_one["data"][-1]["id"]}
        )
    ).json()

    assert {e["type"] for e in invoice_events["data"]} == {"invoice.created", "invoice.finalized"}
    assert len(invoice_events["data"]) == 6
    newest = finalized["data"][0]
    assert newest["object"] == "event"
    assert newest["data"]["object"]["status"] == "open"
    assert newest["data"]["object"]["description"] == "#2"
    assert newest["request"]["idempotency_key"] == "fin-2"
    assert newest["request"]["id"].startswith("req_")
    assert len(several["data"]) == 6
    assert all(e["created"] >= START + 60 for e in recent["data"])
    assert len(recent["data"]) == 6
    assert page_one["has_more"] is True
    assert not {e["id"] for e in page_one["data"]} & {e["id"] for e in page_two["data"]}


async def test_event_snapshot_does_not_change_later(client: httpx.AsyncClient) -> None:
    _, invoice = await draft_invoice(client)
    await post(client, f"/v1/invoices/{invoice['id']}/finalize")

    [created] = (await client.get("/v1/events", params={"type": "invoice.created"})).json()["data"]

    assert created["data"]["object"]["status"] == "draft"
    assert "_lines" not in created["data"]["object"]


async def test_events_are_kept_30_days(client: httpx.AsyncClient, clock: SandboxClock) -> None:
    old = await post(client, "/v1/customers", {"name": "Old"})
    clock.advance(29 * DAY)
    await post(client, "/v1/customers", {"name": "New"})
    clock.advance(2 * DAY)

    events = (await client.get("/v1/events")).json()["data"]

    assert [e["data"]["object"]["name"] for e in events] == ["New"]
    assert all(e["data"]["object"]["id"] != old["id"] for e in events)


async def test_type_and_types_together_are_refused(client: httpx.AsyncClient) -> None:
    response = await client.get(
        "/v1/events", params={"type": "invoice.*", "types[]": "invoice.paid"}
    )

    assert response.status_code == 400


# ----------------------------------------------------------------------------- limits, state


async def test_rate_limit_answers_429_in_stripe_shape(clock: SandboxClock) -> None:
    vendor = create_vendor(clock=clock, rate_limit_per_s=2)
    async with client_for(vendor) as client:
        statuses = [(await client.get("/v1/customers")).status_code for _ in range(2)]
        throttled = await client.get("/v1/customers")
        idempotent = await client.post(
            "/v1/customers", data={"name": "A"}, headers={"Idempotency-Key": "k"}
        )
        clock.advance(1)
        after = await client.post(
            "/v1/customers", data={"name": "A"}, headers={"Idempotency-Key": "k"}
        )

    assert statuses == [200, 200]
    assert throttled.status_code == 429
    assert error_of(throttled)["code"] == "rate_limit"
    assert "Stripe-Should-Retry" not in throttled.headers
    assert idempotent.status_code == 429
    assert after.status_code == 200
    assert "Idempotent-Replayed" not in after.headers  # the 429 was not stored


def test_fault_shapes_carry_retry_signals() -> None:
    errors = StripeErrors()

    throttled = errors.throttled(2.0)
    failed = errors.server_error(503)

    assert throttled.status_code == 429
    assert throttled.headers["Retry-After"] == "2"
    assert json.loads(throttled.body)["error"]["code"] == "rate_limit"
    assert failed.status_code == 503
    assert failed.headers["Stripe-Should-Retry"] == "true"
    assert failed.headers["Request-Id"].startswith("req_")
    assert json.loads(failed.body)["error"]["type"] == "api_error"


async def test_duplicates_by_metadata_source_key(
    client: httpx.AsyncClient, vendor: Vendor, clock: SandboxClock
) -> None:
    for _ in range(2):
        await post(client, "/v1/customers", {"name": "Twice", "metadata[pssync_id]": "crm-7"})
    await post(client, "/v1/customers", {"name": "Once", "metadata[pssync_id]": "crm-8"})

    [duplicate] = vendor.state.duplicates()
    copy = create_vendor(clock=clock, seed=11)
    copy.state.restore(json.loads(json.dumps(vendor.state.snapshot())))

    assert duplicate["type"] == "customer"
    assert duplicate["source_key"] == "pssync_id:crm-7"
    assert len(duplicate["ids"]) == 2
    assert copy.state.counts() == vendor.state.counts()
    assert copy.state.duplicates() == vendor.state.duplicates()
    assert copy.state.new_id("customer") == vendor.state.new_id("customer")


async def test_in_a_sandbox_admin_view_and_faults_use_stripe_shapes(clock: SandboxClock) -> None:
    from adapters.sandbox import SandboxConfig, build_sandbox
    from adapters.sandbox.faults import FaultConfig

    sandbox = build_sandbox(
        SandboxConfig(
            vendors=("stripe",),
            seed=3,
            faults={"stripe": FaultConfig(burst_429_every=2, burst_429_length=1)},
        ),
        clock=clock,
    )
    vendor = sandbox.vendors["stripe"]
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=sandbox.apps["stripe"]),
        base_url=BASE,
        headers={"Authorization": f"Bearer {vendor.credentials['api_key']}"},
    ) as client:
        for _ in range(2):
            await post(client, "/v1/customers", {"metadata[pssync_id]": "crm-1"})
        throttled = await client.post("/v1/customers", data={"name": "x"})
        counts = (await client.get("/_sandbox/counts")).json()
        duplicates = (await client.get("/_sandbox/duplicates")).json()

    assert throttled.status_code == 429
    assert error_of(throttled)["code"] == "rate_limit"
    assert counts["counts"]["customer"] == 2
    assert duplicates["duplicates"] == [
        {
            "type": "customer",
            "source_key": "pssync_id:crm-1",
            "ids": [c["id"] for c in vendor.state.objects["customer"].values()],
        }
    ]


async def test_invoice_items_list_by_invoice_newest_first(client: httpx.AsyncClient) -> None:
    customer = await post(client, "/v1/customers", {"name": "Acme"})
    invoice = await post(client, "/v1/invoices", {"customer": customer["id"]})
    for amount in ("1000", "2500"):
        await post(
            client,
            "/v1/invoiceitems",
            {
                "customer": customer["id"],
                "invoice": invoice["id"],
                "amount": amount,
                "currency": "usd",
            },
        )

    listed = await client.get("/v1/invoiceitems", params={"invoice": invoice["id"]})

    assert listed.status_code == 200
    assert [item["amount"] for item in listed.json()["data"]] == [2500, 1000]
