"""Faults on a vendor's OAuth token endpoint look like that endpoint, not its data API."""

from __future__ import annotations

import json

import httpx
import pytest
import trio

from adapters.sandbox import FaultConfig, Sandbox, SandboxClock
from adapters.sandbox.faults import FaultInjector
from adapters.sandbox.kantata.errors import KantataErrors
from adapters.sandbox.netsuite import TOKEN_PATH, NetSuiteErrors, create_vendor
from adapters.sandbox.salesforce import SalesforceErrors
from adapters.sandbox.stripe.errors import StripeErrors
from adapters.sandbox.vendor import TokenEndpointErrors

from .conftest import START, client_for

SF_TOKEN = "/services/oauth2/token"
SF_DATA = "/services/data/v66.0/limits"
LOGIN = {
    "grant_type": "client_credentials",
    "client_id": "3MVG9pssync.sandbox.consumer.key",
    "client_secret": "pssync-sandbox-consumer-secret",
}
NS_BASE = "https://1234567-sb1.suitetalk.api.netsuite.com"


def is_oauth_error(response: httpx.Response, error: str) -> bool:
    body = response.json()
    return (
        isinstance(body, dict)
        and body.get("error") == error
        and isinstance(body.get("error_description"), str)
        and response.headers["Cache-Control"] == "no-store"
    )


