"""An adaptive token bucket: continuous refill, multiplicative decrease, additive recovery.

Pure bookkeeping on times the caller passes in (the governor passes trio's clock), so it
never sleeps and is trivial to test.
"""

from __future__ import annotations

import math

# Float error can leave a bucket at 0.9999999 tokens at exactly the time the next token was
# due; without this slack the waiter would sleep again for a femtosecond, forever.
_EPSILON = 1e-9


class AdaptiveTokenBucket:
    """Token bucket whose effective rate falls on throttling and climbs back (AIMD).

    On :meth:`on_throttled` the effective rate is multiplied by ``decrease_factor`` (never
    below ``min_rate_fraction`` of the configured rate, and at most once per
    ``decrease_cooldown_s`` because one overload usually answers several requests at once
    with 429). After ``recovery_quiet_s`` without throttling it grows by
    ``recovery_step_fraction`` of the configured rate every ``recovery_interval_s``.
    """

    def __init__(
        self,
        *,
        rate_per_s: float,
        burst: int,
        decrease_factor: float,
        min_rate_fraction: float,
        decrease_cooldown_s: float,
        recovery_quiet_s: float,
        recovery_interval_s: float,
        recovery_step_fraction: float,
    ) -> None:
        self.rate_per_s = rate_per_s
        self.burst = burst
        self.effective_rate_per_s = rate_per_s
        self.tokens = float(burst)
        self._decrease_factor = decrease_factor
        self._floor = rate_per_s * min_rate_fraction
        self._cooldown_s = decrease_cooldown_s
        self._quiet_s = recovery_quiet_s
        self._interval_s = recovery_interval_s
        self._step = rate_per_s * recovery_step_fraction
        self._updated: float | None = None
        self._changed_at = 0.0
        self._recovering = False
        self._last_decrease_at = -math.inf

    def reconfigure(
        self,
        *,
        rate_per_s: float,
        burst: int,
        min_rate_fraction: float,
        recovery_step_fraction: float,
        now: float,
    ) -> None:
        """Take a new configured rate and burst (a reload); a throttled-down rate stays
        proportionally down and recovers towards the new rate."""
        self.advance(now)
        scale = self.effective_rate_per_s / self.rate_per_s
        self.rate_per_s = rate_per_s
        self.burst = burst
        self.effective_rate_per_s = rate_per_s * scale
        self.tokens = min(self.tokens, float(burst))
        self._floor = rate_per_s * min_rate_fraction
        self._step = rate_per_s * recovery_step_fraction

    def advance(self, now: float) -> None:
        """Bring tokens and effective rate up to ``now``."""
        if self._updated is None:
            self._updated = now
            return
        # Refill piecewise so each recovery step only speeds up the time after it.
        while (step_at := self._next_step_at()) is not None and step_at <= now:
            self._refill_to(step_at)
            self.effective_rate_per_s = min(self.rate_per_s, self.effective_rate_per_s + self._step)
            self._changed_at = step_at
            self._recovering = True
        self._refill_to(now)

    def has_token(self, now: float) -> bool:
        """Whether one token is available at ``now``."""
        self.advance(now)
        return self.tokens >= 1.0 - _EPSILON

    def take(self) -> None:
        """Spend one token (call only after :meth:`has_token` said yes)."""
        self.tokens -= 1.0

    def refund(self) -> None:
        """Give back a token taken for a grant that was never used."""
        self.tokens = min(float(self.burst), self.tokens + 1.0)

    def next_token_at(self, now: float) -> float:
        """When the next token is due, or a rate step may make it due sooner."""
        self.advance(now)
        if self.tokens >= 1.0 - _EPSILON:
            return now
        due = now + (1.0 - self.tokens) / self.effective_rate_per_s
        step_at = self._next_step_at()
        return due if step_at is None else min(due, step_at)

    def on_throttled(self, now: float) -> bool:
        """Cut the effective rate after a vendor throttle; return whether it was cut."""
        self.advance(now)
        if now - self._last_decrease_at < self._cooldown_s:
            return False
        self.effective_rate_per_s = max(
            self._floor, self.effective_rate_per_s * self._decrease_factor
        )
        self._last_decrease_at = now
        self._changed_at = now
        self._recovering = False
        return True

    def _next_step_at(self) -> float | None:
        if self.effective_rate_per_s >= self.rate_per_s:
            return None
        gap = self._interval_s if self._recovering else self._quiet_s
        return self._changed_at + gap

    def _refill_to(self, when: float) -> None:
        assert self._updated is not None
        if when > self._updated:
            elapsed = when - self._updated
            self.tokens = min(float(self.burst), self.tokens + elapsed * self.effective_rate_per_s)
            self._updated = when
