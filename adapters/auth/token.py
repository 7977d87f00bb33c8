"""Access tokens from an OAuth 2.0 token endpoint: fetched once, cached, refreshed on 401.

Refresh is single-flight: the first task to find the cache empty fetches under a
``trio.Lock``; everyone queued behind it finds the fresh token when the lock comes free.
"""

from __future__ import annotations

import time

import httpx
import msgspec
import trio

from actors.errors import PermanentError, RetryableError, ThrottledError

from ..classify import MAX_MESSAGE_CHARS, ErrorSignals, Outcome, Verdict, transport_error
from ..redaction import Redactor


class AccessToken:
    """A bearer token and when it stops being usable (trio clock; ``None``: until a 401)."""

    __slots__ = ("expires_at", "instance_url", "value")

    def __init__(self, value: str, *, expires_at: float | None, instance_url: str = "") -> None:
        self.value = value
        self.expires_at = expires_at
        self.instance_url = instance_url

    def usable(self, now: float) -> bool:
        """Whether the token may still be sent at ``now``."""
        return self.expires_at is None or now < self.expires_at

    def __repr__(self) -> str:  # the value must never reach a log or a traceback
        return f"AccessToken(value=[REDACTED], expires_at={self.expires_at!r})"


class _TokenResponse(msgspec.Struct):
    access_token: str
    token_type: str = "Bearer"
    expires_in: float | None = None
    instance_url: str = ""


class CachedTokenAuth:
    """Base of the token-endpoint strategies; subclasses provide the form to post.

    ``refresh_margin_s`` renews a token that much before its ``expires_in`` runs out, so a
    request never leaves with a token about to expire in flight. Vendors that send no
    ``expires_in`` (Salesforce) keep the token until it is refused with a 401.
    """

    refreshable = True

    def __init__(
        self,
        token_url: str,
        *,
        system: str = "",
        refresh_margin_s: float = 60.0,
        deadline_s: float = 30.0,
    ) -> None:
        self.token_url = token_url
        self.system = system
        self._margin_s = refresh_margin_s
        self._deadline_s = deadline_s
        self._token: AccessToken | None = None
        self._lock = trio.Lock()
        self._signals = ErrorSignals()
        self.fetches = 0  # token calls made, for metrics and tests

    @property
    def current(self) -> AccessToken | None:
        """The cached token, if any (e.g. for Salesforce's ``instance_url``)."""
        return self._token

    async def authorize(
        self,
        request: httpx.Request,
        http: httpx.AsyncClient,
        *,
        correlation: tuple[str, str] | None = None,
    ) -> object:
        """Set ``Authorization: Bearer <token>``, fetching a token first if needed."""
        token = await self.token(http, correlation=correlation)
        request.headers["Authorization"] = f"Bearer {token.value}"
        return token

    async def token(
        self, http: httpx.AsyncClient, *, correlation: tuple[str, str] | None = None
    ) -> AccessToken:
        """A usable token: the cached one, or one fetched by exactly one task."""
        token = self._token
        if token is not None and token.usable(trio.current_time()):
            return token
        async with self._lock:
            token = self._token
            if token is not None and token.usable(trio.current_time()):
                return token
            self._token = await self._fetch(http, correlation)
            return self._token

    async def invalidate(self, credential: object) -> None:
        """Drop the cached token if it is the one that was refused."""
        if credential is self._token:
            self._token = None

    def secret_values(self) -> list[str]:
        """Client secrets and the current token."""
        values = self._secrets()
        if self._token is not None:
            values.append(self._token.value)
        return values

    def _form(self) -> dict[str, str]:
        raise NotImplementedError

    def _secrets(self) -> list[str]:
        raise NotImplementedError

    def _request_auth(self) -> httpx.Auth | None:
        return None

    async def _fetch(
        self, http: httpx.AsyncClient, correlation: tuple[str, str] | None
    ) -> AccessToken:
        redact = Redactor(self._secrets)
        headers = {"Accept": "application/json"}
        if correlation is not None:
            headers[correlation[0]] = correlation[1]
        self.fetches += 1
        try:
            with trio.fail_after(self._deadline_s):
                response = await http.post(
                    self.token_url, data=self._form(), headers=headers, auth=self._request_auth()
                )
        except httpx.TransportError as exc:
            raise transport_error(exc, system=self.system, redact=redact) from exc
        except trio.TooSlowError as exc:
            raise RetryableError(
                f"token endpoint gave no answer within {self._deadline_s:g} s",
                system=self.system,
                code="DEADLINE",
            ) from exc
        # The wall clock only matters for an HTTP-date Retry-After without a Date header.
        verdict = self._signals.classify(response, now_epoch=time.time())
        if verdict.outcome is not Outcome.OK:
            raise self._error(verdict, redact)
        try:
            body = msgspec.json.decode(response.content, type=_TokenResponse, strict=False)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise RetryableError(
                "token endpoint answered without a usable access_token",
                system=self.system,
                status=response.status_code,
                code="BAD_TOKEN_RESPONSE",
            ) from exc
        expires_at = None
        if body.expires_in is not None:
            expires_at = trio.current_time() + max(0.0, body.expires_in - self._margin_s)
        return AccessToken(body.access_token, expires_at=expires_at, instance_url=body.instance_url)

    def _error(self, verdict: Verdict, redact: Redactor) -> Exception:
        message = redact(
            f"token request refused: {verdict.code or verdict.status} {verdict.message}"
        )[:MAX_MESSAGE_CHARS]
        fields = {"system": self.system, "status": verdict.status, "code": verdict.code}
        if verdict.outcome is Outcome.THROTTLE:
            return ThrottledError(message, retry_after_s=verdict.retry_after_s, **fields)
        if verdict.outcome is Outcome.RETRY:
            return RetryableError(message, **fields)
        # invalid_client, invalid_grant, unauthorized_client: a configuration problem.
        return PermanentError(message, **fields)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(token_url={self.token_url!r})"