async def test_a_throttle_burst_on_the_salesforce_token_endpoint_is_an_oauth_error(
    sandbox: Sandbox,
) -> None:
    # Given a throttle burst covering requests 2 and 3
    sandbox.injectors["salesforce"].configure(FaultConfig(burst_429_every=1, burst_429_length=2))
    async with client_for(sandbox, "salesforce") as client:
        # When a login lands in the burst, then a data call does
        first = await client.post(SF_TOKEN, data=LOGIN)
        throttled_login = await client.post(SF_TOKEN, data=LOGIN)
        client.headers["Authorization"] = f"Bearer {first.json()['access_token']}"
        throttled_data = await client.get(SF_DATA)

    # Then the login gets the token endpoint's rate-limit answer, the data call the API's
    assert first.status_code == 200
    assert throttled_login.status_code == 400
    assert is_oauth_error(throttled_login, "rate_limit_exceeded")
    assert "Sforce-Limit-Info" not in throttled_login.headers
    assert "retry-after" not in throttled_login.headers
    assert throttled_data.status_code == 403
    assert throttled_data.json()[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"
    assert sandbox.injectors["salesforce"].stats.throttled == 2


async def test_a_configured_retry_after_reaches_the_token_throttle(sandbox: Sandbox) -> None:
    sandbox.injectors["salesforce"].configure(
        FaultConfig(burst_429_every=1, burst_429_length=1, retry_after_s=4.4)
    )
    async with client_for(sandbox, "salesforce") as client:
        await client.post(SF_TOKEN, data=LOGIN)
        throttled = await client.post(f"{SF_TOKEN}/", data=LOGIN)  # routed the same way
    assert is_oauth_error(throttled, "rate_limit_exceeded")
    assert throttled.headers["Retry-After"] == "4"


@pytest.mark.parametrize(
    ("status", "error"),
    [(503, "temporarily_unavailable"), (500, "server_error"), (502, "server_error")],
)
async def test_a_5xx_on_the_salesforce_token_endpoint_is_an_oauth_error(
    sandbox: Sandbox, status: int, error: str
) -> None:
    sandbox.injectors["salesforce"].configure(FaultConfig(error_rate=1.0, error_status=status))
    async with client_for(sandbox, "salesforce") as client:
        login = await client.post(SF_TOKEN, data=LOGIN)
        data = await client.get(SF_DATA)
    assert login.status_code == status
    assert is_oauth_error(login, error)
    assert data.status_code == status
    assert isinstance(data.json(), list)  # the data API keeps its error array
    assert sandbox.injectors["salesforce"].stats.errors == 2


async def test_a_malformed_token_answer_is_cut_with_the_vendors_status(sandbox: Sandbox) -> None:
    sandbox.injectors["salesforce"].configure(FaultConfig(malformed_rate=1.0))
    async with client_for(sandbox, "salesforce") as client:
        response = await client.post(SF_TOKEN, data=LOGIN)
    assert response.status_code == 200
    assert int(response.headers["content-length"]) == len(response.content)
    with pytest.raises(json.JSONDecodeError):
        response.json()


async def test_a_token_call_can_time_out(sandbox: Sandbox, autojump_clock) -> None:
    sandbox.injectors["salesforce"].configure(FaultConfig(timeout_rate=1.0))
    async with client_for(sandbox, "salesforce") as client:
        with trio.move_on_after(30) as scope:
            await client.post(SF_TOKEN, data=LOGIN)
    assert scope.cancelled_caught
    assert sandbox.injectors["salesforce"].stats.timeouts == 1


async def test_the_fault_sequence_does_not_depend_on_the_path(sandbox: Sandbox) -> None:
    # Given the same seed, once for logins and once for data calls
    config = FaultConfig(error_rate=0.5, seed=3)
    async with client_for(sandbox, "salesforce") as client:
        sandbox.injectors["salesforce"].configure(config)
        logins = [(await client.post(SF_TOKEN, data=LOGIN)).status_code for _ in range(30)]
        token = next(
            r.json()["access_token"]
            for r in [await client.post(SF_TOKEN, data=LOGIN) for _ in range(5)]
            if r.status_code == 200
        )
        client.headers["Authorization"] = f"Bearer {token}"
        sandbox.injectors["salesforce"].configure(config)
        data = [(await client.get(SF_DATA)).status_code for _ in range(30)]
    # Then the same requests fail: a token endpoint changes the shape, not the draws
    assert [status == 500 for status in logins] == [status == 500 for status in data]
    assert 5 < logins.count(500) < 25


async def test_netsuite_m2m_token_endpoint_faults_are_oauth_errors() -> None:
    # Given the simulated NetSuite behind an injector that throttles every other request
    clock = SandboxClock(start=START, monotonic_source=trio.current_time)
    vendor = create_vendor(clock=clock, seed=7)
    injector = FaultInjector(
        FaultConfig(burst_429_every=1, burst_429_length=1), vendor.errors, clock
    )
    transport = httpx.ASGITransport(app=injector.wrap(vendor.app))
    async with httpx.AsyncClient(transport=transport, base_url=NS_BASE) as client:
        # When a token call and a record call each land in a burst
        await client.post(TOKEN_PATH, data={"grant_type": "client_credentials"})
        token = await client.post(TOKEN_PATH, data={"grant_type": "client_credentials"})
        await client.get("/services/rest/record/v1/customer")
        record = await client.get("/services/rest/record/v1/customer")
        injector.configure(FaultConfig(error_rate=1.0, error_status=503))
        token_5xx = await client.post(TOKEN_PATH, data={"grant_type": "client_credentials"})

    # Then the token endpoint answers in OAuth form, the record service in NetSuite's
    assert token.status_code == 429
    assert is_oauth_error(token, "temporarily_unavailable")
    assert record.status_code == 429
    assert record.json()["o:errorDetails"][0]["o:errorCode"] == "CONCURRENCY_LIMIT_EXCEEDED"
    assert token_5xx.status_code == 503
    assert is_oauth_error(token_5xx, "temporarily_unavailable")


def test_vendors_with_a_token_endpoint_declare_it() -> None:
    assert isinstance(SalesforceErrors(), TokenEndpointErrors)
    assert SF_TOKEN in SalesforceErrors().token_paths
    assert isinstance(NetSuiteErrors(), TokenEndpointErrors)
    assert NetSuiteErrors().token_paths == frozenset({TOKEN_PATH})


@pytest.mark.parametrize("errors", [KantataErrors(), StripeErrors()])
def test_vendors_without_a_token_endpoint_keep_their_data_shapes(errors: object) -> None:
    injector = FaultInjector(FaultConfig(), errors, SandboxClock())  # type: ignore[arg-type]
    assert injector.token_errors is None
    assert injector._token_endpoint({"type": "http", "path": SF_TOKEN}) is None
