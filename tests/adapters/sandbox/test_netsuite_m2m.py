"""The simulated NetSuite's M2M token endpoint and bearer tokens, beside TBA."""

from __future__ import annotations

import base64
import json
import random
import re
from typing import Any

import httpx
import pytest
import structlog
import trio
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from actors.errors import PermanentError
from adapters.auth import NetSuiteM2M, netsuite_token_url
from adapters.backoff import RetryPolicy
from adapters.governor import Governor, GovernorConfig
from adapters.http import HttpConfig, SystemClient
from adapters.sandbox.clock import SandboxClock
from adapters.sandbox.netsuite import (
    TOKEN_PATH,
    TbaCredentials,
    authorization_header,
    create_vendor,
    demo_m2m_credentials,
)
from adapters.sandbox.vendor import Vendor
from adapters.signals import NetSuiteSignals

BASE = "https://1234567-sb1.suitetalk.api.netsuite.com"
TOKEN_URL = BASE + TOKEN_PATH
RECORDS = "/services/rest/record/v1"
START = 1_767_225_600.0  # 2026-01-01T00:00:00Z
CLIENT_ID = "9f2c1e0b7d6a5c4b3a29180f7e6d5c4b3a29180f7e6d5c4b3a29180f7e6d5c4b"
CERTIFICATE_ID = "cert-M2M-1"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def pem_of(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def public_pem_of(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def other_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def clock() -> SandboxClock:
    return SandboxClock(start=START, monotonic_source=trio.current_time)


@pytest.fixture
async def vendor(clock: SandboxClock, rsa_key: rsa.RSAPrivateKey) -> Vendor:
    credentials = {
        "client_id": CLIENT_ID,
        "certificate_id": CERTIFICATE_ID,
        "private_key": pem_of(rsa_key),
    }
    return create_vendor(clock=clock, seed=7, credentials=credentials)


class Recorder(httpx.AsyncBaseTransport):
    """The sandbox over ASGI, keeping (method, path, status) of every exchange."""

    def __init__(self, app: Any) -> None:
        self.inner = httpx.ASGITransport(app=app)
        self.seen: list[tuple[str, str, int]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        self.seen.append((request.method, request.url.path, response.status_code))
        return response

    @property
    def token_calls(self) -> int:
        return sum(1 for _, path, _ in self.seen if path == TOKEN_PATH)

    def data_statuses(self) -> list[int]:
        return [status for _, path, status in self.seen if path != TOKEN_PATH]


def m2m_auth(vendor: Vendor, clock: SandboxClock, **changes: Any) -> NetSuiteM2M:
    credentials = vendor.credentials
    options: dict[str, Any] = {
        "client_id": credentials["client_id"],
        "certificate_id": credentials["certificate_id"],
        "private_key_pem": credentials["private_key"],
        "wall_clock": clock.now,
        "system": "erp",
    }
    return NetSuiteM2M(netsuite_token_url(BASE), **(options | changes))


def system_client(transport: httpx.AsyncBaseTransport, auth: NetSuiteM2M) -> SystemClient:
    return SystemClient(
        "erp",
        HttpConfig(base_url=BASE, retry=RetryPolicy(max_attempts=3)),
        auth=auth,
        governor=Governor(GovernorConfig(rate_per_s=1000.0, burst=1000, max_concurrency=4)),
        signals=NetSuiteSignals(),
        transport=transport,
        rng=random.Random(7),
        wall_clock=lambda: START,
    )


def raw_client(vendor: Vendor) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=vendor.app), base_url=BASE)


async def post_assertion(vendor: Vendor, assertion: str, **form: str) -> httpx.Response:
    body = {
        "grant_type": "client_credentials",
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": assertion,
    } | form
    async with raw_client(vendor) as client:
        return await client.post(TOKEN_PATH, data=body)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hand_made_jwt(
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey,
    *,
    header: dict[str, Any] | None = None,
    claims: dict[str, Any] | None = None,
    sign: str = "PS256",
) -> str:
    """A JWT built without pssync's signer, to reach refusals the client cannot produce."""
    now = int(START)
    header = {"typ": "JWT", "alg": "PS256", "kid": CERTIFICATE_ID} | (header or {})
    claims = {
        "iss": CLIENT_ID,
        "scope": "rest_webservices",
        "aud": TOKEN_URL,
        "iat": now,
        "exp": now + 300,
    } | (claims or {})
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
    data = signing_input.encode()
    if sign == "PS256":
        pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
        signature = key.sign(data, pss, hashes.SHA256())
    elif sign == "PS256-max-salt":
        pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.MAX_LENGTH)
        signature = key.sign(data, pss, hashes.SHA256())
    elif sign == "RS256":
        signature = key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    else:  # "ES256-DER": ECDSA as cryptography returns it, DER-encoded
        signature = key.sign(data, ec.ECDSA(hashes.SHA256()))
    return f"{signing_input}.{b64url(signature)}"


