"""What a system's actor and pollers share: the pause switch and the operators' counters.

One :class:`SystemControl` exists per configured system for the life of the daemon. The
:class:`~actors.systems.actor.SystemActor` and every
:class:`~actors.systems.poller.Poller` of that system hold it, so a restarted incarnation
finds the system still paused and the counters still counting. Pausing is in memory: a
daemon restart resumes every system (a paused system is an operator's short-term tool,
not configuration).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass

import msgspec
import trio

from actors.interval import Interval


class FeedState(enum.StrEnum):
    """What a poller is doing now."""

    STARTING = "starting"
    POLLING = "polling"
    IDLE = "idle"
    """Caught up: sleeping ``poll_interval_s`` before the next poll."""
    PAUSED = "paused"
    """The system is paused by an operator."""
    BACKPRESSURE = "backpressure"
    """The workflow's backlog is above its high-water mark."""
    BACKOFF = "backoff"
    """The last poll failed; waiting before trying again."""
    POISONED = "poisoned"
    """The next record does not decode: parked on an open exception (category mapping)."""
    STOPPED = "stopped"


class FeedStatus(msgspec.Struct, frozen=True, kw_only=True):
    """One change feed as operators see it (``pssync actors``, metrics)."""

    name: str
    workflow: str
    state: FeedState
    watermark: str | None
    polls: int
    pages: int
    events_appended: int
    """New events this feed added to the journal."""
    duplicates: int
    """Events the journal already had (a re-read page after a crash, an overlapping poll)."""
    retryable_errors: int
    permanent_errors: int
    poison_records: int
    """Records that did not decode and were sent to the exception queue."""
    backpressure_waits: int
    last_error: str | None
    last_poll_at: float | None
    """trio time of the last successful poll."""


class SystemStatus(msgspec.Struct, frozen=True, kw_only=True):
    """One system as operators see it; ``queued`` is per lane (``critical``, …)."""

    system: str
    paused: bool
    queued: dict[str, int]
    in_flight: int
    executed: int
    failed: int
    abandoned: int
    """Requests dropped unstarted because their asker had already given up."""
    feeds: tuple[FeedStatus, ...]


@dataclass
class FeedStats:
    """A poller's mutable counters; kept here so they survive the poller's restarts."""

    name: str
    workflow: str
    state: FeedState = FeedState.STARTING
    watermark: str | None = None
    polls: int = 0
    pages: int = 0
    events_appended: int = 0
    duplicates: int = 0
    retryable_errors: int = 0
    permanent_errors: int = 0
    poison_records: int = 0
    backpressure_waits: int = 0
    last_error: str | None = None
    last_poll_at: float | None = None

    def status(self) -> FeedStatus:
        return FeedStatus(
            name=self.name,
            workflow=self.workflow,
            state=self.state,
            watermark=self.watermark,
            polls=self.polls,
            pages=self.pages,
            events_appended=self.events_appended,
            duplicates=self.duplicates,
            retryable_errors=self.retryable_errors,
            permanent_errors=self.permanent_errors,
            poison_records=self.poison_records,
            backpressure_waits=self.backpressure_waits,
            last_error=self.last_error,
            last_poll_at=self.last_poll_at,
        )


class SystemControl:
    """Pause switch, counters and feed stats of one system, shared by its actors."""

    def __init__(self, system: str, *, poll_interval: Interval | None = None) -> None:
        self.system = system
        #: The pollers' sleep once caught up, shared so that a reload reaches every
        #: poller (and its restarts); None leaves each poller its own settings.
        self.poll_interval = poll_interval
        self._paused = False
        self._resumed = trio.Event()
        self._resumed.set()
        self._listeners: list[Callable[[], None]] = []
        #: Per-lane queue lengths, published by the running SystemActor.
        self.queued: dict[str, int] = {}
        self.in_flight = 0
        self.executed = 0
        self.failed = 0
        self.abandoned = 0
        self.feeds: dict[str, FeedStats] = {}

    @property
    def paused(self) -> bool:
        return self._paused

    def pause(self) -> bool:
        """Stop starting commands and polls (in-flight ones finish); False if already."""
        if self._paused:
            return False
        self._paused = True
        self._resumed = trio.Event()
        self._notify()
        return True

    def resume(self) -> bool:
        """Undo :meth:`pause`; False if the system was not paused."""
        if not self._paused:
            return False
        self._paused = False
        self._resumed.set()
        self._notify()
        return True

    async def wait_resumed(self) -> None:
        """Return once the system is not paused."""
        while self._paused:
            await self._resumed.wait()

    def subscribe(self, listener: Callable[[], None]) -> Callable[[], None]:
        """Call ``listener()`` on every pause or resume; returns the unsubscribe."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def feed(self, name: str, workflow: str) -> FeedStats:
        """The stats of feed ``name``, created on first use."""
        stats = self.feeds.get(name)
        if stats is None:
            stats = self.feeds[name] = FeedStats(name=name, workflow=workflow)
        return stats

    def status(self) -> SystemStatus:
        """A snapshot for operators."""
        return SystemStatus(
            system=self.system,
            paused=self._paused,
            queued=dict(self.queued),
            in_flight=self.in_flight,
            executed=self.executed,
            failed=self.failed,
            abandoned=self.abandoned,
            feeds=tuple(stats.status() for stats in self.feeds.values()),
        )

    def _notify(self) -> None:
        for listener in list(self._listeners):
            listener()
