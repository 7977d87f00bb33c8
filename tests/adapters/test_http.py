"""The shared HTTP layer against httpx.MockTransport: classification, retries, deadlines."""

from __future__ import annotations

import itertools
import random
import ssl

import certifi
import httpx
import msgspec
import pytest
import structlog
import trio

from actors.errors import PermanentError, RetryableError, ThrottledError
from adapters.auth import BearerToken, OAuth2ClientCredentials
from adapters.backoff import RetryPolicy
from adapters.classify import ErrorSignals, parse_retry_after
from adapters.governor import Governor, GovernorConfig, Lane
from adapters.http import HttpConfig, SystemClient, make_http_client, make_ssl_context
from adapters.signals import KantataSignals, NetSuiteSignals, SalesforceSignals, StripeSignals

SEED = 1234


def client_for(
    handler,
    *,
    signals: ErrorSignals | None = None,
    max_attempts: int = 3,
    base_delay_s: float = 1.0,
    governor: Governor | None = None,
    auth=None,
    **config,
) -> SystemClient:
    retry = RetryPolicy(max_attempts=max_attempts, base_delay_s=base_delay_s, max_delay_s=60.0)
    return SystemClient(
        "crm",
        HttpConfig(base_url="https://vendor.example.com/api/", retry=retry, **config),
        auth=auth or BearerToken("sk_test_abcdef123456"),
        governor=governor
        or Governor(GovernorConfig(rate_per_s=1000.0, burst=1000, max_concurrency=100)),
        signals=signals,
        transport=httpx.MockTransport(handler),
        rng=random.Random(SEED),
        wall_clock=lambda: 1_800_000_000.0,
    )


def respond(status: int, body: object = None, headers: dict | None = None):
    content = msgspec.json.encode(body) if body is not None else b""
    return lambda request: httpx.Response(status, content=content, headers=headers)