def login_refused(response: httpx.Response) -> bool:
    body = response.json()
    return (
        response.status_code == 401
        and body["status"] == 401
        and body["o:errorDetails"][0]["o:errorCode"] == "INVALID_LOGIN_ATTEMPT"
    )


CUSTOMER = {"companyName": "Acme Corp", "subsidiary": {"id": "1"}, "externalId": "SF-001"}


# ----------------------------------------------------------------------------- token endpoint


async def test_a_good_assertion_gets_a_bearer_token(vendor: Vendor, clock: SandboxClock) -> None:
    response = await post_assertion(vendor, m2m_auth(vendor, clock).assertion())

    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"access_token", "expires_in", "token_type"}
    assert body["expires_in"] == "3600"
    assert body["token_type"] == "Bearer"
    assert response.headers["Cache-Control"] == "no-store"


async def test_system_client_with_m2m_reads_and_writes_records(
    vendor: Vendor, clock: SandboxClock
) -> None:
    # Given pssync's HTTP layer authenticated by NetSuite M2M against the sandbox
    transport = Recorder(vendor.app)
    async with system_client(transport, m2m_auth(vendor, clock)) as client:
        # When it creates, upserts, reads and queries records
        created = await client.request("POST", f"{RECORDS}/customer", json=CUSTOMER)
        record_id = created.headers["Location"].rsplit("/", 1)[1]
        await client.request(
            "PUT", f"{RECORDS}/customer/eid:SF-002", json=CUSTOMER | {"externalId": "SF-002"}
        )
        await client.request("PATCH", f"{RECORDS}/customer/{record_id}", json={"phone": "555"})
        read = await client.request("GET", f"{RECORDS}/customer/{record_id}")
        query = await client.request(
            "POST",
            "/services/rest/query/v1/suiteql",
            json={"q": "SELECT id, companyname FROM customer ORDER BY id"},
            headers={"Prefer": "transient"},
        )

    # Then every call succeeded on one token
    assert created.status_code == 204
    assert read.json()["companyName"] == "Acme Corp"
    assert read.json()["phone"] == "555"
    assert [item["companyname"] for item in query.json()["items"]] == ["Acme Corp", "Acme Corp"]
    assert transport.token_calls == 1
    assert vendor.app.auth_failures == []


@pytest.mark.parametrize(
    ("case", "error", "description"),
    [
        ("wrong-key", "invalid_client", "The JWT signature does not match the certificate."),
        ("wrong-kid", "invalid_client", "No certificate is mapped to this kid."),
        (
            "wrong-client",
            "invalid_client",
            "The iss is not the client the certificate is mapped to.",
        ),
        ("expired", "invalid_grant", "The JWT has expired (exp)."),
        ("wrong-aud", "invalid_grant", "The aud must be this account's token endpoint."),
        ("future-iat", "invalid_grant", "The JWT was issued in the future (iat)."),
    ],
)
async def test_bad_assertions_from_the_client_are_refused_with_oauth_errors(
    vendor: Vendor,
    clock: SandboxClock,
    other_key: rsa.RSAPrivateKey,
    case: str,
    error: str,
    description: str,
) -> None:
    changes: dict[str, Any] = {
        "wrong-key": {"private_key_pem": pem_of(other_key)},
        "wrong-kid": {"certificate_id": "cert-unknown"},
        "wrong-client": {"client_id": "another-integration"},
        "expired": {"wall_clock": lambda: clock.now() - 301},
        "wrong-aud": {"token_url": "https://7654321.suitetalk.api.netsuite.com" + TOKEN_PATH},
        "future-iat": {"wall_clock": lambda: clock.now() + 301},
    }[case]
    token_url = changes.pop("token_url", netsuite_token_url(BASE))
    auth = m2m_auth(vendor, clock, **changes)
    auth.token_url = token_url  # the aud; the request still goes to the sandbox

    response = await post_assertion(vendor, auth.assertion())

    assert response.status_code == 400
    assert response.json() == {"error": error, "error_description": description}
    assert vendor.app.token_refusals == [f"{error}: {description}"]


