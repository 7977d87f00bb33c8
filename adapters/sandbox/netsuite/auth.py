"""Token-Based Authentication (OAuth 1.0a, HMAC-SHA256) as NetSuite verifies it.

The verifier follows RFC 5849 §3.4:

- base string = ``METHOD & enc(base URI) & enc(normalized parameters)``; the base URI is
  the request URL as the server sees it (scheme and host lower-cased, default port
  dropped, the raw path, no query); parameters are every ``oauth_*`` header value except
  ``oauth_signature`` (``realm`` is excluded too) plus the query-string parameters, each
  name and value percent-encoded (§3.6, unreserved = ``A-Z a-z 0-9 - . _ ~``), sorted by
  name then value, joined with ``=`` and ``&``. A JSON body is not signed; a
  form-encoded body is (§3.4.1.3), although NetSuite's REST services take JSON.
- key = ``enc(consumer_secret) & enc(token_secret)``; signature = base64(HMAC-SHA256).

Refusals, all answered with 401 ``INVALID_LOGIN_ATTEMPT`` (NetSuite does not tell why):
missing/garbled header, unknown realm/consumer/token, ``oauth_signature_method`` other
than ``HMAC-SHA256`` (HMAC-SHA1 is refused since 2023.1), ``oauth_version`` other than
``1.0``, a timestamp more than ``timestamp_skew_s`` (300 s) away from the sandbox clock,
a wrong signature, and a nonce already used with the same consumer and token within the
skew window (checked only once the signature is good, so a forged request cannot burn a
client's nonce). The 5-minute window is an assumption (RFC 5849 leaves it to servers).
"""

from __future__ import annotations

import base64
import collections
import hashlib
import hmac
import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, unquote

from ..clock import SandboxClock

SIGNATURE_METHOD = "HMAC-SHA256"
_PARAM = re.compile(r'\s*([A-Za-z0-9_\-.~%]+)\s*=\s*"([^"]*)"\s*(?:,|$)')


@dataclass(frozen=True, kw_only=True)
class TbaCredentials:
    """One integration + token pair and the account it logs into."""

    account_id: str
    consumer_key: str
    consumer_secret: str
    token_id: str
    token_secret: str


