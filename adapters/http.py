"""The shared HTTP layer: one governed, authenticated, classified client per system.

:class:`SystemClient` is the one way adapters talk to a vendor. Each call waits for a
governor slot, carries a correlation header, is classified once by the vendor's
:class:`~adapters.classify.ErrorSignals`, and is retried with exponential backoff and full
jitter when that is safe. What escapes is an :class:`~actors.errors.AdapterError` whose
message names the system, status and vendor code and holds no secret.
"""

from __future__ import annotations

import ipaddress
import random
import ssl
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import certifi
import httpx
import msgspec
import structlog
import trio

from actors.errors import AdapterError, PermanentError, RetryableError, ThrottledError

from .auth.base import AuthStrategy
from .backoff import RetryPolicy
from .classify import (
    MAX_MESSAGE_CHARS,
    ErrorSignals,
    Outcome,
    Verdict,
    request_may_have_been_sent,
    transport_error,
)
from .governor import Governor, Lane
from .redaction import Redactor

_log = structlog.get_logger("pssync.adapters.http")

_IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
_LOOPBACK_NAMES = frozenset({"localhost"})


def _is_loopback(host: str) -> bool:
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class HttpConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Connection settings of one system (``systems.<name>.http``).

    There is deliberately no ``verify`` switch: TLS verification is always on. A private CA
    is trusted only through an explicit ``ca_bundle`` path, and that is logged. Plain
    ``http://`` is accepted only for loopback hosts (the sandbox).
    """

    base_url: str
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 60.0
    write_timeout_s: float = 30.0
    pool_timeout_s: float = 10.0
    max_connections: int = 20
    max_keepalive_connections: int = 10
    keepalive_expiry_s: float = 30.0
    ca_bundle: str | None = None
    correlation_header: str = "X-Correlation-ID"
    user_agent: str = "pssync/0.1"
    retry: RetryPolicy = msgspec.field(default_factory=RetryPolicy)

    def __post_init__(self) -> None:
        url = httpx.URL(self.base_url)
        if url.scheme != "https" and not (url.scheme == "http" and _is_loopback(url.host)):
            raise ValueError("base_url must be https:// (http:// only for loopback hosts)")


def make_ssl_context(ca_bundle: str | None = None, *, system: str = "") -> ssl.SSLContext:
    """A verifying TLS context: certifi's roots, or an explicit CA bundle (logged)."""
    if ca_bundle is not None:
        _log.info("http.ca_bundle", system=system, ca_bundle=ca_bundle)
    context = ssl.create_default_context(cafile=ca_bundle or certifi.where())
    # create_default_context already sets both; asserted so no later edit can weaken them.
    assert context.verify_mode is ssl.CERT_REQUIRED
    assert context.check_hostname
    return context


def make_http_client(
    config: HttpConfig,
    *,
    system: str = "",
    transport: httpx.AsyncBaseTransport | None = None,
) -> httpx.AsyncClient:
    """The httpx client for one system: explicit timeouts and limits, TLS verified.

    ``trust_env`` is off so that neither proxy variables nor ``.netrc`` credentials can
    change where requests go or what they carry. ``transport`` is for tests
    (``httpx.MockTransport`` or ``httpx.ASGITransport``).
    """
    return httpx.AsyncClient(
        base_url=config.base_url,
        timeout=httpx.Timeout(
            connect=config.connect_timeout_s,
            read=config.read_timeout_s,
            write=config.write_timeout_s,
            pool=config.pool_timeout_s,
        ),
        limits=httpx.Limits(
            max_connections=config.max_connections,
            max_keepalive_connections=config.max_keepalive_connections,
            keepalive_expiry=config.keepalive_expiry_s,
        ),
        verify=make_ssl_context(config.ca_bundle, system=system),
        transport=transport,
        follow_redirects=False,
        trust_env=False,
        headers={"User-Agent": config.user_agent, "Accept": "application/json"},
    )


def new_correlation_id() -> str:
    """A fresh correlation id (32 hex digits)."""
    return uuid.uuid4().hex