SF_LIMIT = [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]
SF_ACCESS = [{"message": "no access", "errorCode": "INSUFFICIENT_ACCESS"}]
SF_FIELD = [{"message": "No such column", "errorCode": "INVALID_FIELD", "fields": ["Foo__c"]}]
SF_SESSION = [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
NS_CONTENT = {
    "title": "Bad Request",
    "status": 400,
    "o:errorDetails": [{"detail": "Invalid subsidiary.", "o:errorCode": "INVALID_CONTENT"}],
}
NS_RESTLET = {"o:errorDetails": [{"detail": "busy", "o:errorCode": "SSS_REQUEST_LIMIT_EXCEEDED"}]}
ST_MISSING = {
    "error": {"type": "invalid_request_error", "code": "resource_missing", "message": "x"}
}
KT_INVALID = {"errors": [{"type": "validation", "message": "Please give your project a title"}]}

CLASSIFICATION = [
    # signals, status, body, headers, error class, vendor code
    (None, 400, None, None, PermanentError, ""),
    (None, 404, None, None, PermanentError, ""),
    (None, 422, None, None, PermanentError, ""),
    (None, 501, None, None, PermanentError, ""),
    (None, 408, None, None, RetryableError, ""),
    (None, 500, None, None, RetryableError, ""),
    (None, 502, None, None, RetryableError, ""),
    (None, 503, None, None, RetryableError, ""),
    (None, 504, None, None, RetryableError, ""),
    (None, 429, None, None, ThrottledError, ""),
    (None, 503, None, {"Retry-After": "5"}, ThrottledError, ""),
    (None, 401, None, None, PermanentError, ""),  # a static key cannot be refreshed
    (SalesforceSignals(), 403, SF_LIMIT, None, ThrottledError, "REQUEST_LIMIT_EXCEEDED"),
    (SalesforceSignals(), 403, SF_ACCESS, None, PermanentError, "INSUFFICIENT_ACCESS"),
    (SalesforceSignals(), 400, SF_FIELD, None, PermanentError, "INVALID_FIELD"),
    (SalesforceSignals(), 401, SF_SESSION, None, PermanentError, "INVALID_SESSION_ID"),
    (SalesforceSignals(), 503, None, None, RetryableError, ""),
    (StripeSignals(), 429, None, None, ThrottledError, ""),
    (StripeSignals(), 404, ST_MISSING, None, PermanentError, "resource_missing"),
    (StripeSignals(), 500, None, {"Stripe-Should-Retry": "false"}, PermanentError, ""),
    (StripeSignals(), 409, None, {"Stripe-Should-Retry": "true"}, RetryableError, ""),
    (StripeSignals(), 409, None, None, PermanentError, ""),
    (NetSuiteSignals(), 429, None, None, ThrottledError, ""),
    (NetSuiteSignals(), 400, NS_CONTENT, None, PermanentError, "INVALID_CONTENT"),
    (NetSuiteSignals(), 400, NS_RESTLET, None, ThrottledError, "SSS_REQUEST_LIMIT_EXCEEDED"),
    (KantataSignals(), 429, None, None, ThrottledError, ""),
    (KantataSignals(), 422, KT_INVALID, None, PermanentError, "validation"),
]


@pytest.mark.parametrize(
    ("signals", "status", "body", "headers", "error", "code"),
    CLASSIFICATION,
    ids=[f"{type(c[0]).__name__}-{c[1]}-{c[5] or 'plain'}-{c[4].__name__}" for c in CLASSIFICATION],
)
async def test_classification_table(autojump_clock, signals, status, body, headers, error, code):
    async with client_for(respond(status, body, headers), signals=signals, max_attempts=1) as c:
        with pytest.raises(error) as caught:
            await c.request("GET", "records/1")
    assert type(caught.value) is error
    assert (caught.value.system, caught.value.status, caught.value.code) == ("crm", status, code)
    assert str(caught.value).startswith(f"crm: GET records/1 → {status}")


async def test_success_statuses_return_the_response(autojump_clock):
    async with client_for(respond(204)) as c:
        response = await c.request("PATCH", "sobjects/Account/Ext__c/1", idempotent=True)
    assert response.status_code == 204


async def test_retryable_failures_back_off_with_full_jitter_then_succeed(autojump_clock):
    times: list[float] = []

    def handler(request):
        times.append(trio.current_time())
        return httpx.Response(503 if len(times) < 3 else 200, json={"ok": True})

    async with client_for(handler, max_attempts=5, base_delay_s=2.0) as c:
        response = await c.request("GET", "records")
    assert response.json() == {"ok": True}
    # the same seeded draws: uniform(0, 2) then uniform(0, 4)
    rng = random.Random(SEED)
    policy = RetryPolicy(max_attempts=5, base_delay_s=2.0, max_delay_s=60.0)
    expected = [policy.delay_s(1, rng), policy.delay_s(2, rng)]
    assert [b - a for a, b in itertools.pairwise(times)] == pytest.approx(expected)
    assert 0 <= expected[0] <= 2.0
    assert 0 <= expected[1] <= 4.0


async def test_attempts_are_bounded(autojump_clock):
    calls = []

    def handler(request):
        calls.append(request)
        return httpx.Response(500)

    async with client_for(handler, max_attempts=4) as c:
        with pytest.raises(RetryableError) as caught:
            await c.request("GET", "records")
    assert len(calls) == 4
    assert caught.value.status == 500


async def test_a_post_that_may_have_acted_is_not_repeated(autojump_clock):
    calls = []

    def handler(request):
        calls.append(request)
        return httpx.Response(502)

    async with client_for(handler, signals=KantataSignals()) as c:
        with pytest.raises(RetryableError):
            await c.request("POST", "time_entries.json", json={"time_entry": {}})
    assert len(calls) == 1


async def test_a_post_with_an_idempotency_key_is_retried_with_the_same_key(autojump_clock):
    keys = []

    def handler(request):
        keys.append(request.headers["Idempotency-Key"])
        return httpx.Response(500 if len(keys) == 1 else 200, json={"id": "in_1"})

    async with client_for(handler, signals=StripeSignals()) as c:
        await c.request("POST", "invoices", data={"customer": "cus_1"}, idempotency_key="k-1")
    assert keys == ["k-1", "k-1"]


async def test_an_idempotency_key_for_a_vendor_without_one_is_refused(autojump_clock):
    async with client_for(respond(200)) as c:
        with pytest.raises(ValueError, match="idempotency"):
            await c.request("POST", "x", idempotency_key="k")


async def test_a_throttled_post_is_retried(autojump_clock):
    calls = []

    def handler(request):
        calls.append(request)
        return httpx.Response(429 if len(calls) == 1 else 201)

    async with client_for(handler, signals=KantataSignals()) as c:
        response = await c.request("POST", "workspaces.json", json={"workspace": {}})
    assert response.status_code == 201
    assert len(calls) == 2


async def test_retry_after_seconds_pauses_the_governor(autojump_clock):
    times: list[float] = []
    governor = Governor(GovernorConfig(rate_per_s=100.0, burst=10, max_concurrency=10))

    def handler(request):
        times.append(trio.current_time())
        if len(times) == 1:
            return httpx.Response(429, headers={"Retry-After": "7"})
        return httpx.Response(200)

    async with client_for(handler, governor=governor) as c:
        await c.request("GET", "records", lane=Lane.CRITICAL)
        # and other requests were held by the same pause
        assert governor.snapshot().throttle_count == 1
    assert times[1] - times[0] == 7.0


async def test_retry_after_http_date_is_read_against_the_response_date(autojump_clock):
    times: list[float] = []

    def handler(request):
        times.append(trio.current_time())
        if len(times) == 1:
            headers = {
                "Date": "Wed, 25 Nov 2026 22:00:00 GMT",
                "Retry-After": "Wed, 25 Nov 2026 22:00:30 GMT",
            }
            return httpx.Response(503, headers=headers)
        return httpx.Response(200)

    async with client_for(handler) as c:
        await c.request("GET", "records")
    assert times[1] - times[0] == 30.0


def test_retry_after_forms():
    now = 1_800_000_000.0
    assert parse_retry_after("120", now_epoch=now) == 120.0
    assert parse_retry_after("Fri, 15 Jan 2027 08:00:10 GMT", now_epoch=1_800_000_000.0) == 10.0
    assert parse_retry_after("-3", now_epoch=now) == 0.0
    assert parse_retry_after("soon", now_epoch=now) is None
    assert parse_retry_after("inf", now_epoch=now) is None
    assert parse_retry_after("nan", now_epoch=now) is None
    assert parse_retry_after("Thu, 01 Jan 2099 00:00:00 GMT", now_epoch=now) == 86_400.0
    assert parse_retry_after(None, now_epoch=now) is None


async def test_salesforce_limit_header_feeds_the_quota_view(autojump_clock):
    governor = Governor(GovernorConfig(rate_per_s=10.0, burst=10, max_concurrency=5))
    headers = {"Sforce-Limit-Info": "api-usage=10018/100000"}
    async with client_for(
        respond(200, {"done": True}, headers), signals=SalesforceSignals(), governor=governor
    ) as c:
        await c.request("GET", "query", params={"q": "SELECT Id FROM Account"})
    snapshot = governor.snapshot()
    assert (snapshot.quota_used, snapshot.quota_limit) == (10018, 100000)


async def test_every_request_carries_the_correlation_header(autojump_clock):
    seen = []

    def handler(request):
        seen.append(request.headers.get("X-Correlation-ID"))
        return httpx.Response(503 if len(seen) == 1 else 200)

    async with client_for(handler) as c:
        await c.request("GET", "a", correlation_id="run-42")
        await c.request("GET", "b")
    assert seen[:2] == ["run-42", "run-42"]  # the retry keeps its id
    assert len(seen[2]) == 32
    assert seen[2] != "run-42"


async def test_the_correlation_header_name_is_configurable(autojump_clock):
    seen = []

    def handler(request):
        seen.append(request.headers.get("X-Request-Trace"))
        return httpx.Response(200)

    async with client_for(handler, correlation_header="X-Request-Trace") as c:
        await c.request("GET", "a", correlation_id="abc")
    assert seen == ["abc"]


def all_subclasses(cls: type) -> list[type]:
    found = []
    for sub in cls.__subclasses__():
        found += [sub, *all_subclasses(sub)]
    return found


TRANSPORT_ERRORS = [httpx.TransportError, *all_subclasses(httpx.TransportError)]


def test_the_transport_error_walk_sees_the_whole_tree():
    names = {cls.__name__ for cls in TRANSPORT_ERRORS}
    assert {"ConnectError", "ReadTimeout", "RemoteProtocolError", "PoolTimeout"} <= names
    assert len(TRANSPORT_ERRORS) >= 16


@pytest.mark.parametrize("exc_type", TRANSPORT_ERRORS, ids=lambda cls: cls.__name__)
async def test_no_transport_error_is_left_unmapped(autojump_clock, exc_type):
    def handler(request):
        raise exc_type("boom", request=request)

    async with client_for(handler, max_attempts=1) as c:
        with pytest.raises(RetryableError) as caught:
            await c.request("GET", "records")
    assert caught.value.__cause__.__class__ is exc_type
    assert caught.value.code == exc_type.__name__
    assert caught.value.system == "crm"


async def test_transport_errors_are_retried(autojump_clock):
    calls = []

    def handler(request):
        calls.append(request)
        if len(calls) < 3:
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(200)

    async with client_for(handler) as c:
        await c.request("POST", "records", json={"a": 1})  # never sent, so safe to repeat
    assert len(calls) == 3


async def test_a_read_timeout_on_a_post_is_not_repeated(autojump_clock):
    calls = []

    def handler(request):
        calls.append(request)
        raise httpx.ReadTimeout("slow", request=request)

    async with client_for(handler) as c:
        with pytest.raises(RetryableError):
            await c.request("POST", "records", json={"a": 1})
    assert len(calls) == 1


async def test_the_deadline_is_a_trio_cancel_scope(autojump_clock):
    async def handler(request):
        await trio.sleep(100.0)
        return httpx.Response(200)

    start = trio.current_time()
    async with client_for(handler) as c:
        with pytest.raises(RetryableError) as caught:
            await c.request("GET", "slow", deadline_s=5.0)
    assert trio.current_time() - start == 5.0
    assert caught.value.code == "DEADLINE"
    assert isinstance(caught.value.__cause__, trio.TooSlowError)


async def test_the_deadline_covers_retries_and_backoff(autojump_clock):
    calls = []

    def handler(request):
        calls.append(request)
        return httpx.Response(503)

    start = trio.current_time()
    async with client_for(handler, max_attempts=100, base_delay_s=10.0) as c:
        with pytest.raises(RetryableError, match="deadline"):
            await c.request("GET", "records", deadline_s=30.0)
    assert trio.current_time() - start == 30.0
    assert 1 < len(calls) < 100


def test_tls_context_verifies_certificates_and_host_names():
    context = make_ssl_context()
    assert context.verify_mode is ssl.CERT_REQUIRED
    assert context.check_hostname


async def test_the_client_is_built_with_verification_on():
    client = make_http_client(HttpConfig(base_url="https://vendor.example.com/"))
    async with client:
        context = client._transport._pool._ssl_context  # httpx 0.28 internals, read only
        assert context.verify_mode is ssl.CERT_REQUIRED
        assert context.check_hostname
        assert client.follow_redirects is False
        assert client.timeout.connect == 10.0
        assert client.timeout.read == 60.0


@pytest.mark.parametrize(
    "config",
    [
        {"base_url": "https://vendor.example.com/", "verify": False},
        {"base_url": "https://vendor.example.com/", "tls_verify": False},
        {"base_url": "http://vendor.example.com/"},
    ],
)
def test_configuration_cannot_turn_tls_off(config):
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert(config, HttpConfig)


def test_plain_http_is_allowed_for_the_loopback_sandbox():
    assert msgspec.convert({"base_url": "http://127.0.0.1:8081/"}, HttpConfig)
    assert msgspec.convert({"base_url": "http://localhost:8081/"}, HttpConfig)


def test_a_private_ca_bundle_is_explicit_and_logged():
    with structlog.testing.capture_logs() as logs:
        context = make_ssl_context(certifi.where(), system="erp")
    assert context.verify_mode is ssl.CERT_REQUIRED
    assert logs == [
        {
            "event": "http.ca_bundle",
            "system": "erp",
            "ca_bundle": certifi.where(),
            "log_level": "info",
        }
    ]


async def test_a_throttle_without_retry_after_waits_the_throttle_backoff(autojump_clock):
    times: list[float] = []
    governor = Governor(GovernorConfig(rate_per_s=100.0, burst=10, max_concurrency=10))

    def handler(request):
        times.append(trio.current_time())
        return httpx.Response(429 if len(times) == 1 else 200)

    async with client_for(handler, signals=KantataSignals(), governor=governor) as c:
        await c.request("GET", "workspaces.json")
    policy = RetryPolicy(max_attempts=3, base_delay_s=1.0, max_delay_s=60.0)
    expected = policy.delay_s(1, random.Random(SEED), throttled=True)
    assert times[1] - times[0] == pytest.approx(expected)
    assert governor.snapshot().effective_rate_per_s == pytest.approx(50.0)  # AIMD cut


async def test_a_throttled_token_endpoint_pauses_the_governor(autojump_clock):
    times: list[float] = []

    def handler(request):
        if request.url.path == "/token":
            times.append(trio.current_time())
            if len(times) == 1:
                return httpx.Response(429, headers={"Retry-After": "12"})
            return httpx.Response(200, json={"access_token": "t", "expires_in": 60})
        return httpx.Response(200)

    auth = OAuth2ClientCredentials(
        "https://vendor.example.com/token", client_id="c", client_secret="secret-1"
    )
    async with client_for(handler, auth=auth) as c:
        await c.request("POST", "records", json={"a": 1})  # never sent, so retried
    assert times[1] - times[0] == 12.0


async def test_json_bodies_are_encoded_with_msgspec(autojump_clock):
    class Entry(msgspec.Struct):
        hours: float
        note: str

    seen = []

    def handler(request):
        seen.append((request.headers["Content-Type"], request.content))
        return httpx.Response(201)

    async with client_for(handler) as c:
        await c.request("POST", "entries", json=Entry(hours=1.5, note="ok"))
    assert seen == [("application/json", b'{"hours":1.5,"note":"ok"}')]


async def test_an_asgi_app_can_stand_in_for_the_vendor(autojump_clock):
    calls = []

    async def app(scope, receive, send):
        calls.append(dict(scope["headers"]))
        status = 503 if len(calls) == 1 else 200
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b'{"ok":true}'})

    async with SystemClient(
        "psa",
        HttpConfig(base_url="http://127.0.0.1:9/api/"),
        auth=BearerToken("kantata-token"),
        governor=Governor(GovernorConfig(rate_per_s=5.0, burst=1, max_concurrency=1)),
        signals=KantataSignals(),
        transport=httpx.ASGITransport(app=app),
        rng=random.Random(SEED),
    ) as c:
        response = await c.request("GET", "workspaces.json")
    assert response.json() == {"ok": True}
    assert len(calls) == 2
    assert calls[0][b"authorization"] == b"Bearer kantata-token"
    assert b"x-correlation-id" in calls[0]
