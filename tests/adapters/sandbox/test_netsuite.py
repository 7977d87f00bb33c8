"""The simulated NetSuite: TBA auth, records, upsert, paging, SuiteQL, concurrency."""

from __future__ import annotations

import itertools
from collections.abc import Generator

import httpx
import pytest
import trio
import trio.testing

from adapters.sandbox.clock import SandboxClock
from adapters.sandbox.netsuite import TbaCredentials, authorization_header, create_vendor
from adapters.sandbox.vendor import Vendor

BASE = "https://1234567-sb1.suitetalk.api.netsuite.com"
RECORDS = "/services/rest/record/v1"
SUITEQL = "/services/rest/query/v1/suiteql"
START = 1_767_225_600.0  # 2026-01-01T00:00:00Z


class TbaAuth(httpx.Auth):
    """Signs every request as a NetSuite TBA client would (fresh nonce, sandbox time)."""

    def __init__(self, credentials: TbaCredentials, clock: SandboxClock, **overrides) -> None:
        self.credentials = credentials
        self.clock = clock
        self.overrides = overrides
        self._nonces = itertools.count()

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response]:
        request.headers["Authorization"] = authorization_header(
            self.credentials,
            method=request.method,
            url=str(request.url),
            timestamp=int(self.clock.now()),
            nonce=f"nonce{next(self._nonces)}",
            **self.overrides,
        )
        yield request


def credentials_of(vendor: Vendor, **changes: str) -> TbaCredentials:
    return TbaCredentials(**{**vendor.credentials, **changes})


@pytest.fixture
def clock() -> SandboxClock:
    return SandboxClock(start=START, monotonic_source=trio.current_time)


@pytest.fixture
async def vendor(clock: SandboxClock) -> Vendor:
    return create_vendor(clock=clock, seed=7)


@pytest.fixture
async def client(vendor: Vendor, clock: SandboxClock):
    auth = TbaAuth(credentials_of(vendor), clock)
    transport = httpx.ASGITransport(app=vendor.app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE, auth=auth) as client:
        yield client


def raw_client(vendor: Vendor) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=vendor.app), base_url=BASE)


async def create(client: httpx.AsyncClient, type_name: str, body: dict) -> str:
    response = await client.post(f"{RECORDS}/{type_name}", json=body)
    assert response.status_code == 204, response.text
    return response.headers["Location"].rsplit("/", 1)[1]


async def suiteql(client: httpx.AsyncClient, q: str, **params: int) -> httpx.Response:
    return await client.post(SUITEQL, params=params, json={"q": q}, headers={"Prefer": "transient"})


def login_refused(response: httpx.Response) -> bool:
    body = response.json()
    return (
        response.status_code == 401
        and body["status"] == 401
        and body["title"] == "Unauthorized"
        and body["o:errorDetails"][0]["o:errorCode"] == "INVALID_LOGIN_ATTEMPT"
    )


CUSTOMER = {"companyName": "Acme Corp", "subsidiary": {"id": "1"}, "externalId": "SF-001"}


# ----------------------------------------------------------------------------- auth


async def test_correctly_signed_request_is_accepted(client: httpx.AsyncClient) -> None:
    response = await client.get(f"{RECORDS}/customer", params={"limit": 5, "offset": 0})

    assert response.status_code == 200
    assert response.json()["totalResults"] == 0


