"""NetSuite TBA signing against RFC 5849's own example and an independent HMAC-SHA256."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from urllib.parse import parse_qsl, unquote

import httpx
import pytest

from adapters.auth.netsuite_tba import (
    NetSuiteTba,
    base_string_uri,
    percent_encode,
    signature_base_string,
)

UNRESERVED = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


def enc(value: str) -> str:
    """RFC 5849 §3.6, written out by hand rather than with urllib."""
    return "".join(
        char if char in UNRESERVED else "".join(f"%{byte:02X}" for byte in char.encode())
        for char in value
    )


@pytest.mark.parametrize(
    ("raw", "encoded"),
    [
        ("~", "~"),
        (" ", "%20"),
        ("+", "%2B"),
        ("*", "%2A"),
        ("a-b.c_d", "a-b.c_d"),
        ("=&/?", "%3D%26%2F%3F"),
        ("é", "%C3%A9"),
        ("%", "%25"),
    ],
)
def test_percent_encoding_of_reserved_characters(raw, encoded):
    assert percent_encode(raw) == encoded == enc(raw)


def test_base_string_of_the_rfc_5849_example():
    # RFC 5849 §3.4.1.1: the request and the base string it gives (HMAC-SHA1 there, but the
    # base string does not depend on the method).
    url = httpx.URL("http://example.com/request?b5=%3D%253D&a3=a&c%40=&a2=r%20b")
    params = [
        *parse_qsl(url.query.decode(), keep_blank_values=True),
        *parse_qsl("c2&a3=2+q", keep_blank_values=True),
        ("oauth_consumer_key", "9djdj82h48djs9d2"),
        ("oauth_token", "kkk9d7dh3k39sjv7"),
        ("oauth_signature_method", "HMAC-SHA1"),
        ("oauth_timestamp", "137131201"),
        ("oauth_nonce", "7d8f3e4a"),
    ]
    assert signature_base_string("post", url, params) == (
        "POST&http%3A%2F%2Fexample.com%2Frequest&a2%3Dr%2520b%26a3%3D2%2520q"
        "%26a3%3Da%26b5%3D%253D%25253D%26c%2540%3D%26c2%3D%26oauth_consumer_"
        "key%3D9djdj82h48djs9d2%26oauth_nonce%3D7d8f3e4a%26oauth_signature_m"
        "ethod%3DHMAC-SHA1%26oauth_timestamp%3D137131201%26oauth_token%3Dkkk"
        "9d7dh3k39sjv7"
    )


@pytest.mark.parametrize(
    ("url", "base"),
    [
        ("HTTPS://Acct.Example.COM:443/r/v1/x?y=1", "https://acct.example.com/r/v1/x"),
        ("http://example.com:80/a", "http://example.com/a"),
        ("https://example.com:8443/a%20b", "https://example.com:8443/a%20b"),
    ],
)
def test_base_string_uri_normalisation(url, base):
    assert base_string_uri(httpx.URL(url)) == base


def tba() -> NetSuiteTba:
    return NetSuiteTba(
        account_id="1234567_SB1",
        consumer_key="ck~1",
        consumer_secret="cs+secret*1",
        token_id="tk 1",
        token_secret="ts~secret 2",
        nonce=lambda: "n0nce",
        wall_clock=lambda: 1_800_000_000.9,
    )


def header_fields(value: str) -> dict[str, str]:
    assert value.startswith("OAuth ")
    return dict(re.findall(r'(\w+)="([^"]*)"', value))


async def test_signed_request_matches_an_independent_hmac_sha256():
    url = "https://1234567-sb1.suitetalk.api.netsuite.com/services/rest/record/v1/customer"
    request = httpx.Request("GET", url, params={"limit": "10", "q": 'companyName CONTAIN "A~B+C*"'})
    async with httpx.AsyncClient() as http:
        await tba().authorize(request, http)
    fields = header_fields(request.headers["Authorization"])
    assert fields["realm"] == "1234567_SB1"
    assert fields["oauth_consumer_key"] == "ck~1"
    assert fields["oauth_token"] == "tk%201"
    assert fields["oauth_signature_method"] == "HMAC-SHA256"
    assert fields["oauth_timestamp"] == "1800000000"
    assert fields["oauth_nonce"] == "n0nce"
    assert fields["oauth_version"] == "1.0"
    # the base string, spelt out: sorted enc(k)=enc(v), joined with &, then encoded again
    params = (
        "limit=10&oauth_consumer_key=ck~1&oauth_nonce=n0nce"
        "&oauth_signature_method=HMAC-SHA256&oauth_timestamp=1800000000"
        "&oauth_token=tk%201&oauth_version=1.0"
        "&q=companyName%20CONTAIN%20%22A~B%2BC%2A%22"
    )
    base = "GET&" + enc(url) + "&" + enc(params)
    key = enc("cs+secret*1") + "&" + enc("ts~secret 2")
    assert key == "cs%2Bsecret%2A1&ts~secret%202"
    expected = base64.b64encode(hmac.new(key.encode(), base.encode(), hashlib.sha256).digest())
    assert unquote(fields["oauth_signature"]) == expected.decode()
    assert fields["oauth_signature"] == enc(expected.decode())


async def test_a_json_body_is_not_signed_but_a_form_body_is():
    url = "https://1234567-sb1.suitetalk.api.netsuite.com/services/rest/record/v1/customer"
    plain = httpx.Request("POST", url)
    with_json = httpx.Request("POST", url, json={"companyName": "Acme"})
    with_form = httpx.Request("POST", url, data={"companyName": "Acme"})
    async with httpx.AsyncClient() as http:
        for request in (plain, with_json, with_form):
            await tba().authorize(request, http)

    def signature(request: httpx.Request) -> str:
        return header_fields(request.headers["Authorization"])["oauth_signature"]

    assert signature(plain) == signature(with_json)
    assert signature(plain) != signature(with_form)


async def test_every_request_gets_a_fresh_nonce():
    nonces = iter(["a1", "b2"])
    auth = NetSuiteTba(
        account_id="1",
        consumer_key="ck",
        consumer_secret="cs",
        token_id="tk",
        token_secret="ts",
        nonce=lambda: next(nonces),
    )
    first = auth.authorization_header("GET", httpx.URL("https://x.example/a"))
    second = auth.authorization_header("GET", httpx.URL("https://x.example/a"))
    assert header_fields(first)["oauth_signature"] != header_fields(second)["oauth_signature"]
    assert "cs" not in repr(auth)
