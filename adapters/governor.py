"""The governor: one per system, in front of every request it makes.

It grants request slots strictly by lane priority, then first come first served within a
lane, and only when every limit allows: no Retry-After pause in force, a free concurrency
slot, a token in the (adaptive) bucket, and room in the rolling quota — non-critical lanes
may not eat into the quota's reserve. Everything runs on ``trio.current_time()``.

Waiting costs nothing while nothing changes: queued tasks sleep on their own
``trio.Event``; only the head of the queue also sleeps until the next time-based change
(a token falling due, a pause ending, quota freeing up). A release or any state change
grants whoever has become eligible and wakes the new head.
"""

from __future__ import annotations

import enum
import math
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import msgspec
import trio

from .quota import RollingQuota
from .ratelimit import AdaptiveTokenBucket


class Lane(enum.IntEnum):
    """Priority lanes, most urgent first."""

    CRITICAL = 0
    """Financial postings: time and expenses to the ERP, invoices, payments."""
    MASTER_DATA = 1
    """Customers, projects, people, rates."""
    ANALYTICS = 2
    """Reporting, feedback and reconciliation reads."""


class GovernorConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Limits of one system (``systems.<name>.limits`` in the configuration)."""

    rate_per_s: float
    burst: int
    max_concurrency: int
    daily_quota: int | None = None
    quota_reserve: int = 0
    quota_window_s: float = 86_400.0
    quota_bucket_s: float = 60.0
    vendor_usage_ttl_s: float = 300.0
    decrease_factor: float = 0.5
    min_rate_fraction: float = 0.1
    decrease_cooldown_s: float = 1.0
    recovery_quiet_s: float = 60.0
    recovery_interval_s: float = 10.0
    recovery_step_fraction: float = 0.1

    def __post_init__(self) -> None:
        # ValueError, so msgspec reports it with the offending path when decoding config.
        if self.rate_per_s <= 0 or self.burst < 1 or self.max_concurrency < 1:
            raise ValueError("rate_per_s must be > 0, burst and max_concurrency >= 1")
        if not 0 < self.decrease_factor < 1 or not 0 < self.min_rate_fraction <= 1:
            raise ValueError("decrease_factor must be in (0, 1), min_rate_fraction in (0, 1]")
        if self.quota_reserve < 0 or (
            self.daily_quota is not None and self.quota_reserve >= self.daily_quota
        ):
            raise ValueError("quota_reserve must be >= 0 and below daily_quota")


class GovernorSnapshot(msgspec.Struct, frozen=True, kw_only=True):
    """The governor's state at ``now`` (trio clock), for ``pssync limits`` and metrics."""

    now: float
    rate_per_s: float
    effective_rate_per_s: float
    burst: int
    tokens: float
    max_concurrency: int
    in_flight: int
    queued: dict[str, int]
    quota_used: int
    quota_limit: int | None
    quota_reserve: int
    paused_until: float | None
    throttle_count: int
    grants: int
    grants_by_lane: dict[str, int]


class _Waiter:
    __slots__ = ("event", "granted", "granted_at", "lane", "timed")

    def __init__(self, lane: Lane) -> None:
        self.lane = lane
        self.event = trio.Event()
        self.granted = False
        self.granted_at = 0.0
        self.timed = False  # sleeping with a timer, so it will re-check without a wake-up