async def test_signature_matches_rfc5849_worked_example(vendor: Vendor, clock) -> None:
    # Given a header built by hand with the RFC 5849 algorithm (independent of the helper)
    import base64
    import hashlib
    import hmac
    from urllib.parse import quote

    creds = credentials_of(vendor)
    timestamp, nonce = str(int(clock.now())), "abc123"
    params = {
        "limit": "2",
        "oauth_consumer_key": creds.consumer_key,
        "oauth_nonce": nonce,
        "oauth_signature_method": "HMAC-SHA256",
        "oauth_timestamp": timestamp,
        "oauth_token": creds.token_id,
        "oauth_version": "1.0",
        "q x": "a b",
    }
    enc = lambda value: quote(value, safe="-._~")  # noqa: E731
    normalized = "&".join(f"{enc(k)}={enc(v)}" for k, v in sorted(params.items()))
    base = "&".join(["GET", enc(f"{BASE}{RECORDS}/customer"), enc(normalized)])
    key = f"{enc(creds.consumer_secret)}&{enc(creds.token_secret)}"
    signature = base64.b64encode(hmac.new(key.encode(), base.encode(), hashlib.sha256).digest())
    oauth = {k: v for k, v in params.items() if k.startswith("oauth_")}
    header = f'OAuth realm="{creds.account_id}", ' + ", ".join(
        f'{k}="{enc(v)}"' for k, v in {**oauth, "oauth_signature": signature.decode()}.items()
    )

    async with raw_client(vendor) as client:
        response = await client.get(
            f"{RECORDS}/customer?limit=2&q%20x=a%20b", headers={"Authorization": header}
        )

    # Then the sandbox verifies it, query parameters included
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("changes", "overrides"),
    [
        ({"consumer_secret": "wrong"}, {}),
        ({"token_secret": "wrong"}, {}),
        ({"token_id": "unknown-token"}, {}),
        ({"account_id": "7654321"}, {}),
        ({}, {"signature_method": "HMAC-SHA1"}),
    ],
    ids=["consumer-secret", "token-secret", "token-id", "realm", "hmac-sha1"],
)
async def test_bad_credentials_are_refused_with_netsuite_body(
    vendor: Vendor, clock: SandboxClock, changes: dict, overrides: dict
) -> None:
    auth = TbaAuth(credentials_of(vendor, **changes), clock, **overrides)
    async with raw_client(vendor) as client:
        response = await client.get(f"{RECORDS}/customer", auth=auth)

    assert login_refused(response)


async def test_missing_header_is_refused(vendor: Vendor) -> None:
    async with raw_client(vendor) as client:
        response = await client.get(f"{RECORDS}/customer")

    assert login_refused(response)


async def test_pssync_client_signer_is_accepted(vendor: Vendor, clock: SandboxClock) -> None:
    # Given pssync's own TBA signer (an independent implementation of RFC 5849)
    from adapters.auth.netsuite_tba import NetSuiteTba

    creds = vendor.credentials
    signer = NetSuiteTba(
        account_id=creds["account_id"],
        consumer_key=creds["consumer_key"],
        consumer_secret=creds["consumer_secret"],
        token_id=creds["token_id"],
        token_secret=creds["token_secret"],
        wall_clock=clock.now,
    )
    async with raw_client(vendor) as client:
        responses = []
        for method, url, kwargs in [
            ("GET", f"{RECORDS}/customer?limit=5&offset=0&note=a+b%2Fc~", {}),
            ("POST", SUITEQL + "?limit=10", {"json": {"q": "SELECT id FROM customer"}}),
            ("POST", f"{RECORDS}/customer", {"data": {"companyName": "Form body"}}),
        ]:
            request = client.build_request(method, url, headers={"Prefer": "transient"}, **kwargs)
            await signer.authorize(request, client)
            responses.append(await client.send(request))

    # Then the sandbox accepts every signature (the form body is refused only as content)
    assert [r.status_code for r in responses] == [200, 200, 400]
    assert vendor.app.auth_failures == []


async def test_tampered_query_parameter_is_refused(vendor: Vendor, clock: SandboxClock) -> None:
    header = authorization_header(
        credentials_of(vendor),
        method="GET",
        url=f"{BASE}{RECORDS}/customer?limit=5&offset=0",
        timestamp=int(clock.now()),
        nonce="n1",
    )
    async with raw_client(vendor) as client:
        response = await client.get(
            f"{RECORDS}/customer?limit=5&offset=5", headers={"Authorization": header}
        )

    assert login_refused(response)
    assert vendor.app.auth_failures == ["signature mismatch"]


