"""NetSuite M2M auth: assertion shape and signatures, token caching, renewal, single flight."""

from __future__ import annotations

import base64
import json
import random
from urllib.parse import parse_qs

import httpx
import pytest
import structlog
import trio
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from actors.errors import PermanentError
from adapters import NetSuiteM2M as ReExported
from adapters.auth import NetSuiteM2M, netsuite_token_url
from adapters.backoff import RetryPolicy
from adapters.governor import Governor, GovernorConfig
from adapters.http import HttpConfig, SystemClient
from adapters.signals import NetSuiteSignals

BASE = "https://1234567-sb1.suitetalk.api.netsuite.com"
TOKEN_URL = f"{BASE}/services/rest/auth/oauth2/v1/token"
NOW = 1_800_000_000.0


def pem_of(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def b64url_decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def decode(assertion: str) -> tuple[dict, dict, bytes, bytes]:
    header, payload, signature = assertion.split(".")
    return (
        json.loads(b64url_decode(header)),
        json.loads(b64url_decode(payload)),
        b64url_decode(signature),
        f"{header}.{payload}".encode(),
    )


class Vendor:
    """NetSuite's token endpoint and a record endpoint; tokens are tok-1, tok-2, …"""

    def __init__(self, *, expires_in: object = 3600, token_delay_s: float = 0.0) -> None:
        self.expires_in = expires_in
        self.token_delay_s = token_delay_s
        self.token_calls: list[httpx.Request] = []
        self.data_calls: list[httpx.Request] = []

    @property
    def assertions(self) -> list[str]:
        return [parse_qs(r.content.decode())["client_assertion"][0] for r in self.token_calls]

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url == TOKEN_URL:
            self.token_calls.append(request)
            await trio.sleep(self.token_delay_s)
            body = {
                "access_token": f"tok-{len(self.token_calls)}",
                "expires_in": self.expires_in,
                "token_type": "Bearer",
            }
            return httpx.Response(200, json=body)
        self.data_calls.append(request)
        return httpx.Response(200, json={"auth": request.headers["Authorization"]})


def m2m(key_pem: str, **changes) -> NetSuiteM2M:
    options = {
        "client_id": "c1ient",
        "certificate_id": "cert-1",
        "private_key_pem": key_pem,
        "wall_clock": lambda: NOW,
        "jti": lambda: "jti-1",
        "system": "erp",
    }
    return NetSuiteM2M(TOKEN_URL, **(options | changes))


def client(handler, auth: NetSuiteM2M) -> SystemClient:
    return SystemClient(
        "erp",
        HttpConfig(base_url=BASE, retry=RetryPolicy(max_attempts=2)),
        auth=auth,
        governor=Governor(GovernorConfig(rate_per_s=1000.0, burst=1000, max_concurrency=100)),
        signals=NetSuiteSignals(),
        transport=httpx.MockTransport(handler),
        rng=random.Random(0),
    )


# ----------------------------------------------------------------------------- assertion


async def test_token_request_carries_a_ps256_assertion_netsuite_accepts(autojump_clock, rsa_key):
    # Given an RSA key (PS256 by default)
    vendor = Vendor()
    async with client(vendor, m2m(pem_of(rsa_key))) as c:
        await c.request("GET", "services/rest/record/v1/customer/1")

    # Then the token call is the documented form
    request = vendor.token_calls[0]
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    form = parse_qs(request.content.decode())
    assert form["grant_type"] == ["client_credentials"]
    assert form["client_assertion_type"] == [
        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    ]
    # and the assertion has NetSuite's header and claims
    header, claims, signature, signing_input = decode(form["client_assertion"][0])
    assert header == {"typ": "JWT", "alg": "PS256", "kid": "cert-1"}
    assert claims == {
        "iss": "c1ient",
        "scope": "rest_webservices",
        "aud": TOKEN_URL,
        "iat": 1_800_000_000,
        "exp": 1_800_000_300,
        "jti": "jti-1",
    }
    # and is signed RSASSA-PSS, MGF1-SHA256, 32-byte salt (verify() raises otherwise)
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
    rsa_key.public_key().verify(signature, signing_input, pss, hashes.SHA256())
    # and not PKCS#1 v1.5 (RS256), which NetSuite refuses
    with pytest.raises(InvalidSignature):
        rsa_key.public_key().verify(signature, signing_input, padding.PKCS1v15(), hashes.SHA256())
    assert vendor.data_calls[0].headers["Authorization"] == "Bearer tok-1"


async def test_an_ec_key_signs_es256_as_raw_r_and_s(autojump_clock, ec_key):
    vendor = Vendor()
    auth = m2m(pem_of(ec_key))
    async with client(vendor, auth) as c:
        await c.request("GET", "a")

    header, _, signature, signing_input = decode(vendor.assertions[0])
    assert header["alg"] == "ES256"
    assert len(signature) == 64  # r || s, 32 bytes each — not DER
    r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    ec_key.public_key().verify(encode_dss_signature(r, s), signing_input, ec.ECDSA(hashes.SHA256()))


def test_scopes_are_joined_by_commas(rsa_key):
    auth = m2m(pem_of(rsa_key), scope=("rest_webservices", "restlets"))

    _, claims, _, _ = decode(auth.assertion())

    assert claims["scope"] == "rest_webservices,restlets"


def test_each_assertion_gets_a_fresh_jti_by_default(rsa_key):
    auth = NetSuiteM2M(
        TOKEN_URL, client_id="c", certificate_id="k", private_key_pem=pem_of(rsa_key)
    )

    first, second = decode(auth.assertion())[1], decode(auth.assertion())[1]

    assert first["jti"] != second["jti"]
    assert first["exp"] - first["iat"] == 300


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"lifetime_s": 3601}, "lifetime_s"),
        ({"lifetime_s": 0}, "lifetime_s"),
        ({"algorithm": "RS256"}, "algorithm must be one of"),
        ({"algorithm": "ES256"}, "ES256 needs an EC private key"),
        ({"scope": ()}, "scope"),
    ],
)
def test_bad_settings_fail_at_construction(rsa_key, changes, message):
    with pytest.raises(ValueError, match=message):
        m2m(pem_of(rsa_key), **changes)


