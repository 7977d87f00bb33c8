"""Limit primitives the simulated vendors enforce the way the real ones do.

- :class:`TokenBucket` — requests per second with a burst (Kantata, Stripe, NetSuite 429s).
- :class:`ConcurrencyGate` — in-flight request cap (NetSuite concurrency governance,
  Salesforce long-running requests).
- :class:`RollingQuota` — a count over a rolling window (Salesforce's 24-hour API budget).

All of them read :class:`~adapters.sandbox.clock.SandboxClock`, never the wall clock.
"""

from __future__ import annotations

import collections
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from .clock import SandboxClock


class TokenBucket:
    """A bucket of ``burst`` tokens refilled at ``rate_per_s``; one token per request."""

    def __init__(self, rate_per_s: float, burst: int, clock: SandboxClock) -> None:
        if rate_per_s <= 0 or burst < 1:
            raise ValueError("rate_per_s must be > 0 and burst >= 1")
        self.rate_per_s = float(rate_per_s)
        self.burst = int(burst)
        self._clock = clock
        self._tokens = float(burst)
        self._updated: float | None = None

    def _refill(self) -> None:
        now = self._clock.monotonic()
        if self._updated is not None:
            elapsed = max(0.0, now - self._updated)
            self._tokens = min(float(self.burst), self._tokens + elapsed * self.rate_per_s)
        self._updated = now

    def try_acquire(self) -> float | None:
        """Take a token: None when granted, else seconds until one is available."""
        self._refill()
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return None
        return (1.0 - self._tokens) / self.rate_per_s


class ConcurrencyGate:
    """At most ``limit`` holders at once; callers that do not fit are refused, not queued."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("limit must be >= 1")
        self.limit = limit
        self.active = 0

    def try_enter(self) -> bool:
        if self.active >= self.limit:
            return False
        self.active += 1
        return True

    def exit(self) -> None:
        if self.active <= 0:
            raise RuntimeError("ConcurrencyGate.exit() without a matching try_enter()")
        self.active -= 1

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[bool]:
        """``async with gate.slot() as entered:`` — ``entered`` is False when refused."""
        entered = self.try_enter()
        try:
            yield entered
        finally:
            if entered:
                self.exit()


class RollingQuota:
    """At most ``limit`` uses in any ``window_s`` seconds (exact: one timestamp per use)."""

    def __init__(self, limit: int, window_s: float, clock: SandboxClock) -> None:
        self.limit = limit
        self.window_s = window_s
        self._clock = clock
        self._uses: collections.deque[float] = collections.deque()

    def _expire(self) -> None:
        horizon = self._clock.monotonic() - self.window_s
        while self._uses and self._uses[0] <= horizon:
            self._uses.popleft()

    @property
    def used(self) -> int:
        self._expire()
        return len(self._uses)

    def try_use(self) -> bool:
        """Count one use: False (and nothing counted) when the window is full."""
        self._expire()
        if len(self._uses) >= self.limit:
            return False
        self._uses.append(self._clock.monotonic())
        return True

    def reset(self) -> None:
        self._uses.clear()