async def test_signature_covers_the_host(vendor: Vendor, clock: SandboxClock) -> None:
    header = authorization_header(
        credentials_of(vendor),
        method="GET",
        url=f"https://other-host.example.com{RECORDS}/customer",
        timestamp=int(clock.now()),
        nonce="n1",
    )
    async with raw_client(vendor) as client:
        response = await client.get(f"{RECORDS}/customer", headers={"Authorization": header})

    assert login_refused(response)


async def test_stale_timestamp_is_refused(vendor: Vendor, clock: SandboxClock) -> None:
    header = authorization_header(
        credentials_of(vendor),
        method="GET",
        url=f"{BASE}{RECORDS}/customer",
        timestamp=int(clock.now()),
        nonce="n1",
    )
    clock.advance(301)
    async with raw_client(vendor) as client:
        response = await client.get(f"{RECORDS}/customer", headers={"Authorization": header})

    assert login_refused(response)
    assert vendor.app.auth_failures == ["timestamp outside the allowed window"]


async def test_replayed_nonce_is_refused(vendor: Vendor, clock: SandboxClock) -> None:
    header = authorization_header(
        credentials_of(vendor),
        method="GET",
        url=f"{BASE}{RECORDS}/customer",
        timestamp=int(clock.now()),
        nonce="same",
    )
    async with raw_client(vendor) as client:
        first = await client.get(f"{RECORDS}/customer", headers={"Authorization": header})
        second = await client.get(f"{RECORDS}/customer", headers={"Authorization": header})

    assert first.status_code == 200
    assert login_refused(second)
    assert vendor.app.auth_failures == ["nonce already used"]


# ----------------------------------------------------------------------------- records


async def test_create_answers_204_with_location_and_record_reads_back(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(f"{RECORDS}/customer", json=CUSTOMER)

    assert response.status_code == 204
    assert response.content == b""
    location = response.headers["Location"]
    assert location.startswith(f"{BASE}{RECORDS}/customer/")
    record = (await client.get(location)).json()
    assert record["id"] == location.rsplit("/", 1)[1]
    assert record["externalId"] == "SF-001"
    assert record["companyName"] == "Acme Corp"
    assert record["subsidiary"]["id"] == "1"
    assert record["subsidiary"]["refName"] == "Northwind Advisory Inc."
    assert record["currency"]["id"] == "1"  # defaulted from the subsidiary
    assert record["links"] == [{"rel": "self", "href": location}]
    by_eid = (await client.get(f"{RECORDS}/customer/eid:SF-001")).json()
    assert by_eid["id"] == record["id"]


async def test_configured_base_url_is_used_in_location(clock: SandboxClock) -> None:
    vendor = create_vendor(clock=clock, base_url="https://9999-sb2.suitetalk.api.netsuite.com")
    auth = TbaAuth(credentials_of(vendor), clock)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=vendor.app), base_url="http://127.0.0.1:8080", auth=auth
    ) as client:
        response = await client.post(f"{RECORDS}/customer", json=CUSTOMER)

    assert response.headers["Location"].startswith(
        f"https://9999-sb2.suitetalk.api.netsuite.com{RECORDS}/customer/"
    )


async def test_upsert_by_external_id_creates_then_updates_one_record(
    client: httpx.AsyncClient, vendor: Vendor
) -> None:
    url = f"{RECORDS}/customer/eid:SF-002"
    created = await client.put(url, json={"companyName": "Beta", "subsidiary": {"id": "2"}})
    updated = await client.put(url, json={"companyName": "Beta Ltd"})

    assert created.status_code == 204
    assert updated.status_code == 204
    assert vendor.state.counts()["customer"] == 1
    record = (await client.get(url)).json()
    assert record["companyName"] == "Beta Ltd"
    assert record["subsidiary"]["id"] == "2"
    assert record["currency"]["id"] == "2"


async def test_put_with_internal_id_is_not_an_upsert(client: httpx.AsyncClient) -> None:
    record_id = await create(client, "customer", CUSTOMER)

    response = await client.put(f"{RECORDS}/customer/{record_id}", json={"companyName": "X"})

    assert response.status_code == 405