def test_an_ec_key_cannot_sign_ps256(ec_key):
    with pytest.raises(ValueError, match="PS256 needs an RSA private key"):
        m2m(pem_of(ec_key), algorithm="PS256")


def test_a_garbled_key_is_refused_without_quoting_it(rsa_key):
    pem = pem_of(rsa_key)
    garbled = pem.replace("A", "B", 40)

    with pytest.raises(ValueError, match="not an unencrypted PEM private key") as caught:
        m2m(garbled)

    body_lines = [line for line in garbled.splitlines() if not line.startswith("-----")]
    assert not any(line in str(caught.value) for line in body_lines)
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__


def test_token_url_from_base_url():
    assert netsuite_token_url(BASE) == TOKEN_URL
    assert netsuite_token_url(f"{BASE}/services/rest/") == TOKEN_URL
    assert (
        netsuite_token_url("http://127.0.0.1:8003")
        == "http://127.0.0.1:8003/services/rest/auth/oauth2/v1/token"
    )


def test_reexported_from_adapters():
    assert ReExported is NetSuiteM2M


# ----------------------------------------------------------------------------- caching


async def test_token_is_cached_and_renewed_with_a_new_assertion_before_expiry(
    autojump_clock, rsa_key
):
    # Given a wall clock that follows trio's (assertions must change over time)
    vendor = Vendor(expires_in=3600)
    auth = NetSuiteM2M(
        TOKEN_URL,
        client_id="c1ient",
        certificate_id="cert-1",
        private_key_pem=pem_of(rsa_key),
        wall_clock=lambda: NOW + trio.current_time(),
        refresh_margin_s=60.0,
    )
    async with client(vendor, auth) as c:
        await c.request("GET", "a")
        await trio.sleep(3539.0)
        await c.request("GET", "b")
        assert len(vendor.token_calls) == 1  # still cached 61 s before expiry
        await trio.sleep(2.0)
        await c.request("GET", "c")

    # Then the token was renewed before it expired, with a freshly minted assertion
    assert len(vendor.token_calls) == 2
    assert [r.headers["Authorization"] for r in vendor.data_calls] == [
        "Bearer tok-1",
        "Bearer tok-1",
        "Bearer tok-2",
    ]
    first, second = (decode(a)[1] for a in vendor.assertions)
    assert second["iat"] - first["iat"] >= 3540
    assert first["jti"] != second["jti"]


