"""Fixtures shared by the sandbox tests: a mock-time clock and in-process clients."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
import trio

from adapters.sandbox import Sandbox, SandboxClock, SandboxConfig, build_sandbox

#: 2026-01-01T00:00:00Z — every test starts its business day here.
START = 1_767_225_600.0

BASE_URLS = {
    "salesforce": "https://pssync-sandbox.my.salesforce.com",
    "kantata": "https://api.mavenlink.com",
}


@pytest.fixture
def clock() -> SandboxClock:
    # trio.current_time is read lazily, inside the test's trio run (mock or autojump).
    return SandboxClock(start=START, monotonic_source=trio.current_time)


@pytest.fixture
async def sandbox(clock: SandboxClock) -> Sandbox:
    return build_sandbox(SandboxConfig(vendors=("salesforce", "kantata")), clock=clock)


def client_for(sandbox: Sandbox, vendor: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=sandbox.apps[vendor]), base_url=BASE_URLS[vendor]
    )


@pytest.fixture
async def sf_raw(sandbox: Sandbox) -> AsyncIterator[httpx.AsyncClient]:
    """A Salesforce client without a token."""
    async with client_for(sandbox, "salesforce") as client:
        yield client


@pytest.fixture
async def sf(sf_raw: httpx.AsyncClient) -> httpx.AsyncClient:
    """A Salesforce client holding a bearer token from the client-credentials flow."""
    response = await sf_raw.post(
        "/services/oauth2/token",
        data={
            "grant_type": "client_credentials",
            "client_id": "3MVG9pssync.sandbox.consumer.key",
            "client_secret": "pssync-sandbox-consumer-secret",
        },
    )
    assert response.status_code == 200, response.text
    sf_raw.headers["Authorization"] = f"Bearer {response.json()['access_token']}"
    return sf_raw