async def test_patch_updates_and_unknown_id_is_404(client: httpx.AsyncClient) -> None:
    record_id = await create(client, "customer", CUSTOMER)

    patched = await client.patch(f"{RECORDS}/customer/{record_id}", json={"email": "a@b.c"})
    missing = await client.get(f"{RECORDS}/customer/999999")

    assert patched.status_code == 204
    assert (await client.get(f"{RECORDS}/customer/{record_id}")).json()["email"] == "a@b.c"
    assert missing.status_code == 404
    assert missing.json()["o:errorDetails"][0]["o:errorCode"] == "NONEXISTENT_ID"


@pytest.mark.parametrize("external_id", ["has space", "pipe|bar", "dot.ted", "slash%2Fx"])
async def test_external_id_characters_are_checked(
    client: httpx.AsyncClient, external_id: str
) -> None:
    in_body = await client.post(f"{RECORDS}/customer", json={**CUSTOMER, "externalId": external_id})
    in_path = await client.put(f"{RECORDS}/customer/eid:{external_id}", json=CUSTOMER)

    assert in_body.status_code == 400
    assert in_body.json()["o:errorDetails"][0]["o:errorPath"] == "externalId"
    assert in_path.status_code in (400, 404)


async def test_duplicate_external_id_is_refused(client: httpx.AsyncClient) -> None:
    await create(client, "customer", CUSTOMER)

    response = await client.post(f"{RECORDS}/customer", json=CUSTOMER)

    assert response.status_code == 400
    assert response.json()["o:errorDetails"][0]["o:errorCode"] == "DUP_RCRD"


async def test_validation_errors_have_the_netsuite_shape(client: httpx.AsyncClient) -> None:
    unknown = await client.post(
        f"{RECORDS}/customer", json={"companyName": "X", "subsidiary": {"id": "99"}}
    )
    missing = await client.post(f"{RECORDS}/customer", json={"companyName": "X"})
    bare = await client.post(f"{RECORDS}/job", json={"companyName": "P", "parent": "12"})

    assert unknown.status_code == 400
    assert unknown.json() == {
        "type": "https://www.rfc-editor.org/rfc/rfc9110.html#section-15.5.1",
        "title": "Bad Request",
        "status": 400,
        "o:errorDetails": [
            {
                "detail": "Invalid value for field subsidiary.",
                "o:errorPath": "subsidiary",
                "o:errorCode": "INVALID_CONTENT",
            }
        ],
    }
    assert missing.json()["o:errorDetails"][0]["o:errorPath"] == "subsidiary"
    assert bare.json()["o:errorDetails"][0]["o:errorPath"] == "parent"


async def test_list_pages_to_the_end(client: httpx.AsyncClient) -> None:
    ids = [
        await create(client, "customer", {"companyName": f"C{n}", "subsidiary": {"id": "1"}})
        for n in range(7)
    ]
    seen, offset, pages = [], 0, 0
    while True:
        page = (
            await client.get(f"{RECORDS}/customer", params={"limit": 3, "offset": offset})
        ).json()
        pages += 1
        seen += [item["id"] for item in page["items"]]
        assert page["totalResults"] == 7
        assert page["count"] == len(page["items"])
        rels = {link["rel"] for link in page["links"]}
        if not page["hasMore"]:
            assert "next" not in rels
            break
        assert "next" in rels
        offset += page["count"]

    assert seen == ids
    assert pages == 3


async def test_limit_over_1000_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.get(f"{RECORDS}/customer", params={"limit": 1001})

    assert response.status_code == 400
    assert response.json()["o:errorDetails"][0]["o:errorQueryParam"] == "limit"


async def seed_project(client: httpx.AsyncClient) -> tuple[str, str]:
    customer = await create(client, "customer", CUSTOMER)
    job = await create(
        client,
        "job",
        {"companyName": "Acme rollout", "parent": {"id": customer}, "externalId": "PRJ-1"},
    )
    return customer, job