async def test_expires_in_as_a_string_is_understood(autojump_clock, rsa_key):
    vendor = Vendor(expires_in="3600")
    async with client(vendor, m2m(pem_of(rsa_key))) as c:
        await c.request("GET", "a")
        await trio.sleep(3600.0)
        await c.request("GET", "b")

    assert len(vendor.token_calls) == 2


async def test_fifty_concurrent_requests_make_one_token_call(autojump_clock, rsa_key):
    vendor = Vendor(token_delay_s=1.0)
    auth = m2m(pem_of(rsa_key))
    async with client(vendor, auth) as c, trio.open_nursery() as nursery:
        for index in range(50):
            nursery.start_soon(c.request, "GET", f"services/rest/record/v1/customer/{index}")

    assert len(vendor.token_calls) == 1
    assert auth.fetches == 1
    assert len(vendor.data_calls) == 50
    assert {r.headers["Authorization"] for r in vendor.data_calls} == {"Bearer tok-1"}


async def test_a_401_mints_a_new_assertion_and_retries_once(autojump_clock, rsa_key):
    # Given a vendor that refuses the first token (e.g. revoked on its side)
    vendor = Vendor()
    login_failed = {"o:errorDetails": [{"detail": "x", "o:errorCode": "INVALID_LOGIN_ATTEMPT"}]}

    async def handler(request: httpx.Request) -> httpx.Response:
        if request.url != TOKEN_URL and request.headers["Authorization"] == "Bearer tok-1":
            vendor.data_calls.append(request)
            return httpx.Response(401, json=login_failed)
        return await vendor(request)

    async with client(handler, m2m(pem_of(rsa_key))) as c:
        response = await c.request("GET", "a")

    assert response.json() == {"auth": "Bearer tok-2"}
    assert len(vendor.token_calls) == 2
    assert len(vendor.data_calls) == 2  # the refused one and the retry


# ----------------------------------------------------------------------------- secrets


async def test_a_refused_assertion_is_permanent_and_the_key_never_leaks(autojump_clock, rsa_key):
    pem = pem_of(rsa_key)
    key_lines = [line for line in pem.splitlines() if len(line) >= 16 and "-----" not in line]

    def handler(request: httpx.Request) -> httpx.Response:
        # A (hypothetical) vendor echoing the key back must not get it into our messages.
        body = {"error": "invalid_grant", "error_description": f"bad key {key_lines[3]}"}
        return httpx.Response(400, json=body)

    auth = m2m(pem)
    with structlog.testing.capture_logs() as logs:
        async with client(handler, auth) as c:
            with pytest.raises(PermanentError) as caught:
                await c.request("GET", "a")

    error = caught.value
    assert error.code == "invalid_grant"
    assert error.status == 400
    text = " ".join([str(error), repr(error), repr(auth), repr(logs)])
    assert "invalid_grant" in str(error)
    assert not any(line in text for line in key_lines)
    assert pem in auth.secret_values()
    assert set(key_lines) <= set(auth.secret_values())
