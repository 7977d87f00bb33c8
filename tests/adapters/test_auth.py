"""Token auth: caching, expiry, refresh on 401, single flight, JWT bearer, static keys."""

from __future__ import annotations

import base64
import json
import random
from urllib.parse import parse_qs

import httpx
import pytest
import trio
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from actors.errors import PermanentError, RetryableError
from adapters.auth import (
    BearerToken,
    OAuth2ClientCredentials,
    SalesforceJwtBearer,
    salesforce_client_credentials,
)
from adapters.backoff import RetryPolicy
from adapters.governor import Governor, GovernorConfig
from adapters.http import HttpConfig, SystemClient
from adapters.signals import SalesforceSignals

TOKEN_URL = "https://login.example.com/oauth2/token"


class Vendor:
    """A token endpoint and a data endpoint; tokens are tok-1, tok-2, …"""

    def __init__(self, *, expires_in: int | None = 3600, token_delay_s: float = 0.0) -> None:
        self.expires_in = expires_in
        self.token_delay_s = token_delay_s
        self.token_calls: list[httpx.Request] = []
        self.data_calls: list[httpx.Request] = []
        self.refused: set[str] = set()

    @property
    def current(self) -> str:
        return f"tok-{len(self.token_calls)}"

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url == TOKEN_URL:
            self.token_calls.append(request)
            await trio.sleep(self.token_delay_s)
            body = {"access_token": self.current, "token_type": "Bearer"}
            if self.expires_in is not None:
                body["expires_in"] = self.expires_in
            return httpx.Response(200, json=body)
        self.data_calls.append(request)
        token = request.headers["Authorization"].removeprefix("Bearer ")
        if token in self.refused or token != self.current:
            return httpx.Response(401, json=[{"errorCode": "INVALID_SESSION_ID", "message": "x"}])
        return httpx.Response(200, json={"token": token})


def client(vendor: Vendor, auth, *, max_concurrency: int = 100) -> SystemClient:
    return SystemClient(
        "crm",
        HttpConfig(base_url="https://org.my.salesforce.com/", retry=RetryPolicy(max_attempts=2)),
        auth=auth,
        governor=Governor(
            GovernorConfig(rate_per_s=1000.0, burst=1000, max_concurrency=max_concurrency)
        ),
        signals=SalesforceSignals(),
        transport=httpx.MockTransport(vendor),
        rng=random.Random(0),
    )


def credentials(**kwargs) -> OAuth2ClientCredentials:
    return OAuth2ClientCredentials(
        TOKEN_URL, client_id="cid", client_secret="csecret-value", system="crm", **kwargs
    )


async def test_token_is_fetched_once_and_cached(autojump_clock):
    vendor = Vendor()
    async with client(vendor, credentials()) as c:
        for _ in range(3):
            await c.request("GET", "services/data/v66.0/limits")
    assert len(vendor.token_calls) == 1
    form = parse_qs(vendor.token_calls[0].content.decode())
    assert form == {
        "grant_type": ["client_credentials"],
        "client_id": ["cid"],
        "client_secret": ["csecret-value"],
    }
    assert vendor.token_calls[0].headers["Content-Type"] == "application/x-www-form-urlencoded"


async def test_token_is_renewed_before_it_expires(autojump_clock):
    vendor = Vendor(expires_in=3600)
    async with client(vendor, credentials(refresh_margin_s=60.0)) as c:
        await c.request("GET", "a")
        await trio.sleep(3539.0)
        await c.request("GET", "b")
        assert len(vendor.token_calls) == 1
        await trio.sleep(2.0)
        await c.request("GET", "c")
    assert len(vendor.token_calls) == 2
    assert len(vendor.data_calls) == 3  # no request went out with a stale token


async def test_a_401_refreshes_the_token_and_retries_once(autojump_clock):
    vendor = Vendor(expires_in=None)  # Salesforce: no expires_in
    async with client(vendor, credentials()) as c:
        await c.request("GET", "a")
        vendor.refused.add("tok-1")  # the session times out on the vendor's side
        response = await c.request("GET", "b")
    assert response.json() == {"token": "tok-2"}
    assert len(vendor.token_calls) == 2


async def test_a_second_401_is_permanent(autojump_clock):
    vendor = Vendor()
    vendor.refused.update({"tok-1", "tok-2", "tok-3"})
    async with client(vendor, credentials()) as c:
        with pytest.raises(PermanentError) as caught:
            await c.request("GET", "a")
    assert caught.value.code == "INVALID_SESSION_ID"
    assert len(vendor.token_calls) == 2
    assert len(vendor.data_calls) == 2


async def test_fifty_concurrent_requests_fetch_one_token(autojump_clock):
    vendor = Vendor(token_delay_s=1.0)
    auth = credentials()
    async with client(vendor, auth) as c, trio.open_nursery() as nursery:
        for index in range(50):
            nursery.start_soon(c.request, "GET", f"records/{index}")
    assert len(vendor.token_calls) == 1
    assert len(vendor.data_calls) == 50
    assert auth.fetches == 1


