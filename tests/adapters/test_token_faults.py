"""A token endpoint in trouble: what is retried, what is permanent, and that nothing wedges.

Unit tests drive :class:`~adapters.auth.CachedTokenAuth` through ``httpx.MockTransport``;
the end-to-end tests log in through the in-process sandbox with its fault injector on.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import trio
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from structlog.testing import capture_logs

from actors.errors import AdapterError, PermanentError, RetryableError, ThrottledError
from adapters.auth import (
    NetSuiteM2M,
    OAuth2ClientCredentials,
    netsuite_token_url,
    salesforce_client_credentials,
)
from adapters.backoff import RetryPolicy
from adapters.governor import Governor, GovernorConfig
from adapters.http import HttpConfig, SystemClient
from adapters.mapping import load_mapping
from adapters.salesforce import SalesforceOptions, create_adapter
from adapters.sandbox import FaultConfig, SandboxClock, SandboxConfig, build_sandbox
from adapters.sandbox.faults import FaultInjector
from adapters.sandbox.netsuite import TOKEN_PATH as NS_TOKEN_PATH
from adapters.sandbox.netsuite import create_vendor as create_netsuite
from adapters.signals import NetSuiteSignals, SalesforceSignals

TOKEN_URL = "https://login.example.com/services/oauth2/token"
SECRET = "csecret-value-7f3a"
START = 1_767_225_600.0  # 2026-01-01T00:00:00Z

Reply = Callable[[], httpx.Response]


def oauth(status: int, error: str, description: str = "") -> Reply:
    return lambda: httpx.Response(status, json={"error": error, "error_description": description})


def raw(status: int, content: bytes = b"") -> Reply:
    return lambda: httpx.Response(status, content=content)


class TokenEndpoint:
    """Answers token calls from ``script`` in order, then with tok-1, tok-2, …"""

    def __init__(self, *script: Reply, delay_s: float = 0.0) -> None:
        self.script = list(script)
        self.delay_s = delay_s
        self.token_calls = 0
        self.issued = 0
        self.data_calls = 0

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url != TOKEN_URL:
            self.data_calls += 1
            return httpx.Response(200, json={"auth": request.headers["Authorization"]})
        self.token_calls += 1
        await trio.sleep(self.delay_s)
        if self.script:
            return self.script.pop(0)()
        self.issued += 1
        return httpx.Response(200, json={"access_token": f"tok-{self.issued}"})


def credentials(**kwargs) -> OAuth2ClientCredentials:
    return OAuth2ClientCredentials(
        TOKEN_URL, client_id="cid", client_secret=SECRET, system="crm", **kwargs
    )


def http_for(endpoint: TokenEndpoint) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.MockTransport(endpoint))


def system_client(endpoint: TokenEndpoint, auth, *, max_attempts: int = 5) -> SystemClient:
    return SystemClient(
        "crm",
        HttpConfig(
            base_url="https://org.my.salesforce.com/",
            retry=RetryPolicy(max_attempts=max_attempts),
        ),
        auth=auth,
        governor=Governor(GovernorConfig(rate_per_s=1000.0, burst=1000, max_concurrency=50)),
        signals=SalesforceSignals(),
        transport=httpx.MockTransport(endpoint),
        rng=random.Random(0),
    )


# -- classification ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "error", "code"),
    [
        (raw(503, b"<html>Down for maintenance</html>"), RetryableError, ""),
        (raw(500), RetryableError, ""),
        (raw(502), RetryableError, ""),
        (raw(504), RetryableError, ""),
        (raw(408), RetryableError, ""),
        (oauth(503, "temporarily_unavailable"), RetryableError, "temporarily_unavailable"),
        (oauth(400, "temporarily_unavailable"), RetryableError, "temporarily_unavailable"),
        (raw(429), ThrottledError, ""),
        # Salesforce's login rate limit, sent as a 400 in OAuth form.
        (oauth(400, "rate_limit_exceeded", "Number of logins exceeded"), ThrottledError, ""),
        (oauth(400, "invalid_client", "invalid client credentials"), PermanentError, ""),
        (oauth(400, "invalid_grant", "authentication failure"), PermanentError, ""),
        (oauth(400, "unauthorized_client", "flow not enabled"), PermanentError, ""),
        (oauth(401, "invalid_client", "bad secret"), PermanentError, ""),
        (raw(401), PermanentError, ""),
        (oauth(400, "unsupported_grant_type"), PermanentError, ""),
        (raw(404, b"<html>Not Found</html>"), PermanentError, ""),
        # A data API's error array is no OAuth answer: the 403 alone decides.
        (
            lambda: httpx.Response(403, json=[{"errorCode": "REQUEST_LIMIT_EXCEEDED"}]),
            PermanentError,
            "",
        ),
    ],
)
async def test_token_endpoint_answers_are_classified(autojump_clock, reply, error, code):
    endpoint = TokenEndpoint(reply)
    auth = credentials()
    async with http_for(endpoint) as http:
        with pytest.raises(AdapterError) as caught:
            await auth.token(http)
    assert type(caught.value) is error
    assert caught.value.system == "crm"
    if code:
        assert caught.value.code == code


@pytest.mark.parametrize(
    "content",
    [b'{"access_token": "tok', b"<html>oops</html>", b"", b'{"access_token": ""}', b"[]"],
)
async def test_a_garbled_token_body_is_retryable(autojump_clock, content):
    endpoint = TokenEndpoint(raw(200, content))
    auth = credentials()
    async with http_for(endpoint) as http:
        with pytest.raises(RetryableError) as caught:
            await auth.token(http)
        assert type(caught.value) is RetryableError
        assert caught.value.code == "BAD_TOKEN_RESPONSE"
        # Nothing was cached: the next call fetches and succeeds.
        assert (await auth.token(http)).value == "tok-1"
    assert endpoint.token_calls == 2


async def test_invalid_client_is_permanent_with_a_clear_message_and_no_secret(autojump_clock):
    # Given a token endpoint that refuses the client and echoes the secret back
    echo = oauth(400, "invalid_client", f"client secret {SECRET} does not match")
    endpoint = TokenEndpoint(echo)

    # When a request needs a token
    with capture_logs() as logs:
        async with system_client(endpoint, credentials()) as client:
            with pytest.raises(PermanentError) as caught:
                await client.request("GET", "services/data/v66.0/limits")

    # Then it fails at once, saying what the endpoint said, without the secret
    error = caught.value
    assert (error.status, error.code) == (400, "invalid_client")
    assert "invalid_client" in str(error)
    assert "does not match" in str(error)
    assert "/services/oauth2/token" in str(error)
    assert SECRET not in str(error)
    assert SECRET not in repr(logs)
    assert endpoint.token_calls == 1
    assert endpoint.data_calls == 0


async def test_a_token_endpoint_that_never_answers_times_out_as_retryable(autojump_clock):
    async def silent(request: httpx.Request) -> httpx.Response:
        await trio.sleep_forever()
        raise AssertionError("unreachable")

    auth = credentials(deadline_s=12.0)
    async with httpx.AsyncClient(transport=httpx.MockTransport(silent)) as http:
        started = trio.current_time()
        with pytest.raises(RetryableError) as caught:
            await auth.token(http)
    assert caught.value.code == "DEADLINE"
    assert trio.current_time() - started == pytest.approx(12.0)


async def test_a_connection_failure_is_retryable(autojump_clock):
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(refuse)) as http:
        with pytest.raises(RetryableError) as caught:
            await credentials().token(http)
    assert caught.value.code == "ConnectError"


# -- single flight after failures ------------------------------------------------------


async def test_tasks_queued_behind_a_failing_fetch_share_its_failure(autojump_clock):
    # Given a slow token endpoint that fails once
    endpoint = TokenEndpoint(raw(503), delay_s=1.0)
    auth = credentials()
    failures: list[BaseException] = []

    async def want_token(http: httpx.AsyncClient) -> None:
        try:
            await auth.token(http)
        except RetryableError as exc:
            failures.append(exc)

    async with http_for(endpoint) as http:
        # When ten tasks want a token at once
        async with trio.open_nursery() as nursery:
            for _ in range(10):
                nursery.start_soon(want_token, http)

        # Then one call reached the endpoint and every task got its own copy of the failure
        assert endpoint.token_calls == 1
        assert len(failures) == 10
        assert len({id(failure) for failure in failures}) == 10
        assert {failure.status for failure in failures} == {503}

        # And the next task tries again: the failure was not cached
        assert (await auth.token(http)).value == "tok-1"
    assert endpoint.token_calls == 2


async def test_concurrent_callers_after_a_failed_fetch_make_one_new_fetch(autojump_clock):
    # Given a fetch that failed
    endpoint = TokenEndpoint(raw(503), delay_s=0.5)
    auth = credentials()
    async with http_for(endpoint) as http:
        with pytest.raises(RetryableError):
            await auth.token(http)
    assert endpoint.token_calls == 1

    # When twenty requests start together
    async with system_client(endpoint, auth) as client, trio.open_nursery() as nursery:
        for index in range(20):
            nursery.start_soon(client.request, "GET", f"records/{index}")

    # Then exactly one new token call was made and every request used its token
    assert endpoint.token_calls == 2
    assert endpoint.data_calls == 20
    assert auth.fetches == 2


async def test_a_permanent_failure_is_not_cached_either(autojump_clock):
    endpoint = TokenEndpoint(oauth(400, "invalid_client"))
    auth = credentials()
    async with http_for(endpoint) as http:
        with pytest.raises(PermanentError):
            await auth.token(http)
        # The secret was rotated on the vendor's side meanwhile: the next call succeeds.
        assert (await auth.token(http)).value == "tok-1"


async def test_a_cancelled_fetch_does_not_wedge_the_lock(autojump_clock):
    endpoint = TokenEndpoint(delay_s=10.0)
    auth = credentials()
    async with http_for(endpoint) as http:
        with trio.move_on_after(1.0):
            await auth.token(http)
        endpoint.delay_s = 0.0
        with trio.fail_after(1.0):
            assert (await auth.token(http)).value == "tok-1"
    assert endpoint.token_calls == 2  # the cancelled call never got its answer


# -- through SystemClient ------------------------------------------------------------------


async def test_system_client_retries_a_transient_token_failure_with_backoff(autojump_clock):
    # Given a token endpoint that fails twice (a 503, then an HTML 502)
    endpoint = TokenEndpoint(raw(503), raw(502, b"<html>Bad gateway</html>"))
    with capture_logs() as logs:
        async with system_client(endpoint, credentials()) as client:
            started = trio.current_time()
            # When a request needs a token
            response = await client.request("GET", "services/data/v66.0/limits")
            elapsed = trio.current_time() - started

    # Then the request went through after two retries, each after a backoff pause
    assert response.json() == {"auth": "Bearer tok-1"}
    assert (endpoint.token_calls, endpoint.data_calls) == (3, 1)
    retries = [entry for entry in logs if entry["event"] == "http.retry"]
    assert [entry["status"] for entry in retries] == [503, 502]
    assert all(entry["delay_s"] > 0 for entry in retries)
    assert elapsed == pytest.approx(sum(entry["delay_s"] for entry in retries))


async def test_a_token_throttle_with_retry_after_waits_that_long(autojump_clock):
    endpoint = TokenEndpoint(lambda: httpx.Response(429, headers={"Retry-After": "7"}))
    async with system_client(endpoint, credentials()) as client:
        started = trio.current_time()
        await client.request("GET", "a")
        assert trio.current_time() - started >= 7.0
        assert client.governor.snapshot().throttle_count == 1
    assert endpoint.token_calls == 2


async def test_a_token_endpoint_down_for_good_ends_retryable_not_permanent(autojump_clock):
    endpoint = TokenEndpoint(*[raw(503)] * 10)
    async with system_client(endpoint, credentials(), max_attempts=3) as client:
        with pytest.raises(RetryableError) as caught:
            await client.request("POST", "a", json={"x": 1})  # not idempotent: still safe
    assert type(caught.value) is RetryableError
    assert endpoint.token_calls == 3
    assert endpoint.data_calls == 0


# -- end to end through the sandbox ------------------------------------------------------

SF_BASE = "https://pssync-sandbox.my.salesforce.com"
MAPPING = Path(__file__).resolve().parents[2] / "config" / "mappings" / "salesforce.toml"


class Recorder(httpx.AsyncBaseTransport):
    """The sandbox over ASGI, keeping (path, status, body) of every exchange."""

    def __init__(self, app) -> None:
        self.inner = httpx.ASGITransport(app=app)
        self.seen: list[tuple[str, int, bytes]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        body = await response.aread()
        self.seen.append((request.url.path, response.status_code, body))
        return httpx.Response(
            response.status_code, headers=response.headers, content=body, request=request
        )


async def test_a_salesforce_login_through_a_503_and_a_throttle_burst_completes(autojump_clock):
    # Given the simulated org, and faults that hit the first login with a 503 and then a
    # throttle burst (requests 2-3, 5-6, … are throttled; seed 22 fails request 1 only)
    clock = SandboxClock(start=START, monotonic_source=trio.current_time)
    sandbox = build_sandbox(SandboxConfig(vendors=("salesforce",), seed_data=True), clock=clock)
    sandbox.injectors["salesforce"].configure(
        FaultConfig(
            error_rate=0.5, error_status=503, burst_429_every=1, burst_429_length=2, seed=22
        )
    )
    transport = Recorder(sandbox.apps["salesforce"])
    vendor_credentials = sandbox.vendors["salesforce"].credentials
    client = SystemClient(
        "crm",
        HttpConfig(base_url=SF_BASE, retry=RetryPolicy(max_attempts=8)),
        auth=salesforce_client_credentials(
            SF_BASE,
            client_id=vendor_credentials["client_id"],
            client_secret=vendor_credentials["client_secret"],
            system="crm",
        ),
        governor=Governor(GovernorConfig(rate_per_s=1000.0, burst=1000, max_concurrency=8)),
        signals=SalesforceSignals(),
        transport=transport,
        rng=random.Random(0),
    )
    adapter = create_adapter(
        system="crm",
        client=client,
        mappings=load_mapping(MAPPING),
        options=SalesforceOptions(),
    )

    # When the adapter polls its first feed
    try:
        accounts = next(f for f in adapter.feeds() if f.name == "changed_accounts")
        page = await accounts.poll(None, limit=5)
    finally:
        await adapter.aclose()

    # Then the login got through a 503 and two rate-limit answers, and the poll completed
    logins = [(status, body) for path, status, body in transport.seen if "oauth2" in path]
    assert [status for status, _ in logins] == [503, 400, 400, 200]
    assert b"temporarily_unavailable" in logins[0][1]
    assert all(b"rate_limit_exceeded" in body for _, body in logins[1:3])
    assert page.envelopes
    assert client.auth.fetches == 4
    stats = sandbox.injectors["salesforce"].stats
    assert stats.errors >= 1
    assert stats.throttled >= 2


@pytest.fixture(scope="module")
def rsa_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


async def test_a_netsuite_m2m_login_through_a_timeout_and_a_503_completes(autojump_clock, rsa_pem):
    # Given the simulated NetSuite whose first token call hangs and second gets a 503
    base = "https://1234567-sb1.suitetalk.api.netsuite.com"
    clock = SandboxClock(start=START, monotonic_source=trio.current_time)
    vendor = create_netsuite(
        clock=clock,
        seed=7,
        credentials={"client_id": "m2m-client", "certificate_id": "cert-1", "private_key": rsa_pem},
    )
    injector = FaultInjector(
        FaultConfig(timeout_rate=0.5, error_rate=0.5, error_status=503, seed=400),
        vendor.errors,
        clock,
    )
    transport = Recorder(injector.wrap(vendor.app))
    auth = NetSuiteM2M(
        netsuite_token_url(base),
        client_id="m2m-client",
        certificate_id="cert-1",
        private_key_pem=rsa_pem,
        wall_clock=clock.now,
        system="erp",
        deadline_s=20.0,
    )
    client = SystemClient(
        "erp",
        HttpConfig(base_url=base, retry=RetryPolicy(max_attempts=4)),
        auth=auth,
        governor=Governor(GovernorConfig(rate_per_s=1000.0, burst=1000, max_concurrency=4)),
        signals=NetSuiteSignals(),
        transport=transport,
        rng=random.Random(0),
    )

    # When a record list is read
    async with client:
        started = trio.current_time()
        response = await client.request("GET", "/services/rest/record/v1/customer")

    # Then the hung call ran into the deadline, the 503 was retried, and the read succeeded
    assert response.status_code == 200
    assert [(path, status) for path, status, _ in transport.seen] == [
        (NS_TOKEN_PATH, 503),
        (NS_TOKEN_PATH, 200),
        ("/services/rest/record/v1/customer", 200),
    ]
    assert b"temporarily_unavailable" in transport.seen[0][2]
    assert injector.stats.timeouts == 1
    assert trio.current_time() - started >= 20.0
    assert auth.fetches == 3
