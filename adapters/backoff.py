"""Retry policy: bounded attempts, exponential backoff with full jitter.

Full jitter (a uniform draw in ``[0, min(cap, base * 2**n))``) spreads the retries of many
clients that failed together, so they do not hit a recovering vendor in lockstep.
"""

from __future__ import annotations

import random

import msgspec


class RetryPolicy(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """How often and how patiently one request is retried."""

    max_attempts: int = 5
    base_delay_s: float = 0.5
    # A throttle without Retry-After (Kantata, Salesforce) deserves a longer first wait
    # than a dropped connection does.
    throttle_base_delay_s: float = 2.0
    max_delay_s: float = 30.0

    def __post_init__(self) -> None:
        if (
            self.max_attempts < 1
            or min(self.base_delay_s, self.throttle_base_delay_s, self.max_delay_s) < 0
        ):
            raise ValueError("max_attempts must be >= 1 and delays >= 0")

    def delay_s(self, attempt: int, rng: random.Random, *, throttled: bool = False) -> float:
        """The pause after failed attempt number ``attempt`` (1-based)."""
        base = self.throttle_base_delay_s if throttled else self.base_delay_s
        ceiling = min(self.max_delay_s, base * 2 ** (attempt - 1))
        return rng.uniform(0.0, ceiling)
