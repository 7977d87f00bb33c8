"""Fixtures: the in-process Kantata sandbox and an adapter wired to it."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from actors.messages import Account, CreateProjectFromTemplate, Money, Project
from adapters.auth import BearerToken
from adapters.backoff import RetryPolicy
from adapters.governor import Governor, GovernorConfig
from adapters.http import HttpConfig, SystemClient
from adapters.kantata import KantataAdapter, KantataOptions, create_adapter
from adapters.mapping import MappingSet, load_mapping
from adapters.sandbox import Sandbox, SandboxClock, SandboxConfig, build_sandbox
from adapters.sandbox.kantata import KantataState
from adapters.signals import KantataSignals

#: 2026-01-01T00:00:00Z
START = 1_767_225_600.0
BASE_URL = "https://api.mavenlink.com/api/v1"
MAPPING = Path(__file__).parents[3] / "config" / "mappings" / "kantata.toml"


class Recorder(httpx.AsyncBaseTransport):
    """Passes requests to the sandbox and keeps them; can cut one response short."""

    def __init__(self, app: Any) -> None:
        self.inner = httpx.ASGITransport(app=app)
        self.requests: list[httpx.Request] = []
        self.truncate: set[tuple[str, str]] = set()
        """(method, path) pairs whose next response body is cut in half (once each)."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        response = await self.inner.handle_async_request(request)
        key = (request.method, request.url.path)
        if key in self.truncate:
            self.truncate.discard(key)
            body = await response.aread()
            return httpx.Response(response.status_code, content=body[: len(body) // 2])
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


@pytest.fixture
def mappings() -> MappingSet:
    return load_mapping(MAPPING)


@pytest.fixture
async def sandbox() -> Sandbox:
    # Async: the seed stamps records with trio's clock, so it must run inside trio.
    clock = SandboxClock(start=START, monotonic_source=trio.current_time)
    config = SandboxConfig(vendors=("kantata",), seed=3, seed_data=True)
    return build_sandbox(config, clock=clock)


@pytest.fixture
async def state(sandbox: Sandbox) -> KantataState:
    return sandbox.vendors["kantata"].state  # type: ignore[return-value]


@pytest.fixture
async def recorder(sandbox: Sandbox) -> Recorder:
    return Recorder(sandbox.apps["kantata"])


def make_adapter(
    sandbox: Sandbox,
    mappings: MappingSet,
    transport: httpx.AsyncBaseTransport,
    **options: Any,
) -> KantataAdapter:
    token = sandbox.vendors["kantata"].credentials["access_token"]
    client = SystemClient(
        "psa",
        HttpConfig(base_url=BASE_URL, retry=RetryPolicy(max_attempts=6)),
        auth=BearerToken(token),
        # The sandbox's own limits (10/s, burst 20) are what the tests push against.
        governor=Governor(GovernorConfig(rate_per_s=50.0, burst=50, max_concurrency=4)),
        signals=KantataSignals(),
        transport=transport,
        rng=random.Random(7),
    )
    settings = {"templates": {"implementation": "Implementation template"}, **options}
    return create_adapter(
        system="psa", client=client, mappings=mappings, options=KantataOptions(**settings)
    )


@pytest.fixture
async def adapter(
    sandbox: Sandbox, mappings: MappingSet, recorder: Recorder
) -> AsyncIterator[KantataAdapter]:
    adapter = make_adapter(sandbox, mappings, recorder)
    yield adapter
    await adapter.aclose()


def account(number: int = 1, **fields: Any) -> Account:
    return Account(id=f"001ACC{number}", name=f"Customer {number} plc", currency="USD", **fields)


def project(number: int = 1, **fields: Any) -> Project:
    values: dict[str, Any] = {
        "id": f"PRJ-{number}",
        "name": f"Implementation {number}",
        "account_id": f"001ACC{number}",
        "currency": "USD",
        "start_date": date(2026, 1, 5),
        "end_date": date(2026, 3, 31),
        "budget": Money.of("250000.00", "USD"),
        **fields,
    }
    return Project(**values)


def create_command(number: int = 1, **fields: Any) -> CreateProjectFromTemplate:
    return CreateProjectFromTemplate(
        idempotency_key=f"deal_to_project:{number}:psa_project",
        correlation_id=f"corr-{number}",
        template_id="implementation",
        project=project(number, **fields),
    )
