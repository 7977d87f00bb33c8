"""Access tokens from an OAuth 2.0 token endpoint: fetched once, cached, refreshed on 401.

Refresh is single-flight: the first task to find the cache empty fetches under a
``trio.Lock``; everyone queued behind it finds the fresh token when the lock comes free.
If that fetch fails, the tasks queued behind it get the same failure (a failing endpoint
is not asked once per waiter); nothing is cached, so the next task to come tries again.

Token responses are classified by :class:`TokenEndpointSignals`, not the data API's
rules: a token endpoint speaks OAuth 2.0 (RFC 6749 §5.2), and its trouble — 5xx, 429,
timeouts, dropped connections, a garbled body, a login rate limit — is transient, while
``invalid_client`` / ``invalid_grant`` / ``unauthorized_client`` and other 4xx are not.
A token fetch changes nothing on the vendor's side, so it is always safe to repeat.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod

import httpx
import msgspec
import trio

from actors.errors import AdapterError, PermanentError, RetryableError, ThrottledError

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


class _OAuthError(msgspec.Struct):
    error: str = ""
    error_description: str = ""


class TokenEndpointSignals(ErrorSignals):
    """Classification of a token endpoint's answers (RFC 6749 §5.2 error bodies).

    - 429, or ``rate_limit_exceeded`` at any status (Salesforce's login rate limit,
      documented without a status) → throttled;
    - 408, 425, any 5xx, or ``temporarily_unavailable`` / ``server_error`` (RFC 6749's
      codes for a server that cannot answer now) → retryable;
    - 401, ``invalid_client``, ``invalid_grant``, ``unauthorized_client`` and every other
      4xx → permanent: credentials or configuration, which retrying cannot fix and which
      would only hasten a lockout.

    A body that is not OAuth JSON (an HTML error page, a cut body, a data API's error
    array) gives no code, and the status decides alone.
    """

    vendor = "oauth2"
    THROTTLE_CODES = frozenset({"rate_limit_exceeded"})
    TRANSIENT_CODES = frozenset({"temporarily_unavailable", "server_error"})

    def error_detail(self, response: httpx.Response) -> tuple[str, str]:
        try:
            body = msgspec.json.decode(response.content, type=_OAuthError)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return "", response.reason_phrase
        return body.error, body.error_description or response.reason_phrase

    def outcome(self, status: int, code: str, response: httpx.Response) -> Outcome:
        if status == 429 or code in self.THROTTLE_CODES:
            return Outcome.THROTTLE
        if status in (408, 425) or status >= 500 or code in self.TRANSIENT_CODES:
            return Outcome.RETRY
        return Outcome.PERMANENT


def _shared(error: AdapterError) -> AdapterError:
    """A fresh copy of ``error`` for another task (one exception object, one traceback)."""
    fields = {"system": error.system, "status": error.status, "code": error.code}
    if isinstance(error, ThrottledError):
        return ThrottledError(error.message, retry_after_s=error.retry_after_s, **fields)
    return type(error)(error.message, **fields)


class CachedTokenAuth(ABC):
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
        self._signals = TokenEndpointSignals()
        self._finished = 0  # fetches finished, however they ended
        self._failure: tuple[int, AdapterError] | None = None  # the last one, if it failed
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
        """A usable token: the cached one, or one fetched by exactly one task.

        Raises the fetch's :class:`~actors.errors.AdapterError`; a task that queued behind
        a failing fetch gets a copy of its error instead of fetching again itself.
        """
        token = self._token
        if token is not None and token.usable(trio.current_time()):
            return token
        finished_before = self._finished
        async with self._lock:
            token = self._token
            if token is not None and token.usable(trio.current_time()):
                return token
            failure = self._failure
            if failure is not None and failure[0] > finished_before:
                raise _shared(failure[1]) from failure[1]
            try:
                token = await self._fetch(http, correlation)
            except AdapterError as exc:
                self._finished += 1
                self._failure = (self._finished, exc)
                raise
            self._finished += 1
            self._failure = None
            self._token = token
            return token

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

    @abstractmethod
    def _form(self) -> dict[str, str]:
        """The token request's form fields."""

    @abstractmethod
    def _secrets(self) -> list[str]:
        """The strategy's own secret values (the token is added by secret_values)."""

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
            # A cut or garbled body is transport trouble, and asking again is harmless.
            raise self._bad_response(response) from exc
        if not body.access_token:
            raise self._bad_response(response)
        expires_at = None
        if body.expires_in is not None:
            expires_at = trio.current_time() + max(0.0, body.expires_in - self._margin_s)
        return AccessToken(body.access_token, expires_at=expires_at, instance_url=body.instance_url)

    def _bad_response(self, response: httpx.Response) -> RetryableError:
        return RetryableError(
            f"token endpoint {_bare(self.token_url)} → {response.status_code} "
            "without a usable access_token",
            system=self.system,
            status=response.status_code,
            code="BAD_TOKEN_RESPONSE",
        )

    def _error(self, verdict: Verdict, redact: Redactor) -> AdapterError:
        detail = f" {verdict.code}" if verdict.code else ""
        message = redact(
            f"token request to {_bare(self.token_url)} refused → {verdict.status}{detail}: "
            f"{verdict.message}"
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


def _bare(url: str) -> str:
    """The URL without its query: a token URL should have none, but never log one."""
    return url.split("?", 1)[0]
