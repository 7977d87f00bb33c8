"""A rolling request quota (a vendor's "N calls per 24 hours") with a reserve.

Grants are counted in time buckets rather than one timestamp each so that a 100,000-call
day costs a few hundred deque entries; a bucket leaves the window only when its newest
possible entry has, so the count errs on the safe (high) side by at most one bucket.
"""

from __future__ import annotations

from collections import deque


class RollingQuota:
    """Counts our grants over a rolling window and folds in the vendor's own usage view.

    ``limit`` is the configured quota (``None``: only what the vendor reports).
    ``reserve`` calls are kept back for critical work. A vendor observation
    (``Sforce-Limit-Info: api-usage=used/limit``) counts other clients of the same org too;
    it is trusted for ``vendor_ttl_s`` and then dropped, so a quota blocked only by a stale
    observation lets one request through to fetch a fresh one.
    """

    def __init__(
        self,
        *,
        limit: int | None,
        reserve: int,
        window_s: float,
        bucket_s: float,
        vendor_ttl_s: float,
    ) -> None:
        self._limit = limit
        self.reserve = reserve
        self._window_s = window_s
        self._bucket_s = bucket_s
        self._vendor_ttl_s = vendor_ttl_s
        self._buckets: deque[list[float]] = deque()  # [start, count]
        self._local = 0
        self._vendor: tuple[int, int, float] | None = None  # used, limit, observed_at
        self._since_vendor = 0

    def record(self, now: float) -> None:
        """Count one grant at ``now``."""
        if self._buckets and now < self._buckets[-1][0] + self._bucket_s:
            self._buckets[-1][1] += 1
        else:
            self._buckets.append([now, 1])
        self._local += 1
        self._since_vendor += 1

    def refund(self, granted_at: float) -> None:
        """Uncount a grant made at ``granted_at`` that was never used."""
        for bucket in reversed(self._buckets):
            if bucket[0] <= granted_at and bucket[1] > 0:
                bucket[1] -= 1
                self._local -= 1
                self._since_vendor = max(0, self._since_vendor - 1)
                return

    def reconfigure(self, *, limit: int | None, reserve: int) -> None:
        """Take a new configured quota and reserve (a reload); counts so far are kept."""
        self._limit = limit
        self.reserve = reserve

    def observe(self, used: int, limit: int, now: float) -> None:
        """Take the vendor's report of usage in its own rolling window."""
        self._vendor = (used, limit, now)
        self._since_vendor = 0

    def used(self, now: float) -> int:
        """Calls counted against the quota at ``now``."""
        self._expire(now)
        vendor = self._fresh_vendor(now)
        if vendor is None:
            return self._local
        return max(self._local, vendor[0] + self._since_vendor)

    def limit(self, now: float) -> int | None:
        """The quota in force at ``now`` (the lower of configured and vendor-reported)."""
        vendor = self._fresh_vendor(now)
        if vendor is None:
            return self._limit
        return vendor[1] if self._limit is None else min(self._limit, vendor[1])

    def allows(self, *, critical: bool, now: float) -> bool:
        """Whether one more call fits; non-critical calls may not touch the reserve."""
        limit = self.limit(now)
        if limit is None:
            return True
        remaining = limit - self.used(now)
        return remaining >= 1 if critical else remaining - self.reserve >= 1

    def next_change_at(self, now: float) -> float | None:
        """The next time the count can fall: the oldest bucket or observation expiring."""
        self._expire(now)
        times = []
        if self._buckets:
            times.append(self._buckets[0][0] + self._bucket_s + self._window_s)
        vendor = self._fresh_vendor(now)
        if vendor is not None:
            times.append(vendor[2] + self._vendor_ttl_s)
        return min(times) if times else None

    def _fresh_vendor(self, now: float) -> tuple[int, int, float] | None:
        if self._vendor is not None and now >= self._vendor[2] + self._vendor_ttl_s:
            self._vendor = None
        return self._vendor

    def _expire(self, now: float) -> None:
        while self._buckets and self._buckets[0][0] + self._bucket_s + self._window_s <= now:
            _start, count = self._buckets.popleft()
            self._local -= int(count)
