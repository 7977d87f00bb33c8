"""Fault injection in front of a simulated vendor, configurable at run time.

:class:`FaultInjector` wraps a vendor ASGI app. For every request outside
``/_sandbox/`` it draws, in this order and always all of them (so one knob does not
shift the random sequence of the others), from ``random.Random(seed)``:

1. a 429 burst check — deterministic, no draw: with ``burst_429_every = N`` and
   ``burst_429_length = M``, requests ``N+1 … N+M`` of every cycle of ``N+M`` are
   throttled (``errors.throttled(retry_after_s)``, the vendor's own shape);
2. ``timeout_rate`` — the request is never answered: the handler awaits until cancelled
   (the client's timeout or ``trio.move_on_after`` ends it);
3. ``error_rate`` — the vendor's 5xx (``errors.server_error(error_status)``);
4. latency — uniform in ``latency_ms = (min, max)`` milliseconds, slept with
   ``trio.sleep`` (virtual under ``autojump_clock``) before the vendor app runs;
5. ``malformed_rate`` — the vendor answers, then its body is cut in half (invalid JSON)
   while the status stays as the vendor set it (200 for reads).

Throttles, timeouts, 5xx and latency happen before the vendor app sees the request, so
nothing is written; a malformed body happens after, so the write did happen — the
nastiest case for a client, on purpose.

A vendor's OAuth token endpoint is faulted too (logins do meet outages), but in the
token endpoint's own form: when the vendor's errors are
:class:`~adapters.sandbox.vendor.TokenEndpointErrors` and the path is one of their
``token_paths``, throttles and 5xx come from ``token_throttled`` / ``token_server_error``
instead of the data API's shapes. Timeouts, latency and malformed bodies are the same
everywhere; the draws and counters do not depend on the path.
"""

from __future__ import annotations

import random
from typing import Any

import msgspec
import trio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .clock import SandboxClock
from .vendor import TokenEndpointErrors, VendorErrors

ADMIN_PREFIX = "/_sandbox"


class FaultConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """What to inject; all rates are probabilities per request in [0, 1]."""

    error_rate: float = 0.0
    error_status: int = 500
    timeout_rate: float = 0.0
    latency_ms: tuple[float, float] = (0.0, 0.0)
    burst_429_every: int = 0
    burst_429_length: int = 0
    retry_after_s: float | None = None
    malformed_rate: float = 0.0
    seed: int = 0


class FaultStats(msgspec.Struct, kw_only=True):
    """What the injector did since it was last configured."""

    requests: int = 0
    throttled: int = 0
    timeouts: int = 0
    errors: int = 0
    malformed: int = 0
    delayed_ms: float = 0.0


def is_admin_path(path: str) -> bool:
    return path == ADMIN_PREFIX or path.startswith(ADMIN_PREFIX + "/")


class FaultInjector:
    """Applies a :class:`FaultConfig` to every non-admin HTTP request of one vendor."""

    def __init__(
        self,
        config: FaultConfig | None,
        errors: VendorErrors,
        clock: SandboxClock,
    ) -> None:
        self.errors = errors
        self.token_errors = errors if isinstance(errors, TokenEndpointErrors) else None
        self.clock = clock
        self.configure(config or FaultConfig())

    def configure(self, config: FaultConfig) -> None:
        """Replace the configuration; restarts the random sequence and the counters."""
        low, high = config.latency_ms
        if not 0 <= low <= high:
            raise ValueError("latency_ms must be (min, max) with 0 <= min <= max")
        for name in ("error_rate", "timeout_rate", "malformed_rate"):
            if not 0.0 <= getattr(config, name) <= 1.0:
                raise ValueError(f"{name} must be within [0, 1]")
        self.config = config
        self.stats = FaultStats()
        self._random = random.Random(config.seed)

    def _in_burst(self, number: int) -> bool:
        every, length = self.config.burst_429_every, self.config.burst_429_length
        if every <= 0 or length <= 0:
            return False
        return (number - 1) % (every + length) >= every

    def wrap(self, app: ASGIApp) -> ASGIApp:
        """The faulty version of ``app``; admin paths pass straight through."""

        async def faulty(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http" or is_admin_path(scope.get("path", "")):
                await app(scope, receive, send)
                return
            await self._handle(app, scope, receive, send)

        return faulty

    def _token_endpoint(self, scope: Scope) -> TokenEndpointErrors | None:
        """The token-endpoint error shapes if ``scope`` is a request to a token endpoint."""
        if self.token_errors is None:
            return None
        path = scope.get("path", "")
        return self.token_errors if path in self.token_errors.token_paths else None

    async def _handle(self, app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
        config = self.config
        self.stats.requests += 1
        number = self.stats.requests
        draws = [self._random.random() for _ in range(4)]
        timeout_draw, error_draw, latency_draw, malformed_draw = draws

        token = self._token_endpoint(scope)
        if self._in_burst(number):
            self.stats.throttled += 1
            if token is not None:
                response = token.token_throttled(config.retry_after_s)
            else:
                response = self.errors.throttled(config.retry_after_s)
            await response(scope, receive, send)
            return
        if timeout_draw < config.timeout_rate:
            self.stats.timeouts += 1
            await trio.sleep_forever()
        if error_draw < config.error_rate:
            self.stats.errors += 1
            if token is not None:
                response = token.token_server_error(config.error_status)
            else:
                response = self.errors.server_error(config.error_status)
            await response(scope, receive, send)
            return
        low, high = config.latency_ms
        delay_ms = low + (high - low) * latency_draw
        if delay_ms > 0:
            self.stats.delayed_ms += delay_ms
            await trio.sleep(delay_ms / 1000.0)
        if malformed_draw < config.malformed_rate:
            self.stats.malformed += 1
            await app(scope, receive, _truncating(send))
            return
        await app(scope, receive, send)


def _truncating(send: Send) -> Send:
    """A ``send`` that buffers the response and delivers only half of its body."""
    start: dict[str, Any] = {}
    chunks: list[bytes] = []

    async def truncate(message: Message) -> None:
        if message["type"] == "http.response.start":
            start.update(message)
            return
        if message["type"] != "http.response.body":
            await send(message)
            return
        chunks.append(message.get("body", b""))
        if message.get("more_body", False):
            return
        body = b"".join(chunks)
        body = body[: len(body) // 2] if len(body) > 1 else b"{"
        headers = [
            (key, value)
            for key, value in start.get("headers", [])
            if key.lower() != b"content-length"
        ]
        headers.append((b"content-length", str(len(body)).encode()))
        await send({**start, "headers": headers})
        await send({"type": "http.response.body", "body": body, "more_body": False})

    return truncate
