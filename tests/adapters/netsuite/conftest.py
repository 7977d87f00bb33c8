"""A NetSuite adapter wired to the in-process sandbox: TBA-signed, governed, recorded."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
import trio

from adapters.auth import NetSuiteTba
from adapters.backoff import RetryPolicy
from adapters.governor import Governor, GovernorConfig
from adapters.http import HttpConfig, SystemClient
from adapters.mapping import MappingSet, load_mapping
from adapters.netsuite import NetSuiteAdapter, NetSuiteErrorSignals, NetSuiteOptions
from adapters.sandbox import Sandbox, SandboxClock, SandboxConfig, build_sandbox
from adapters.sandbox.netsuite import NetSuiteState

START = 1_767_225_600.0  # 2026-01-01T00:00:00Z
BASE = "https://1234567-sb1.suitetalk.api.netsuite.com"
MAPPING = Path(__file__).resolve().parents[3] / "config" / "mappings" / "netsuite.toml"
TODAY = date(2026, 1, 31)


def make_options(**changes: Any) -> NetSuiteOptions:
    """The sandbox account's reference ids (adapters/sandbox/netsuite/records.py seed)."""
    values: dict[str, Any] = {
        "account_id": "1234567_SB1",
        "subsidiaries": {"PSF-US": "1", "PSF-UK": "2", "PSF-EU": "3"},
        "currencies": {"USD": "1", "GBP": "2", "CAD": "3", "EUR": "4"},
        "departments": {"Consulting": "1", "Delivery": "2"},
        "classes": {"Advisory": "1", "Implementation": "2"},
        "locations": {"New York": "1", "London": "2"},
        "employees": {f"u{n}": str(100 + n) for n in range(10)},
        "time_item_id": "1",
        "invoice_item_id": "1",
        "milestone_item_id": "2",
        "expense_accounts": {"travel": "6", "meals": "7"},
        "default_expense_account_id": "8",
        "reimbursement_account_id": "3",
        "receivables_account_id": "2",
        "void_account_id": "4",
        "write_off_account_id": "7",
    }
    return msgspec.convert(values | changes, NetSuiteOptions)


class Recorder(httpx.AsyncBaseTransport):
    """The ASGI transport, keeping every request that went through it."""

    def __init__(self, app: Any) -> None:
        self.inner = httpx.ASGITransport(app=app)
        self.requests: list[httpx.Request] = []
        self.statuses: list[int] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        response = await self.inner.handle_async_request(request)
        self.statuses.append(response.status_code)
        return response

    def count(self, method: str, path_part: str = "") -> int:
        return sum(1 for r in self.requests if r.method == method and path_part in r.url.path)


@dataclass
class Harness:
    """The sandbox, its recorded transport and a way to build clients and adapters."""

    sandbox: Sandbox
    clock: SandboxClock
    transport: Recorder
    mappings: MappingSet
    clients: list[SystemClient] = field(default_factory=list)

    @property
    def state(self) -> NetSuiteState:
        state = self.sandbox.vendors["netsuite"].state
        assert isinstance(state, NetSuiteState)
        return state

    @property
    def throttled(self) -> int:
        """429 answers seen on the wire."""
        return self.transport.statuses.count(429)

    def tba(self, **changes: str) -> NetSuiteTba:
        credentials = self.sandbox.vendors["netsuite"].credentials | changes
        return NetSuiteTba(
            account_id=credentials["account_id"],
            consumer_key=credentials["consumer_key"],
            consumer_secret=credentials["consumer_secret"],
            token_id=credentials["token_id"],
            token_secret=credentials["token_secret"],
            wall_clock=self.clock.now,
        )

    def client(
        self,
        *,
        max_concurrency: int = 4,
        max_attempts: int = 5,
        auth: NetSuiteTba | None = None,
    ) -> SystemClient:
        client = SystemClient(
            "erp",
            HttpConfig(base_url=BASE, retry=RetryPolicy(max_attempts=max_attempts)),
            auth=auth or self.tba(),
            governor=Governor(
                GovernorConfig(rate_per_s=1000.0, burst=1000, max_concurrency=max_concurrency),
                name="erp",
            ),
            signals=NetSuiteErrorSignals(),
            transport=self.transport,
            rng=random.Random(7),
            wall_clock=self.clock.now,
        )
        self.clients.append(client)
        return client

    def adapter(self, *, client: SystemClient | None = None, **options: Any) -> NetSuiteAdapter:
        return NetSuiteAdapter(
            system="erp",
            client=client or self.client(),
            mappings=self.mappings,
            options=make_options(**options),
            today=lambda: TODAY,
        )

    def records(self, type_name: str) -> list[dict[str, Any]]:
        return [row for _, row in sorted(self.state.records[type_name].items())]

    def by_eid(self, type_name: str, external_id: str) -> dict[str, Any]:
        record_id = self.state.id_for_eid(type_name, external_id)
        assert record_id is not None, f"no {type_name} {external_id}"
        return self.state.records[type_name][record_id]


HarnessFactory = Callable[..., Harness]


@pytest.fixture
def clock() -> SandboxClock:
    return SandboxClock(start=START, monotonic_source=trio.current_time)


@pytest.fixture
async def make_harness(clock: SandboxClock) -> AsyncIterator[HarnessFactory]:
    made: list[Harness] = []

    def make(**netsuite_options: Any) -> Harness:
        """A fresh sandbox account; options go to the simulated NetSuite."""
        sandbox = build_sandbox(
            SandboxConfig(vendors=("netsuite",), options={"netsuite": netsuite_options}),
            clock=clock,
        )
        harness = Harness(
            sandbox=sandbox,
            clock=clock,
            transport=Recorder(sandbox.apps["netsuite"]),
            mappings=load_mapping(MAPPING),
        )
        made.append(harness)
        return harness

    yield make
    for harness in made:
        for client in harness.clients:
            await client.aclose()


@pytest.fixture
def harness(make_harness: HarnessFactory) -> Harness:
    return make_harness()


def dec(value: str) -> Decimal:
    return Decimal(value)