class Governor:
    """Rate, burst, concurrency, rolling quota and priority lanes for one system.

    Use ``async with governor.slot(Lane.CRITICAL): ...`` around each request; report vendor
    signals with :meth:`pause_for`, :meth:`throttled` and :meth:`observe_usage`.
    """

    def __init__(self, config: GovernorConfig, *, name: str = "") -> None:
        self.config = config
        self.name = name
        self._bucket = AdaptiveTokenBucket(
            rate_per_s=config.rate_per_s,
            burst=config.burst,
            decrease_factor=config.decrease_factor,
            min_rate_fraction=config.min_rate_fraction,
            decrease_cooldown_s=config.decrease_cooldown_s,
            recovery_quiet_s=config.recovery_quiet_s,
            recovery_interval_s=config.recovery_interval_s,
            recovery_step_fraction=config.recovery_step_fraction,
        )
        self._quota = RollingQuota(
            limit=config.daily_quota,
            reserve=config.quota_reserve,
            window_s=config.quota_window_s,
            bucket_s=config.quota_bucket_s,
            vendor_ttl_s=config.vendor_usage_ttl_s,
        )
        self._queues: dict[Lane, deque[_Waiter]] = {lane: deque() for lane in Lane}
        self._in_flight = 0
        self._paused_until = -math.inf
        self._throttle_count = 0
        self._grants = dict.fromkeys(Lane, 0)

    @asynccontextmanager
    async def slot(self, lane: Lane = Lane.MASTER_DATA) -> AsyncIterator[None]:
        """Wait for a grant in ``lane``, hold it for the body, release it on exit."""
        await self._acquire(lane)
        try:
            yield
        finally:
            self._in_flight -= 1
            self._dispatch(trio.current_time())

    def reconfigure(self, config: GovernorConfig) -> None:
        """Apply a reloaded configuration at once: rate, burst, concurrency, quota and
        reserve. Requests in flight keep their slots; waiters are re-examined now."""
        now = trio.current_time()
        self._bucket.reconfigure(
            rate_per_s=config.rate_per_s,
            burst=config.burst,
            min_rate_fraction=config.min_rate_fraction,
            recovery_step_fraction=config.recovery_step_fraction,
            now=now,
        )
        self._quota.reconfigure(limit=config.daily_quota, reserve=config.quota_reserve)
        self.config = config
        self._dispatch(now)

    def pause_for(self, seconds: float) -> None:
        """Grant nothing for ``seconds`` from now (a vendor's Retry-After)."""
        now = trio.current_time()
        self._paused_until = max(self._paused_until, now + max(0.0, seconds))
        self._dispatch(now)

    def throttled(self) -> None:
        """Record a vendor throttle: cut the effective rate (see AdaptiveTokenBucket)."""
        now = trio.current_time()
        self._throttle_count += 1
        self._bucket.on_throttled(now)
        self._dispatch(now)

    def observe_usage(self, used: int, limit: int) -> None:
        """Take the vendor's usage report for its rolling window (e.g. Sforce-Limit-Info)."""
        now = trio.current_time()
        self._quota.observe(used, limit, now)
        self._dispatch(now)

    def snapshot(self) -> GovernorSnapshot:
        """The current state, all numbers."""
        now = trio.current_time()
        self._bucket.advance(now)
        return GovernorSnapshot(
            now=now,
            rate_per_s=self._bucket.rate_per_s,
            effective_rate_per_s=self._bucket.effective_rate_per_s,
            burst=self._bucket.burst,
            tokens=self._bucket.tokens,
            max_concurrency=self.config.max_concurrency,
            in_flight=self._in_flight,
            queued={lane.name.lower(): len(queue) for lane, queue in self._queues.items()},
            quota_used=self._quota.used(now),
            quota_limit=self._quota.limit(now),
            quota_reserve=self._quota.reserve,
            paused_until=self._paused_until if self._paused_until > now else None,
            throttle_count=self._throttle_count,
            grants=sum(self._grants.values()),
            grants_by_lane={lane.name.lower(): count for lane, count in self._grants.items()},
        )

    async def _acquire(self, lane: Lane) -> None:
        await trio.lowlevel.checkpoint_if_cancelled()
        waiter = _Waiter(lane)
        self._queues[lane].append(waiter)
        delivered = False
        try:
            while True:
                now = trio.current_time()
                self._dispatch(now, caller=waiter)
                if waiter.granted:
                    break
                wake_at = self._wake_at(now) if waiter is self._head() else None
                waiter.timed = wake_at is not None
                if wake_at is None:
                    await waiter.event.wait()
                else:
                    with trio.move_on_at(wake_at):
                        await waiter.event.wait()
                waiter.timed = False
                if not waiter.granted:
                    waiter.event = trio.Event()
            # Granted without ever blocking: still yield once, as trio primitives do.
            await trio.lowlevel.cancel_shielded_checkpoint()
            delivered = True
        finally:
            if not delivered:
                self._abandon(waiter)

    def _abandon(self, waiter: _Waiter) -> None:
        # A waiter cancelled in the queue just leaves it. The granted branch is defensive:
        # the only checkpoint after a grant is shielded, but should anything raise there,
        # the slot, the token and the quota count go back rather than leak.
        if waiter.granted:
            self._in_flight -= 1
            self._bucket.refund()
            self._quota.refund(waiter.granted_at)
            self._grants[waiter.lane] -= 1
        else:
            self._queues[waiter.lane].remove(waiter)
        self._dispatch(trio.current_time())

    def _head(self) -> _Waiter | None:
        for queue in self._queues.values():  # dict order is lane priority order
            if queue:
                return queue[0]
        return None

    def _eligible(self, lane: Lane, now: float) -> bool:
        return (
            now >= self._paused_until
            and self._in_flight < self.config.max_concurrency
            and self._bucket.has_token(now)
            and self._quota.allows(critical=lane is Lane.CRITICAL, now=now)
        )

    def _dispatch(self, now: float, caller: _Waiter | None = None) -> None:
        # Strict priority: if the head cannot go, nobody behind it may take its token.
        while (head := self._head()) is not None and self._eligible(head.lane, now):
            self._queues[head.lane].popleft()
            self._bucket.take()
            self._quota.record(now)
            self._in_flight += 1
            self._grants[head.lane] += 1
            head.granted = True
            head.granted_at = now
            head.event.set()
        # Make sure someone is watching the clock for the (possibly new) head.
        if head is not None and head is not caller and not head.timed:
            head.event.set()

    def _wake_at(self, now: float) -> float | None:
        """When the head's time-based obstacles may be gone; None if only events matter."""
        head = self._head()
        assert head is not None
        times = []
        if now < self._paused_until:
            times.append(self._paused_until)
        if not self._bucket.has_token(now):
            times.append(self._bucket.next_token_at(now))
        if not self._quota.allows(critical=head.lane is Lane.CRITICAL, now=now):
            change_at = self._quota.next_change_at(now)
            if change_at is not None:
                times.append(change_at)
        return max(times) if times else None