@pytest.mark.parametrize(
    ("build", "error", "fragment"),
    [
        (
            lambda key: hand_made_jwt(key, header={"alg": "RS256"}, sign="RS256"),
            "invalid_request",
            "RS256 is not supported",
        ),
        (lambda key: hand_made_jwt(key, sign="PS256-max-salt"), "invalid_client", "signature"),
        (lambda key: hand_made_jwt(key, header={"typ": "JOSE"}), "invalid_request", "typ"),
        (lambda key: hand_made_jwt(key, header={"kid": None}), "invalid_request", "kid"),
        (
            lambda key: hand_made_jwt(key, claims={"exp": int(START) + 3601}),
            "invalid_grant",
            "60 minutes",
        ),
        (lambda key: hand_made_jwt(key, claims={"iat": "now"}), "invalid_request", "integers"),
        (
            lambda key: hand_made_jwt(key, claims={"scope": "restlets"}),
            "invalid_scope",
            "rest_webservices",
        ),
        (lambda key: hand_made_jwt(key, claims={"aud": [TOKEN_URL]}), None, ""),
        (
            lambda key: hand_made_jwt(key, claims={"scope": ["restlets", "rest_webservices"]}),
            None,
            "",
        ),
        (lambda key: "not-a-jwt", "invalid_request", "not a signed JWT"),
        (
            lambda key: hand_made_jwt(key).rsplit(".", 1)[0] + ".@@@",
            "invalid_request",
            "base64url",
        ),
    ],
    ids=[
        "rs256",
        "pss-salt-not-digest-length",
        "typ",
        "no-kid",
        "lifetime-over-60-min",
        "iat-not-integer",
        "scope-without-rest",
        "aud-as-list-ok",
        "scope-as-list-ok",
        "not-a-jwt",
        "garbled-signature",
    ],
)
async def test_hand_made_assertions(
    vendor: Vendor, rsa_key: rsa.RSAPrivateKey, build, error: str | None, fragment: str
) -> None:
    response = await post_assertion(vendor, build(rsa_key))

    if error is None:
        assert response.status_code == 200, response.text
        return
    assert response.status_code == 400
    assert response.json()["error"] == error
    assert fragment in response.json()["error_description"]


@pytest.mark.parametrize(
    ("form", "error"),
    [
        ({"grant_type": "authorization_code"}, "unsupported_grant_type"),
        (
            {"client_assertion_type": "urn:ietf:params:oauth:grant-type:jwt-bearer"},
            "invalid_request",
        ),
    ],
)
async def test_wrong_form_parameters_are_refused(
    vendor: Vendor, clock: SandboxClock, form: dict[str, str], error: str
) -> None:
    response = await post_assertion(vendor, m2m_auth(vendor, clock).assertion(), **form)

    assert response.status_code == 400
    assert response.json()["error"] == error


async def test_es256_with_an_ec_certificate(clock: SandboxClock) -> None:
    # Given an EC certificate registered beside the default client
    key = ec.generate_private_key(ec.SECP256R1())
    registration = {
        "client_id": "ec-client",
        "certificate_id": "ec-cert",
        "public_key": public_pem_of(key),
    }
    vendor = create_vendor(clock=clock, seed=7, m2m_certificates=[registration])
    auth = NetSuiteM2M(
        netsuite_token_url(BASE),
        client_id="ec-client",
        certificate_id="ec-cert",
        private_key_pem=pem_of(key),
        wall_clock=clock.now,
    )

    good = await post_assertion(vendor, auth.assertion())
    der = await post_assertion(
        vendor,
        hand_made_jwt(
            key,
            header={"alg": "ES256", "kid": "ec-cert"},
            claims={"iss": "ec-client"},
            sign="ES256-DER",
        ),
    )

    assert good.status_code == 200, good.text
    # A DER-encoded ECDSA signature is not a JWS signature
    assert der.json()["error"] == "invalid_client"


async def test_refused_assertion_surfaces_as_permanent_error_without_the_key(
    vendor: Vendor, clock: SandboxClock, other_key: rsa.RSAPrivateKey
) -> None:
    # Given a client holding a key the account does not know
    pem = pem_of(other_key)
    key_lines = [line for line in pem.splitlines() if "-----" not in line and len(line) >= 16]
    auth = m2m_auth(vendor, clock, private_key_pem=pem)
    transport = Recorder(vendor.app)

    with structlog.testing.capture_logs() as logs:
        async with system_client(transport, auth) as client:
            with pytest.raises(PermanentError) as caught:
                await client.request("GET", f"{RECORDS}/customer")

    # Then no data request went out, the error names the OAuth error, and the key is nowhere
    assert transport.data_statuses() == []
    assert caught.value.status == 400
    assert caught.value.code == "invalid_client"
    text = " ".join([str(caught.value), repr(caught.value), repr(auth), repr(logs)])
    assert "signature does not match" in str(caught.value)
    assert not any(line in text for line in key_lines)
    assert any(entry["event"] == "http.failed" for entry in logs)


# ----------------------------------------------------------------------------- bearer tokens


