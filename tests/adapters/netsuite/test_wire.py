"""RecordService details the sandbox does not exercise: a missing or odd Location."""

from __future__ import annotations

import random
from decimal import Decimal

import httpx
import msgspec
import pytest

from actors.errors import PermanentError
from actors.messages import PostTimeEntries, UpsertCustomer
from adapters.auth import BearerToken
from adapters.governor import Governor, GovernorConfig, Lane
from adapters.http import HttpConfig, SystemClient
from adapters.netsuite import NetSuiteErrorSignals
from adapters.netsuite.wire import RecordService, quote_literal

from .builders import account, customer_and_job, time_entry

BASE = "https://1234567-sb1.suitetalk.api.netsuite.com"


def mock_client(handler) -> SystemClient:
    return SystemClient(
        "erp",
        HttpConfig(base_url=BASE),
        auth=BearerToken("token-123"),
        governor=Governor(GovernorConfig(rate_per_s=100.0, burst=100, max_concurrency=4)),
        signals=NetSuiteErrorSignals(),
        transport=httpx.MockTransport(handler),
        rng=random.Random(1),
    )


@pytest.mark.parametrize(
    "location",
    [None, f"{BASE}/services/rest/record/v1/customer/", f"{BASE}/services/rest/record/v1/job/5"],
)
async def test_upsert_without_a_usable_location_reads_the_id_by_external_id(location):
    seen: list[tuple[str, str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((request.method, request.url.path))
        if request.method == "PUT":
            assert msgspec.json.decode(request.content) == {"companyName": "A", "externalId": "x-1"}
            headers = {"Location": location} if location else {}
            return httpx.Response(204, headers=headers)
        return httpx.Response(200, json={"links": [], "id": "77", "companyName": "A"})

    async with mock_client(handler) as client:
        records = RecordService(client)
        internal_id = await records.upsert(
            "customer", "x-1", {"companyName": "A"}, lane=Lane.MASTER_DATA, correlation_id="c"
        )
    assert internal_id == "77"
    assert seen == [
        ("PUT", "/services/rest/record/v1/customer/eid:x-1"),
        ("GET", "/services/rest/record/v1/customer/eid:x-1"),
    ]


async def test_decimals_travel_as_exact_json_numbers():
    bodies: list[bytes] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(request.content)
        return httpx.Response(
            204, headers={"Location": f"{BASE}/services/rest/record/v1/timebill/9"}
        )

    async with mock_client(handler) as client:
        await RecordService(client).upsert(
            "timebill", "t", {"hours": Decimal("7.10")}, lane=Lane.CRITICAL, correlation_id="c"
        )
    assert b'"hours":7.10' in bodies[0]


def test_suiteql_literals_are_quoted():
    assert quote_literal("O'Brien") == "'O''Brien'"


async def test_source_key_exposes_a_duplicate_under_another_external_id(harness):
    # The sandbox's duplicates view reads custentity_pssync_source and the memo token; if
    # the external-id scheme ever changed, the second record would be caught there.
    await harness.adapter().execute(UpsertCustomer(idempotency_key="k", account=account()))
    other = harness.adapter(external_id_prefix="other")
    await other.execute(UpsertCustomer(idempotency_key="k", account=account()))
    assert [d["type"] for d in harness.state.duplicates()] == ["customer"]


async def test_consultant_without_an_employee_mapping_is_refused_at_employee(harness):
    adapter = harness.adapter()
    await customer_and_job(adapter)
    command = PostTimeEntries(
        idempotency_key="k",
        project_id="PRJ-1",
        entries=(time_entry(1, consultant_id="nobody"),),
    )
    with pytest.raises(PermanentError, match=r"\(at employee\)"):
        await adapter.execute(command)
    assert harness.records("timebill") == []