class SystemClient:
    """Governed, authenticated HTTP access to one vendor system.

    Use as ``async with SystemClient(...) as client:`` (it closes its httpx client) and
    call :meth:`request`. ``rng`` drives the backoff jitter (seed it in tests);
    ``wall_clock`` is epoch time, only used to read an HTTP-date ``Retry-After`` from a
    response without a ``Date`` header.
    """

    def __init__(
        self,
        system: str,
        config: HttpConfig,
        *,
        auth: AuthStrategy,
        governor: Governor,
        signals: ErrorSignals | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        rng: random.Random | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.system = system
        self.config = config
        self.auth = auth
        self.governor = governor
        self.signals = signals or ErrorSignals()
        self.http = make_http_client(config, system=system, transport=transport)
        self.redact = Redactor(auth.secret_values)
        self._rng = rng or random.Random()
        self._wall_clock = wall_clock

    async def __aenter__(self) -> SystemClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the underlying httpx client."""
        await self.http.aclose()

    async def request(
        self,
        method: str,
        path: str,
        *,
        lane: Lane = Lane.MASTER_DATA,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        data: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
        idempotent: bool | None = None,
        correlation_id: str | None = None,
        deadline_s: float | None = None,
    ) -> httpx.Response:
        """Send one request, retrying what is safe to retry; return the 1xx-3xx response.

        ``json`` is encoded with msgspec (Structs welcome); ``data`` is a form body.
        ``idempotent`` says a repeat cannot duplicate an effect; it defaults to true for
        GET/HEAD/OPTIONS/PUT/DELETE and when an ``idempotency_key`` is given (only for
        vendors that take one). A request that is not idempotent is still retried after a
        throttle, a 401 refresh or a failure before it was sent, never after it may have
        reached the vendor. ``deadline_s`` bounds the whole call, retries and governor
        waits included (a trio cancel scope).

        Raises PermanentError, or the last RetryableError / ThrottledError once attempts
        are spent, the deadline passes, or a retry would not be safe.
        """
        method = method.upper()
        correlation_id = correlation_id or new_correlation_id()
        merged = {self.config.correlation_header: correlation_id, **(headers or {})}
        if idempotency_key is not None:
            if self.signals.idempotency_header is None:
                raise ValueError(f"{self.signals.vendor} takes no idempotency key")
            merged[self.signals.idempotency_header] = idempotency_key
        if idempotent is None:
            idempotent = method in _IDEMPOTENT_METHODS or idempotency_key is not None
        content = msgspec.json.encode(json) if json is not None else None
        if content is not None:
            merged.setdefault("Content-Type", "application/json")
        call = _Call(method, path, lane, params, content, data, merged, correlation_id, idempotent)
        if deadline_s is None:
            return await self._run(call)
        try:
            with trio.fail_after(deadline_s):
                return await self._run(call)
        except trio.TooSlowError as exc:
            error = RetryableError(
                self.redact(
                    f"{method} {_bare(path)}: no result within the {deadline_s:g} s deadline"
                ),
                system=self.system,
                code="DEADLINE",
            )
            self._event("warning", "http.deadline", call, error, deadline_s=deadline_s)
            raise error from exc

    async def _run(self, call: _Call) -> httpx.Response:
        attempt = 0
        refreshed = False
        while True:
            attempt += 1
            try:
                response, credential = await self._send(call)
            except _AttemptFailed as exc:  # transport failure or token endpoint trouble
                failure: AdapterError = exc.error
                cause = exc.error.__cause__
                safe = call.idempotent or not exc.sent
            else:
                self.signals.observe(response, self.governor)
                verdict = self.signals.classify(response, now_epoch=self._wall_clock())
                if verdict.outcome is Outcome.OK:
                    return response
                unauthorized = verdict.outcome is Outcome.UNAUTHORIZED
                if unauthorized and self.auth.refreshable and not refreshed:
                    # A refused credential is not a failed attempt: refresh and go again.
                    refreshed = True
                    attempt -= 1
                    await self.auth.invalidate(credential)
                    self._event("info", "http.reauth", call, status=verdict.status)
                    continue
                failure = self._error(call, verdict)
                cause = None
                # Throttles are refused before the vendor acts; a 5xx may have acted.
                safe = call.idempotent or verdict.outcome is Outcome.THROTTLE
            retry_after = failure.retry_after_s if isinstance(failure, ThrottledError) else None
            if isinstance(failure, ThrottledError):
                self.governor.throttled()
                if retry_after is not None:
                    self.governor.pause_for(retry_after)
            if (
                not isinstance(failure, RetryableError)
                or not safe
                or attempt >= self.config.retry.max_attempts
            ):
                self._event("error", "http.failed", call, failure, attempt=attempt)
                raise failure from cause
            # After a Retry-After the governor's pause does the waiting, for everyone.
            delay = 0.0
            if retry_after is None:
                throttled = isinstance(failure, ThrottledError)
                delay = self.config.retry.delay_s(attempt, self._rng, throttled=throttled)
            self._event("warning", "http.retry", call, failure, attempt=attempt, delay_s=delay)
            await trio.sleep(delay)

    async def _send(self, call: _Call) -> tuple[httpx.Response, object]:
        async with self.governor.slot(call.lane):
            request = self.http.build_request(
                call.method,
                call.path,
                params=call.params,
                content=call.content,
                data=call.data,
                headers=call.headers,
            )
            correlation = (self.config.correlation_header, call.correlation_id)
            try:
                credential = await self.auth.authorize(request, self.http, correlation=correlation)
            except AdapterError as exc:  # the token endpoint failed: nothing was sent
                raise _AttemptFailed(exc, sent=False) from exc
            try:
                response = await self.http.send(request)
            except httpx.TransportError as exc:
                error = transport_error(exc, system=self.system, redact=self.redact)
                error.__cause__ = exc
                raise _AttemptFailed(error, sent=request_may_have_been_sent(exc)) from exc
            return response, credential

    def _event(
        self,
        level: str,
        event: str,
        call: _Call,
        failure: AdapterError | None = None,
        **fields: Any,
    ) -> None:
        """Log one event about ``call``, every string in it redacted."""
        if failure is not None:
            fields |= {"status": failure.status, "code": failure.code, "error": str(failure)}
            if isinstance(failure, ThrottledError):
                fields["retry_after_s"] = failure.retry_after_s
        fields |= {"method": call.method, "path": _bare(call.path)}
        clean = {k: self.redact(v) if isinstance(v, str) else v for k, v in fields.items()}
        getattr(_log, level)(event, system=self.system, correlation_id=call.correlation_id, **clean)

    def _error(self, call: _Call, verdict: Verdict) -> AdapterError:
        detail = f" {verdict.code}" if verdict.code else ""
        message = self.redact(
            f"{call.method} {_bare(call.path)} → {verdict.status}{detail}: {verdict.message}"
        )[:MAX_MESSAGE_CHARS]
        fields = {"system": self.system, "status": verdict.status, "code": verdict.code}
        if verdict.outcome is Outcome.THROTTLE:
            return ThrottledError(message, retry_after_s=verdict.retry_after_s, **fields)
        if verdict.outcome is Outcome.RETRY:
            return RetryableError(message, **fields)
        return PermanentError(message, **fields)


class _AttemptFailed(Exception):
    """One attempt failed before any response; ``sent``: the vendor may have seen it."""

    def __init__(self, error: AdapterError, *, sent: bool) -> None:
        super().__init__(str(error))
        self.error = error
        self.sent = sent


class _Call(msgspec.Struct, frozen=True):
    method: str
    path: str
    lane: Lane
    params: Any
    content: bytes | None
    data: Any
    headers: dict[str, str]
    correlation_id: str
    idempotent: bool


def _bare(path: str) -> str:
    """The path without its query: queries can carry personal data or keys."""
    return path.split("?", 1)[0]