async def test_fifty_requests_refused_together_cause_one_refresh(autojump_clock):
    vendor = Vendor(token_delay_s=1.0)
    async with client(vendor, credentials(), max_concurrency=10) as c:
        await c.request("GET", "warm-up")
        vendor.refused.add("tok-1")
        async with trio.open_nursery() as nursery:
            for index in range(50):
                nursery.start_soon(c.request, "GET", f"records/{index}")
    assert len(vendor.token_calls) == 2


async def test_the_token_call_carries_the_correlation_header(autojump_clock):
    vendor = Vendor()
    async with client(vendor, credentials()) as c:
        await c.request("GET", "a", correlation_id="corr-1")
    assert vendor.token_calls[0].headers["X-Correlation-ID"] == "corr-1"
    assert vendor.data_calls[0].headers["X-Correlation-ID"] == "corr-1"


@pytest.mark.parametrize(
    ("status", "error"),
    [(400, PermanentError), (401, PermanentError), (503, RetryableError)],
)
async def test_token_endpoint_failures_are_classified(autojump_clock, status, error):
    def handler(request):
        body = {"error": "invalid_client", "error_description": "bad csecret-value"}
        return httpx.Response(status, json=body)

    async with client(handler, credentials()) as c:
        with pytest.raises(error) as caught:
            await c.request("GET", "a")
    assert "csecret-value" not in str(caught.value)
    assert caught.value.system == "crm"


async def test_basic_client_authentication(autojump_clock):
    vendor = Vendor()
    async with client(vendor, credentials(client_auth="basic", scope="rest_webservices")) as c:
        await c.request("GET", "a")
    request = vendor.token_calls[0]
    expected = base64.b64encode(b"cid:csecret-value").decode()
    assert request.headers["Authorization"] == f"Basic {expected}"
    assert parse_qs(request.content.decode()) == {
        "grant_type": ["client_credentials"],
        "scope": ["rest_webservices"],
    }


def test_salesforce_client_credentials_use_the_my_domain_endpoint():
    auth = salesforce_client_credentials(
        "https://acme.my.salesforce.com/", client_id="cid", client_secret="s3cret"
    )
    assert auth.token_url == "https://acme.my.salesforce.com/services/oauth2/token"


async def test_a_static_key_is_sent_as_bearer_and_never_refreshed(autojump_clock):
    seen = []

    def handler(request):
        seen.append(request.headers["Authorization"])
        return httpx.Response(401, json={"error": {"type": "invalid_request_error"}})

    async with client(handler, BearerToken("sk_test_123456")) as c:
        with pytest.raises(PermanentError):
            await c.request("GET", "v1/customers")
    assert seen == ["Bearer sk_test_123456"]


class RevealingSecret:
    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value


class PydanticLikeSecret:
    def __init__(self, value: str) -> None:
        self._value = value

    def get_secret_value(self) -> str:
        return self._value


@pytest.mark.parametrize("secret", [RevealingSecret("key-123"), PydanticLikeSecret("key-123")])
async def test_secret_objects_are_accepted(autojump_clock, secret):
    seen = []

    def handler(request):
        seen.append(request.headers["Authorization"])
        return httpx.Response(200)

    async with client(handler, BearerToken(secret)) as c:
        await c.request("GET", "a")
    assert seen == ["Bearer key-123"]
    assert "key-123" not in repr(BearerToken(secret))


@pytest.fixture(scope="module")
def rsa_key():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return key, pem


def b64url_decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


async def test_salesforce_jwt_bearer_assertion(autojump_clock, rsa_key):
    key, pem = rsa_key
    assertions = []

    def handler(request):
        if request.url == TOKEN_URL:
            form = parse_qs(request.content.decode())
            assert form["grant_type"] == ["urn:ietf:params:oauth:grant-type:jwt-bearer"]
            assertions.append(form["assertion"][0])
            return httpx.Response(200, json={"access_token": "00Dxx!tok", "instance_url": "x"})
        return httpx.Response(200)

    auth = SalesforceJwtBearer(
        TOKEN_URL,
        client_id="3MVG9consumer",
        username="integration@acme.com",
        audience="https://login.salesforce.com",
        private_key_pem=pem,
        wall_clock=lambda: 1_800_000_000.0,
    )
    async with client(handler, auth) as c:
        await c.request("GET", "a")
    header, payload, signature = assertions[0].split(".")
    assert json.loads(b64url_decode(header)) == {"alg": "RS256"}
    assert json.loads(b64url_decode(payload)) == {
        "iss": "3MVG9consumer",
        "sub": "integration@acme.com",
        "aud": "https://login.salesforce.com",
        "exp": 1_800_000_180,
    }
    # verify() raises if the signature does not match
    key.public_key().verify(
        b64url_decode(signature),
        f"{header}.{payload}".encode(),
        padding.PKCS1v15(),
        hashes.SHA256(),
    )
    assert auth.current is not None
    assert auth.current.instance_url == "x"
    assert auth.current.expires_at is None  # kept until a 401
    assert pem in auth.secret_values()