async def test_job_inherits_subsidiary_and_timebill_records_dimensions(
    client: httpx.AsyncClient,
) -> None:
    _, job = await seed_project(client)
    timebill = await create(
        client,
        "timebill",
        {
            "employee": {"id": "100"},
            "customer": {"externalId": "PRJ-1"},
            "hours": "7:30",
            "rate": 150,
            "tranDate": "2026-01-02",
            "memo": "Workshop [pssync:kantata-te-1]",
            "department": {"id": "2"},
            "class": {"id": "2"},
            "location": {"id": "1"},
            "externalId": "TE-1",
        },
    )

    record = (await client.get(f"{RECORDS}/timebill/{timebill}")).json()
    assert record["customer"]["id"] == job
    assert record["customer"]["links"][0]["href"].endswith(f"/job/{job}")
    assert record["hours"] == 7.5
    assert record["class"]["refName"] == "Implementation"
    assert (await client.get(f"{RECORDS}/job/{job}")).json()["subsidiary"]["id"] == "1"


async def test_invoice_and_payment_flow(client: httpx.AsyncClient, vendor: Vendor) -> None:
    customer, job = await seed_project(client)
    invoice = await create(
        client,
        "invoice",
        {
            "entity": {"id": job},
            "externalId": "INV-1",
            "tranDate": "2026-01-31",
            "item": {
                "items": [
                    {"item": {"id": "1"}, "quantity": 10, "rate": 150},
                    {"item": {"id": "2"}, "amount": 500},
                ]
            },
        },
    )
    read = (await client.get(f"{RECORDS}/invoice/{invoice}?expandSubResources=true")).json()
    assert read["total"] == 2000.0
    assert read["status"] == {"id": "A", "refName": "Open"}
    assert read["item"]["items"][0]["amount"] == 1500.0
    assert "items" not in (await client.get(f"{RECORDS}/invoice/{invoice}")).json()["item"]

    too_much = await client.post(
        f"{RECORDS}/customerpayment",
        json={
            "customer": {"id": customer},
            "payment": 3000,
            "apply": {"items": [{"doc": {"id": invoice}, "amount": 2500}]},
        },
    )
    assert too_much.status_code == 400
    await create(
        client,
        "customerpayment",
        {
            "customer": {"id": customer},
            "payment": 2000,
            "apply": {"items": [{"doc": {"id": invoice}, "apply": True, "amount": 2000}]},
        },
    )

    paid = (await client.get(f"{RECORDS}/invoice/{invoice}")).json()
    assert paid["amountRemaining"] == 0.0
    assert paid["status"]["refName"] == "Paid In Full"
    deleted = await client.delete(f"{RECORDS}/invoice/{invoice}")
    assert deleted.status_code == 400  # a payment is applied to it


async def test_unbalanced_journal_entry_is_refused(client: httpx.AsyncClient) -> None:
    line = {"account": {"id": "6"}, "debit": 120.5, "department": {"id": "1"}}
    body = {
        "subsidiary": {"id": "2"},
        "tranDate": "2026-01-15",
        "line": {"items": [line, {"account": {"id": "3"}, "credit": 100}]},
    }

    refused = await client.post(f"{RECORDS}/journalentry", json=body)
    body["line"]["items"][1]["credit"] = 120.5
    accepted = await client.post(f"{RECORDS}/journalentry", json=body)

    assert refused.status_code == 400
    assert refused.json()["o:errorDetails"][0]["o:errorPath"] == "line"
    assert accepted.status_code == 204


# ----------------------------------------------------------------------------- SuiteQL


async def test_suiteql_requires_prefer_transient(client: httpx.AsyncClient) -> None:
    response = await client.post(SUITEQL, json={"q": "SELECT id FROM customer"})

    assert response.status_code == 400
    assert response.json()["o:errorDetails"][0]["o:errorHeader"] == "Prefer"


