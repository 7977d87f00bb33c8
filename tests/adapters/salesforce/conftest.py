"""Fixtures: a seeded simulated Salesforce and the adapter talking to it in process."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest
import trio

from actors.messages import Account, Address
from adapters.auth import salesforce_client_credentials
from adapters.backoff import RetryPolicy
from adapters.base import ChangeFeed
from adapters.governor import Governor, GovernorConfig
from adapters.http import HttpConfig, SystemClient
from adapters.mapping import MappingSet, load_mapping
from adapters.salesforce import SalesforceAdapter, SalesforceOptions, create_adapter
from adapters.sandbox import Sandbox, SandboxClock, SandboxConfig, build_sandbox
from adapters.signals import SalesforceSignals

#: 2026-01-01T00:00:00Z
START = 1_767_225_600.0
BASE_URL = "https://pssync-sandbox.my.salesforce.com"
MAPPING = Path(__file__).resolve().parents[3] / "config" / "mappings" / "salesforce.toml"


class RecordingTransport(httpx.AsyncBaseTransport):
    """Wraps the ASGI transport and keeps every request that left the client."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.requests: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return await self.inner.handle_async_request(request)

    def data_requests(self) -> list[httpx.Request]:
        return [r for r in self.requests if r.url.path.startswith("/services/data/")]


@pytest.fixture
def clock() -> SandboxClock:
    return SandboxClock(start=START, monotonic_source=trio.current_time)


@pytest.fixture
def sandbox_options() -> dict[str, object]:
    """Options of the simulated org; override with ``@pytest.mark.parametrize``."""
    return {}


@pytest.fixture
async def sandbox(clock: SandboxClock, sandbox_options: dict[str, object]) -> Sandbox:
    config = SandboxConfig(
        vendors=("salesforce",), seed_data=True, options={"salesforce": sandbox_options}
    )
    return build_sandbox(config, clock=clock)


@pytest.fixture
def mappings() -> MappingSet:
    return load_mapping(MAPPING)


@pytest.fixture
def transport(sandbox: Sandbox) -> RecordingTransport:
    return RecordingTransport(httpx.ASGITransport(app=sandbox.apps["salesforce"]))


MakeAdapter = Callable[..., SalesforceAdapter]


@pytest.fixture
async def make_adapter(
    sandbox: Sandbox, mappings: MappingSet, transport: RecordingTransport
) -> AsyncIterator[MakeAdapter]:
    """Builds adapters over the sandbox (closed at the end of the test)."""
    made: list[SalesforceAdapter] = []
    credentials = sandbox.vendors["salesforce"].credentials

    def make(*, max_attempts: int = 6, **options: object) -> SalesforceAdapter:
        client = SystemClient(
            "crm",
            HttpConfig(base_url=BASE_URL, retry=RetryPolicy(max_attempts=max_attempts)),
            auth=salesforce_client_credentials(
                BASE_URL,
                client_id=credentials["client_id"],
                client_secret=credentials["client_secret"],
                system="crm",
            ),
            governor=Governor(
                GovernorConfig(rate_per_s=1000.0, burst=1000, max_concurrency=8), name="crm"
            ),
            signals=SalesforceSignals(),
            transport=transport,
            rng=random.Random(0),
        )
        adapter = create_adapter(
            system="crm", client=client, mappings=mappings, options=SalesforceOptions(**options)
        )
        made.append(adapter)
        return adapter

    yield make
    for adapter in made:
        await adapter.aclose()


@pytest.fixture
def adapter(make_adapter: MakeAdapter) -> SalesforceAdapter:
    return make_adapter()


async def fetch_token(adapter: SalesforceAdapter) -> None:
    """Log in before faults are switched on: the sandbox faults its token endpoint too."""
    await adapter.client.auth.token(adapter.client.http)


async def admin(sandbox: Sandbox, method: str, path: str, **kwargs: object) -> httpx.Response:
    """A call to the sandbox's admin view (never faulted, never counted)."""
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=sandbox.apps["salesforce"]), base_url=BASE_URL
    ) as client:
        response = await client.request(method, f"/_sandbox{path}", **kwargs)
    assert response.status_code == 200, response.text
    return response


def feed(adapter: SalesforceAdapter, name: str) -> ChangeFeed:
    return next(f for f in adapter.feeds() if f.name == name)


async def drain(feed: ChangeFeed, watermark: str | None, *, limit: int) -> tuple[list, str | None]:
    """Poll until the feed has nothing more; returns every envelope and the last watermark."""
    envelopes = []
    for _ in range(1000):
        page = await feed.poll(watermark, limit=limit)
        envelopes.extend(page.envelopes)
        watermark = page.watermark
        if not page.more:
            return envelopes, watermark
    raise AssertionError("the feed never ran dry")


def won_ids(sandbox: Sandbox) -> set[str]:
    records = sandbox.vendors["salesforce"].state.records["Opportunity"]
    return {record_id for record_id, record in records.items() if record["IsWon"]}


def customer(number: int = 1, **kwargs) -> Account:
    return Account(
        id=f"CUST-{number:04d}",
        name=f"Customer {number}",
        legal_entity="PSF-UK",
        currency="GBP",
        payment_terms_days=30,
        tax_id="GB000111222",
        billing_address=Address(lines=("1 High Street", "Floor 2"), city="Leeds", country="GB"),
        **kwargs,
    )
