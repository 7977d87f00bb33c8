"""Secrets never reach an exception message or a log event."""

from __future__ import annotations

import random

import httpx
import pytest
import structlog

from actors.errors import AdapterError, PermanentError
from adapters.auth import BearerToken, NetSuiteTba, OAuth2ClientCredentials
from adapters.backoff import RetryPolicy
from adapters.governor import Governor, GovernorConfig
from adapters.http import HttpConfig, SystemClient
from adapters.redaction import REDACTED, Redactor, reveal
from adapters.signals import NetSuiteSignals, StripeSignals

TOKEN = "00Dxx0000001gPL!AR8AQJXg5oXqfake.access.token"
CLIENT_SECRET = "F00BAR-client-secret-9f8e7d"
STRIPE_KEY = "sk_live_51Habcdefghijklmnop"


def client(handler, auth, signals=None, max_attempts: int = 2) -> SystemClient:
    return SystemClient(
        "billing",
        HttpConfig(
            base_url="https://api.example.com/",
            retry=RetryPolicy(max_attempts=max_attempts, base_delay_s=0.1),
        ),
        auth=auth,
        governor=Governor(GovernorConfig(rate_per_s=100.0, burst=10, max_concurrency=5)),
        signals=signals,
        transport=httpx.MockTransport(handler),
        rng=random.Random(3),
    )


def assert_clean(text: str, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in text


async def run_and_capture(c: SystemClient) -> tuple[AdapterError, list[dict]]:
    with structlog.testing.capture_logs() as logs:
        async with c:
            with pytest.raises(AdapterError) as caught:
                await c.request("GET", "v1/things?api_key=querysecret123")
    return caught.value, logs


async def test_an_echoed_access_token_and_client_secret_are_redacted(autojump_clock):
    def handler(request):
        if request.url.path == "/token":
            return httpx.Response(200, json={"access_token": TOKEN, "expires_in": 3600})
        echo = (
            f"bad header Authorization: {request.headers['Authorization']} "
            f"client_secret={CLIENT_SECRET} raw {TOKEN}"
        )
        return httpx.Response(400, json={"error": "invalid_request", "error_description": echo})

    auth = OAuth2ClientCredentials(
        "https://api.example.com/token", client_id="cid", client_secret=CLIENT_SECRET
    )
    error, logs = await run_and_capture(client(handler, auth))
    assert isinstance(error, PermanentError)
    assert REDACTED in str(error)
    assert_clean(str(error), TOKEN, CLIENT_SECRET, "querysecret123")
    assert logs
    assert any(entry["event"] == "http.failed" for entry in logs)
    assert_clean(repr(logs), TOKEN, CLIENT_SECRET, "querysecret123")


async def test_a_stripe_key_is_redacted_from_retries_and_failures(autojump_clock):
    def handler(request):
        message = f"key {STRIPE_KEY} is busy"
        return httpx.Response(500, json={"error": {"type": "api_error", "message": message}})

    error, logs = await run_and_capture(client(handler, BearerToken(STRIPE_KEY), StripeSignals()))
    assert_clean(str(error), STRIPE_KEY)
    assert {entry["event"] for entry in logs} == {"http.retry", "http.failed"}
    assert_clean(repr(logs), STRIPE_KEY)


async def test_transport_error_messages_are_redacted(autojump_clock):
    def handler(request):
        raise httpx.RemoteProtocolError(f"peer closed; sent {request.headers['Authorization']}")

    error, logs = await run_and_capture(client(handler, BearerToken("kantata-token-xyz")))
    assert_clean(str(error), "kantata-token-xyz")
    assert_clean(repr(logs), "kantata-token-xyz")
    assert "Bearer [REDACTED]" in str(error)


async def test_netsuite_keys_and_signatures_are_redacted(autojump_clock):
    def handler(request):
        detail = f"Invalid login attempt. {request.headers['Authorization']}"
        body = {"o:errorDetails": [{"detail": detail, "o:errorCode": "INVALID_LOGIN_ATTEMPT"}]}
        return httpx.Response(401, json=body)

    auth = NetSuiteTba(
        account_id="1234567",
        consumer_key="consumer-key-1",
        consumer_secret="consumer-secret-1",
        token_id="token-id-1",
        token_secret="token-secret-1",
    )
    error, logs = await run_and_capture(client(handler, auth, NetSuiteSignals()))
    assert error.code == "INVALID_LOGIN_ATTEMPT"
    text = str(error) + repr(logs)
    assert_clean(text, "consumer-key-1", "consumer-secret-1", "token-id-1", "token-secret-1")
    assert 'oauth_signature="[REDACTED]"' in str(error)
    assert any(entry["event"] == "http.reauth" for entry in logs)  # re-signed once


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("Authorization: Bearer abc.def-ghi", "abc.def-ghi"),
        ("Authorization: Basic dXNlcjpwYXNz", "dXNlcjpwYXNz"),
        ('{"access_token": "tkn-123456"}', "tkn-123456"),
        ("grant_type=x&assertion=eyJhbGciOi.xx.yy&z=1", "eyJhbGciOi.xx.yy"),
        ("client_secret=abc123&x=1", "abc123"),
        ("used rk_test_abcdef123 here", "rk_test_abcdef123"),
    ],
)
def test_credential_shapes_are_redacted_even_when_unknown(text, secret):
    redacted = Redactor()(text)
    assert secret not in redacted
    assert REDACTED in redacted


def test_the_structlog_processor_redacts_every_string_value():
    processor = Redactor(lambda: ["hunter2-secret"]).processor
    event = processor(None, "info", {"event": "x hunter2-secret", "n": 3, "y": "ok"})
    assert event == {"event": f"x {REDACTED}", "n": 3, "y": "ok"}


def test_reveal_refuses_what_is_not_a_secret():
    with pytest.raises(TypeError):
        reveal(42)  # type: ignore[arg-type]