class AuthFailed(Exception):
    """The request's OAuth header does not authenticate; ``reason`` is for logs and tests."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def percent_encode(value: str) -> str:
    """RFC 5849 §3.6: UTF-8, then escape everything but the unreserved characters."""
    return quote(value, safe="-._~")


def parse_authorization(header: str) -> dict[str, str]:
    """``OAuth realm="X", oauth_nonce="…"`` → decoded parameters; raises on garbage."""
    scheme, _, rest = header.strip().partition(" ")
    if scheme.lower() != "oauth":
        raise AuthFailed("not an OAuth authorization header")
    params: dict[str, str] = {}
    position = 0
    rest = rest.strip()
    while position < len(rest):
        match = _PARAM.match(rest, position)
        if match is None:
            raise AuthFailed("malformed OAuth header")
        name, value = unquote(match.group(1)), unquote(match.group(2))
        if name in params:
            raise AuthFailed(f"duplicate OAuth parameter {name}")
        params[name] = value
        position = match.end()
    return params


def base_string_uri(scheme: str, host: str, path: str) -> str:
    """RFC 5849 §3.4.1.2: lower-case scheme and host, default ports dropped."""
    scheme = scheme.lower()
    host = host.lower()
    if (scheme == "https" and host.endswith(":443")) or (scheme == "http" and host.endswith(":80")):
        host = host.rsplit(":", 1)[0]
    return f"{scheme}://{host}{path}"


def normalized_parameters(params: list[tuple[str, str]]) -> str:
    encoded = sorted((percent_encode(name), percent_encode(value)) for name, value in params)
    return "&".join(f"{name}={value}" for name, value in encoded)


def signature_base_string(method: str, uri: str, params: list[tuple[str, str]]) -> str:
    return "&".join(
        (method.upper(), percent_encode(uri), percent_encode(normalized_parameters(params)))
    )


def sign(base_string: str, consumer_secret: str, token_secret: str) -> str:
    key = f"{percent_encode(consumer_secret)}&{percent_encode(token_secret)}"
    digest = hmac.new(key.encode(), base_string.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def authorization_header(
    credentials: TbaCredentials,
    *,
    method: str,
    url: str,
    timestamp: int,
    nonce: str,
    signature_method: str = SIGNATURE_METHOD,
) -> str:
    """A client-side signer (for tests and the demo): the header NetSuite expects.

    ``url`` may carry a query string; its parameters are signed.
    """
    base, _, query = url.partition("?")
    scheme, _, rest = base.partition("://")
    host, slash, path = rest.partition("/")
    oauth = {
        "oauth_consumer_key": credentials.consumer_key,
        "oauth_token": credentials.token_id,
        "oauth_signature_method": signature_method,
        "oauth_timestamp": str(timestamp),
        "oauth_nonce": nonce,
        "oauth_version": "1.0",
    }
    params = list(oauth.items()) + parse_qsl(query, keep_blank_values=True)
    base_string = signature_base_string(method, base_string_uri(scheme, host, slash + path), params)
    oauth["oauth_signature"] = sign(
        base_string, credentials.consumer_secret, credentials.token_secret
    )
    parts = [f'realm="{credentials.account_id}"']
    parts += [f'{name}="{percent_encode(value)}"' for name, value in oauth.items()]
    return "OAuth " + ", ".join(parts)


class TbaVerifier:
    """Checks OAuth 1.0a headers against the configured credentials and a nonce cache."""

    def __init__(
        self,
        credentials: TbaCredentials,
        clock: SandboxClock,
        *,
        timestamp_skew_s: float = 300.0,
    ) -> None:
        self.credentials = credentials
        self._clock = clock
        self._skew_s = timestamp_skew_s
        self._nonces: set[tuple[str, str, str]] = set()
        # (sandbox time seen, nonce key) in arrival order, for pruning: a nonce seen at
        # time s carries a timestamp t >= s - skew, so after s + 2*skew it is stale anyway.
        self._nonce_log: collections.deque[tuple[float, tuple[str, str, str]]] = collections.deque()

    def verify(
        self,
        *,
        method: str,
        uri: str,
        query_params: list[tuple[str, str]],
        header: str | None,
        form_params: list[tuple[str, str]] | None = None,
    ) -> None:
        """Return if the request authenticates, else raise :class:`AuthFailed`."""
        if not header:
            raise AuthFailed("missing Authorization header")
        params = parse_authorization(header)
        creds = self.credentials
        if params.get("realm") != creds.account_id:
            raise AuthFailed("wrong realm")
        if params.get("oauth_signature_method") != SIGNATURE_METHOD:
            raise AuthFailed(f"unsupported signature method {params.get('oauth_signature_method')}")
        if params.get("oauth_version", "1.0") != "1.0":
            raise AuthFailed("unsupported oauth_version")
        required = ("oauth_consumer_key", "oauth_token", "oauth_timestamp", "oauth_nonce")
        for name in (*required, "oauth_signature"):
            if not params.get(name):
                raise AuthFailed(f"missing {name}")
        if params["oauth_consumer_key"] != creds.consumer_key:
            raise AuthFailed("unknown consumer key")
        if params["oauth_token"] != creds.token_id:
            raise AuthFailed("unknown token")
        try:
            timestamp = int(params["oauth_timestamp"])
        except ValueError:
            raise AuthFailed("oauth_timestamp is not an integer") from None

        signed = [
            (name, value)
            for name, value in params.items()
            if name not in ("realm", "oauth_signature")
        ]
        signed += list(query_params) + list(form_params or [])
        expected = sign(
            signature_base_string(method, uri, signed),
            creds.consumer_secret,
            creds.token_secret,
        )
        if not hmac.compare_digest(expected, params["oauth_signature"]):
            raise AuthFailed("signature mismatch")

        now = self._clock.now()
        if abs(now - timestamp) > self._skew_s:
            raise AuthFailed("timestamp outside the allowed window")
        self._forget_old_nonces(now)
        key = (params["oauth_consumer_key"], params["oauth_token"], params["oauth_nonce"])
        if key in self._nonces:
            raise AuthFailed("nonce already used")
        self._nonces.add(key)
        self._nonce_log.append((now, key))

    def _forget_old_nonces(self, now: float) -> None:
        horizon = now - 2 * self._skew_s
        while self._nonce_log and self._nonce_log[0][0] < horizon:
            _, key = self._nonce_log.popleft()
            self._nonces.discard(key)