async def test_unknown_and_expired_bearer_tokens_get_the_login_body(
    vendor: Vendor, clock: SandboxClock
) -> None:
    issued = await post_assertion(vendor, m2m_auth(vendor, clock).assertion())
    token = issued.json()["access_token"]

    async with raw_client(vendor) as client:
        fresh = await client.get(
            f"{RECORDS}/customer", headers={"Authorization": f"Bearer {token}"}
        )
        unknown = await client.get(f"{RECORDS}/customer", headers={"Authorization": "Bearer nope"})
        clock.advance(3599)
        last_second = await client.get(
            f"{RECORDS}/customer", headers={"Authorization": f"Bearer {token}"}
        )
        clock.advance(1)
        expired = await client.get(
            f"{RECORDS}/customer", headers={"Authorization": f"Bearer {token}"}
        )

    assert fresh.status_code == 200
    assert last_second.status_code == 200
    assert login_refused(unknown)
    assert login_refused(expired)
    assert vendor.app.auth_failures == ["unknown bearer token", "bearer token expired"]


async def test_a_token_expired_in_the_sandbox_is_refreshed_once(
    vendor: Vendor, clock: SandboxClock
) -> None:
    # Given a client holding a token it still believes valid
    transport = Recorder(vendor.app)
    async with system_client(transport, m2m_auth(vendor, clock)) as client:
        await client.request("GET", f"{RECORDS}/customer")
        # When the sandbox's clock passes the token's hour (the client's trio clock does not)
        clock.advance(3600)
        response = await client.request("GET", f"{RECORDS}/customer")

    # Then the 401 cost one new token and the request succeeded
    assert response.status_code == 200
    assert transport.token_calls == 2
    assert transport.data_statuses() == [200, 401, 200]
    assert vendor.app.auth_failures == ["bearer token expired"]


async def test_tokens_expire_by_autojumped_time_too(
    autojump_clock, vendor: Vendor, clock: SandboxClock
) -> None:
    # The client renews a minute early, so an hour of idle time costs no 401
    transport = Recorder(vendor.app)
    async with system_client(transport, m2m_auth(vendor, clock)) as client:
        await client.request("GET", f"{RECORDS}/customer")
        await trio.sleep(3545)
        await client.request("GET", f"{RECORDS}/customer")

    assert transport.token_calls == 2
    assert transport.data_statuses() == [200, 200]


async def test_tba_still_works_next_to_m2m(vendor: Vendor, clock: SandboxClock) -> None:
    tba_fields = ("account_id", "consumer_key", "consumer_secret", "token_id", "token_secret")
    credentials = TbaCredentials(**{name: vendor.credentials[name] for name in tba_fields})
    header = authorization_header(
        credentials,
        method="GET",
        url=f"{BASE}{RECORDS}/customer",
        timestamp=int(clock.now()),
        nonce="n-1",
    )
    async with raw_client(vendor) as client:
        response = await client.get(f"{RECORDS}/customer", headers={"Authorization": header})

    assert response.status_code == 200


# ----------------------------------------------------------------------------- credentials


async def test_default_credentials_stay_the_tba_set(clock: SandboxClock) -> None:
    vendor = create_vendor(clock=clock, seed=3)

    assert set(vendor.credentials) == {
        "account_id",
        "consumer_key",
        "consumer_secret",
        "token_id",
        "token_secret",
    }


async def test_seeded_demo_client_is_listed_on_request_and_works(clock: SandboxClock) -> None:
    # Given the demo M2M client of seed 0, listed in the credentials
    vendor = create_vendor(clock=clock, seed=0, list_m2m_credentials=True)
    again = create_vendor(clock=clock, seed=0, list_m2m_credentials=True)
    credentials = vendor.credentials

    # Then it is stable for the seed and complete enough to log in
    assert re.fullmatch(r"[0-9a-f]{64}", credentials["client_id"])
    assert credentials["private_key"].startswith("-----BEGIN PRIVATE KEY-----")
    assert credentials == again.credentials
    assert credentials["private_key"] == demo_m2m_credentials(0).private_key_pem
    key = serialization.load_pem_private_key(credentials["private_key"].encode(), None)
    assert isinstance(key, rsa.RSAPrivateKey)
    assert key.key_size == 2048
    response = await post_assertion(vendor, m2m_auth(vendor, clock).assertion())
    assert response.status_code == 200, response.text


async def test_demo_client_works_unlisted(clock: SandboxClock) -> None:
    # The demo registration exists even when the credentials do not show it
    vendor = create_vendor(clock=clock, seed=0)
    demo = demo_m2m_credentials(0)
    auth = NetSuiteM2M(
        netsuite_token_url(BASE),
        client_id=demo.client_id,
        certificate_id=demo.certificate_id,
        private_key_pem=demo.private_key_pem,
        wall_clock=clock.now,
    )

    response = await post_assertion(vendor, auth.assertion())

    assert response.status_code == 200, response.text