async def test_suiteql_filters_orders_and_pages(client: httpx.AsyncClient) -> None:
    for n in range(5):
        subsidiary = "1" if n % 2 == 0 else "2"
        await create(
            client,
            "customer",
            {"companyName": f"Co {n}", "subsidiary": {"id": subsidiary}, "externalId": f"E{n}"},
        )
    q = (
        "SELECT id, companyName, externalid FROM customer c "
        "WHERE c.subsidiary = 1 AND externalid IN ('E0', 'E2', 'E4', 'E9') "
        "ORDER BY companyname DESC, id"
    )

    first = (await suiteql(client, q, limit=2, offset=0)).json()
    second = (await suiteql(client, q, limit=2, offset=2)).json()

    assert first["totalResults"] == 3
    assert first["hasMore"] is True
    assert [item["companyname"] for item in first["items"]] == ["Co 4", "Co 2"]
    assert first["items"][0]["links"] == []
    assert set(first["items"][0]) == {"links", "id", "companyname", "externalid"}
    assert second["hasMore"] is False
    assert second["count"] == 1
    assert second["items"][0]["externalid"] == "E0"


async def test_suiteql_aggregates_hours_per_job(client: httpx.AsyncClient) -> None:
    _, job = await seed_project(client)
    other = await create(
        client, "job", {"companyName": "Second", "parent": {"externalId": "SF-001"}}
    )
    for project, hours in ((job, 7.5), (job, 2.25), (other, 4)):
        await create(
            client,
            "timebill",
            {
                "employee": {"id": "101"},
                "customer": {"id": project},
                "hours": hours,
                "tranDate": "2026-01-05",
            },
        )
    response = await suiteql(
        client,
        "SELECT customer, SUM(hours) AS total, COUNT(*) FROM timebill "
        "WHERE trandate >= TO_DATE('2026-01-01', 'YYYY-MM-DD') GROUP BY customer ORDER BY customer",
    )
    count = await suiteql(client, "SELECT COUNT(*) AS n FROM timebill WHERE hours > 100")

    assert response.status_code == 200, response.text
    assert [
        (item["customer"], item["total"], item["expr1"]) for item in response.json()["items"]
    ] == [(job, "9.75", "2"), (other, "4", "1")]
    assert count.json()["items"] == [{"links": [], "n": "0"}]


async def test_suiteql_over_transactions(client: httpx.AsyncClient) -> None:
    _, job = await seed_project(client)
    await create(
        client,
        "invoice",
        {"entity": {"id": job}, "item": {"items": [{"item": {"id": "1"}, "amount": 100}]}},
    )

    response = await suiteql(
        client,
        "SELECT id, type, entity, foreigntotal, status, trandate FROM transaction "
        "WHERE type = 'CustInvc' AND status = 'A'",
    )

    [item] = response.json()["items"]
    assert item["entity"] == job
    assert item["foreigntotal"] == "100"
    assert item["trandate"] == "1/1/2026"


async def test_suiteql_errors(client: httpx.AsyncClient) -> None:
    unknown_column = await suiteql(client, "SELECT nosuchcolumn FROM customer")
    syntax = await suiteql(client, "SELECT id FROM customer WHERE")
    too_big = await suiteql(client, "SELECT id FROM customer", limit=1001)

    for response in (unknown_column, syntax, too_big):
        assert response.status_code == 400
        assert response.json()["o:errorDetails"][0]["o:errorCode"] == "INVALID_PARAMETER"


# ----------------------------------------------------------------------------- limits, state


async def test_concurrency_limit_answers_429_while_limit_requests_are_in_flight(
    clock: SandboxClock,
) -> None:
    release = trio.Event()
    holding = 0

    async def hold(request) -> None:
        nonlocal holding
        holding += 1
        await release.wait()

    vendor = create_vendor(clock=clock, concurrency_limit=2, request_hook=hold)
    auth = TbaAuth(credentials_of(vendor), clock)
    statuses: list[int] = []
    async with (
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=vendor.app), base_url=BASE, auth=auth
        ) as client,
        trio.open_nursery() as nursery,
    ):

        async def get() -> None:
            statuses.append((await client.get(f"{RECORDS}/customer")).status_code)

        nursery.start_soon(get)
        nursery.start_soon(get)
        await trio.testing.wait_all_tasks_blocked()
        assert holding == 2
        third = await client.get(f"{RECORDS}/customer")
        release.set()

    assert third.status_code == 429
    assert third.json()["o:errorDetails"][0]["o:errorCode"] == "CONCURRENCY_LIMIT_EXCEEDED"
    assert statuses == [200, 200]
    assert vendor.app.gate.active == 0


