"""NetSuite Token-Based Authentication: OAuth 1.0a (RFC 5849) signed with HMAC-SHA256.

The signature covers the method, the base URL and every query, form-body and ``oauth_*``
parameter; a JSON body is not signed (RFC 5849 signs form bodies only). Sloppy encoding
shows up at NetSuite as ``INVALID_LOGIN_ATTEMPT``, so the encoding rules are spelt out.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable, Iterable
from urllib.parse import parse_qsl, quote

import httpx

from ..redaction import Secret, reveal

_DEFAULT_PORTS = {"http": 80, "https": 443}


def percent_encode(value: str) -> str:
    """RFC 5849 §3.6: UTF-8, then %XX (upper-case) for all but ``A-Z a-z 0-9 - . _ ~``."""
    return quote(value.encode("utf-8"), safe="-._~")


def base_string_uri(url: httpx.URL) -> str:
    """RFC 5849 §3.4.1.2: scheme and host lower-case, default port dropped, no query."""
    scheme = url.scheme.lower()
    host = url.host.lower()
    port = url.port
    netloc = host if port is None or port == _DEFAULT_PORTS.get(scheme) else f"{host}:{port}"
    path = url.raw_path.split(b"?", 1)[0].decode("ascii") or "/"
    return f"{scheme}://{netloc}{path}"


def signature_base_string(method: str, url: httpx.URL, params: Iterable[tuple[str, str]]) -> str:
    """RFC 5849 §3.4.1: ``METHOD&enc(base URI)&enc(normalised parameters)``.

    ``params`` are the decoded query, form-body and ``oauth_*`` pairs (not ``realm``, not
    ``oauth_signature``); they are encoded, sorted by name then value, and joined.
    """
    pairs = sorted((percent_encode(k), percent_encode(v)) for k, v in params)
    normalised = "&".join(f"{k}={v}" for k, v in pairs)
    return "&".join(
        (method.upper(), percent_encode(base_string_uri(url)), percent_encode(normalised))
    )


def hmac_sha256_signature(base_string: str, consumer_secret: str, token_secret: str) -> str:
    """Base64 HMAC-SHA256 of ``base_string`` keyed ``enc(consumer)&enc(token)``."""
    key = f"{percent_encode(consumer_secret)}&{percent_encode(token_secret)}"
    digest = hmac.new(key.encode(), base_string.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


class NetSuiteTba:
    """Signs each request with the integration's consumer key and the user's access token.

    ``realm`` is the account id as NetSuite shows it (``1234567_SB1``). ``nonce`` and
    ``wall_clock`` are injectable so a signature can be checked against a fixed vector.
    There is no token to refresh; after a 401 the client simply signs again (new nonce and
    timestamp) and retries once — see ``NetSuiteSignals`` on why a 401 is ambiguous.
    """

    refreshable = True

    def __init__(
        self,
        *,
        account_id: str,
        consumer_key: Secret,
        consumer_secret: Secret,
        token_id: Secret,
        token_secret: Secret,
        nonce: Callable[[], str] = lambda: secrets.token_hex(16),
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.account_id = account_id
        self._consumer_key = consumer_key
        self._consumer_secret = consumer_secret
        self._token_id = token_id
        self._token_secret = token_secret
        self._nonce = nonce
        self._wall_clock = wall_clock

    def authorization_header(
        self, method: str, url: httpx.URL, form: Iterable[tuple[str, str]] = ()
    ) -> str:
        """The ``Authorization: OAuth …`` value for one request."""
        oauth = {
            "oauth_consumer_key": reveal(self._consumer_key),
            "oauth_token": reveal(self._token_id),
            "oauth_signature_method": "HMAC-SHA256",
            "oauth_timestamp": str(int(self._wall_clock())),
            "oauth_nonce": self._nonce(),
            "oauth_version": "1.0",
        }
        query = parse_qsl(url.query.decode("ascii"), keep_blank_values=True)
        base = signature_base_string(method, url, [*query, *form, *oauth.items()])
        oauth["oauth_signature"] = hmac_sha256_signature(
            base, reveal(self._consumer_secret), reveal(self._token_secret)
        )
        fields = [f'realm="{self.account_id}"']
        fields += [f'{k}="{percent_encode(v)}"' for k, v in oauth.items()]
        return "OAuth " + ", ".join(fields)

    async def authorize(
        self,
        request: httpx.Request,
        http: httpx.AsyncClient,
        *,
        correlation: tuple[str, str] | None = None,
    ) -> object:
        """Sign ``request`` (including a form-encoded body, as RFC 5849 requires)."""
        form: list[tuple[str, str]] = []
        if request.headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded"):
            form = parse_qsl(request.content.decode("utf-8"), keep_blank_values=True)
        request.headers["Authorization"] = self.authorization_header(
            request.method, request.url, form
        )
        return None

    async def invalidate(self, credential: object) -> None:
        """Nothing cached: the next request is signed afresh anyway."""

    def secret_values(self) -> list[str]:
        """Keys, token and both secrets."""
        return [
            reveal(s)
            for s in (self._consumer_key, self._consumer_secret, self._token_id, self._token_secret)
        ]

    def __repr__(self) -> str:
        return f"NetSuiteTba(account_id={self.account_id!r})"