async def test_duplicates_by_source_key_and_snapshot_round_trip(
    client: httpx.AsyncClient, vendor: Vendor, clock: SandboxClock
) -> None:
    for external_id in ("A-1", "A-2"):
        await create(
            client,
            "customer",
            {
                "companyName": "Twice",
                "subsidiary": {"id": "1"},
                "externalId": external_id,
                "custentity_pssync_source": "crm:001",
            },
        )

    [duplicate] = vendor.state.duplicates()
    assert duplicate["type"] == "customer"
    assert duplicate["source_key"] == "crm:001"
    assert len(duplicate["ids"]) == 2

    copy = create_vendor(clock=clock, seed=7)
    copy.state.restore(vendor.state.snapshot())
    assert copy.state.counts() == vendor.state.counts()
    assert copy.state.duplicates() == vendor.state.duplicates()


def test_seeded_employees_are_stable_for_a_seed() -> None:
    clock = SandboxClock(start=START)
    first = create_vendor(clock=clock, seed=3).state.records["employee"]
    again = create_vendor(clock=clock, seed=3).state.records["employee"]

    assert [e["email"] for e in first.values()] == [e["email"] for e in again.values()]
    assert min(first) == 100


async def test_in_a_sandbox_employees_match_kantata_consultants_and_faults_apply(
    clock: SandboxClock,
) -> None:
    from adapters.sandbox import SandboxConfig, build_sandbox
    from adapters.sandbox.faults import FaultConfig

    sandbox = build_sandbox(
        SandboxConfig(
            vendors=("kantata", "netsuite"),
            seed=4,
            seed_data=True,
            faults={"netsuite": FaultConfig(burst_429_every=1, burst_429_length=1)},
        ),
        clock=clock,
    )
    consultants = {
        user["email_address"]
        for user in sandbox.vendors["kantata"].state.tables["users"].values()
        if "legal_entity" in user  # the seeded consultants, not the integration user
    }
    employees = {e["email"] for e in sandbox.vendors["netsuite"].state.records["employee"].values()}
    vendor = sandbox.vendors["netsuite"]
    auth = TbaAuth(credentials_of(vendor), clock)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=sandbox.apps["netsuite"]), base_url=BASE, auth=auth
    ) as client:
        first = await client.get(f"{RECORDS}/subsidiary/eid:PSF-UK")
        throttled = await client.get(f"{RECORDS}/subsidiary/eid:PSF-UK")

    assert employees == consultants
    assert len(employees) == 100
    psa_ids = {
        user["email_address"]: user["id"]
        for user in sandbox.vendors["kantata"].state.tables["users"].values()
    }
    for employee in sandbox.vendors["netsuite"].state.records["employee"].values():
        assert employee["externalId"] == f"pssync-emp-{psa_ids[employee['email']]}"
    assert first.json()["name"] == "Northwind Advisory Ltd"
    assert throttled.status_code == 429
    assert throttled.json()["o:errorDetails"][0]["o:errorCode"] == "CONCURRENCY_LIMIT_EXCEEDED"


async def test_processing_time_holds_the_concurrency_slot(
    clock: SandboxClock, autojump_clock: trio.testing.MockClock
) -> None:
    vendor = create_vendor(clock=clock, concurrency_limit=1, processing_ms=(1000, 1000))
    auth = TbaAuth(credentials_of(vendor), clock)
    statuses: list[int] = []
    started = trio.current_time()
    async with (
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=vendor.app), base_url=BASE, auth=auth
        ) as client,
        trio.open_nursery() as nursery,
    ):

        async def get() -> None:
            statuses.append((await client.get(f"{RECORDS}/customer")).status_code)

        nursery.start_soon(get)
        nursery.start_soon(get)

    assert sorted(statuses) == [200, 429]
    assert trio.current_time() - started == pytest.approx(1.0)
