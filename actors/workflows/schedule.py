"""When reconcile runs: on a schedule (:class:`ReconcileScheduler`) and on demand
(:func:`request_reconciliation`, called by the control socket's ``reconcile`` op).

Both only append a ``ReconciliationRequested`` event; the dispatcher and the reconcile
runner do the rest, durably. Periods are UTC calendar days in windows of
``max(1, round(interval_s / 86400))`` days counted from the Unix epoch: a nightly
schedule reconciles yesterday, a weekly one the last seven days. At every tick the
scheduler requests the last *complete* window. The scheduled request's envelope id is
derived from the window alone, so a tick repeated after a restart (or by two ticks in
one window, when ``interval_s`` is under a day) is dropped by the journal: exactly one
scheduled request per period.

The month-end close of time-and-materials invoices (workflow ``tm_close``) is scheduled
the same way (:class:`TmCloseScheduler`): at every tick it appends ``BillingPeriodClosed``
for the newest calendar month (UTC) whose end lies at least ``close_after_days`` days in
the past (:func:`last_closable_period`; with 3, January closes from 4 February 00:00
UTC), its envelope id derived from the month alone: exactly one close request per month,
however often the scheduler ticks or restarts. An operator closes a month on demand
with :func:`request_close` (the control socket's ``close_period`` op): like an on-demand
reconciliation its id includes the time, so it is never dropped as a repeat of the
scheduled close, and a month that has not ended yet is refused. Both schedulers are a
:class:`Scheduler`, which ticks every ``interval_s`` and appends what its
:meth:`~Scheduler.scheduled` says.
"""

from __future__ import annotations

import time
from abc import abstractmethod
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import structlog
import trio

from actors.actor import Actor
from actors.interval import Interval
from actors.messages import BillingPeriodClosed, Envelope, Event, ReconciliationRequested
from actors.systems import event_record
from store import Journal

from .months import month_bounds, month_of

__all__ = [
    "DEFAULT_CLOSE_AFTER_DAYS",
    "ReconcileScheduler",
    "Scheduler",
    "TmCloseScheduler",
    "close_request",
    "last_closable_period",
    "last_complete_period",
    "request_close",
    "request_reconciliation",
]

log = structlog.get_logger(__name__)

_DAY_S = 86_400.0
SOURCE = "pssync"
"""The envelope source of requests pssync raises itself."""
DEFAULT_CLOSE_AFTER_DAYS = 3
"""Days after a month's end before its T&M drafts are finalized (late approvals land)."""


def last_complete_period(now: float, interval_s: float) -> tuple[date, date]:
    """The newest whole window of days (see the module docstring) ending before ``now``."""
    days = max(1, round(interval_s / _DAY_S))
    today = datetime.fromtimestamp(now, UTC).date()
    index = (today - date(1970, 1, 1)).days // days  # the window ``today`` is in
    start = date(1970, 1, 1) + timedelta(days=(index - 1) * days)
    return start, start + timedelta(days=days - 1)


def scheduled_request(period: tuple[date, date], now: float) -> Envelope:
    """The scheduler's request for ``period``; its id depends on the period only."""
    start, end = period
    return Envelope.new(
        ReconciliationRequested(period_start=start, period_end=end, requested_by="schedule"),
        source=SOURCE,
        object_id=f"reconcile:{start.isoformat()}..{end.isoformat()}",
        version="schedule",
        occurred_at=datetime.fromtimestamp(now, UTC),
        recorded_at=datetime.fromtimestamp(now, UTC),
    )


def last_closable_period(now: float, close_after_days: int) -> str:
    """The newest month (``YYYY-MM``) that ended ``close_after_days`` days before ``now``
    or earlier: its close moment, 00:00 UTC of the next month's first day plus that many
    days, has passed."""
    if close_after_days < 0:
        raise ValueError(f"close_after_days must be 0 or more, got {close_after_days}")
    # A month is closable once its successor's first day lies close_after_days behind:
    # the newest one is the month before the one that moment falls in.
    moment = datetime.fromtimestamp(now, UTC) - timedelta(days=close_after_days)
    return month_of(moment.date().replace(day=1) - timedelta(days=1))


def close_request(period: str, now: float) -> Envelope:
    """The close scheduler's request for ``period``; its id depends on the month only."""
    moment = datetime.fromtimestamp(now, UTC)
    return Envelope.new(
        BillingPeriodClosed(period=period, requested_by="schedule"),
        source=SOURCE,
        object_id=f"tm_close:{period}",
        version="schedule",
        occurred_at=moment,
        recorded_at=moment,
    )


async def request_close(
    journal: Journal,
    period: str,
    requested_by: str = "operator",
    *,
    now: float | None = None,
) -> Envelope:
    """Append an on-demand ``BillingPeriodClosed`` for ``period`` (``YYYY-MM``); returns
    its envelope.

    Each call is a new request (its id includes the time, unlike :func:`close_request`'s),
    so an operator can close a month before its scheduled close or again after finance
    repaired a draft. Raises ValueError for a malformed month or one that has not ended
    at ``now`` (closing it early would finalize drafts still being filled).
    """
    at = time.time() if now is None else now
    following = month_bounds(period)[1] + timedelta(days=1)
    if datetime.combine(following, datetime.min.time(), UTC) > datetime.fromtimestamp(at, UTC):
        raise ValueError(
            f"period {period!r} has not ended yet (it ends {following.isoformat()} 00:00 UTC):"
            " closing it now would finalize drafts still being filled"
        )
    envelope = await _append_on_demand(
        journal,
        BillingPeriodClosed(period=period, requested_by=requested_by),
        object_id=f"tm_close:{period}",
        requested_by=requested_by,
        at=at,
    )
    log.info(
        "billing period close requested",
        period=period,
        requested_by=requested_by,
        event_id=envelope.id,
    )
    return envelope


async def _append_on_demand(
    journal: Journal, body: Event, *, object_id: str, requested_by: str, at: float
) -> Envelope:
    """Append a request pssync raises on demand; its id includes the time (never deduped)."""
    moment = datetime.fromtimestamp(at, UTC)
    envelope = Envelope.new(
        body,
        source=SOURCE,
        object_id=object_id,
        version=f"{requested_by}@{at!r}",
        occurred_at=moment,
        recorded_at=moment,
    )
    await journal.append([event_record(envelope)])
    return envelope


async def request_reconciliation(
    journal: Journal,
    period: tuple[date, date],
    project_ids: Sequence[str] = (),
    requested_by: str = "operator",
    *,
    now: float | None = None,
) -> Envelope:
    """Append an on-demand ``ReconciliationRequested``; returns its envelope.

    Each call is a new request (its id includes the time), so an operator can reconcile
    a period again after fixing records. Raises ValueError for an inverted period.
    """
    start, end = period
    if end < start:
        raise ValueError(f"period ends ({end}) before it starts ({start})")
    at = time.time() if now is None else now
    projects = tuple(sorted(set(project_ids)))
    envelope = await _append_on_demand(
        journal,
        ReconciliationRequested(
            period_start=start, period_end=end, project_ids=projects, requested_by=requested_by
        ),
        object_id=f"reconcile:{start.isoformat()}..{end.isoformat()}:{','.join(projects)}",
        requested_by=requested_by,
        at=at,
    )
    log.info(
        "reconciliation requested",
        period_start=str(start),
        period_end=str(end),
        projects=len(projects),
        requested_by=requested_by,
        event_id=envelope.id,
    )
    return envelope


class Scheduler(Actor[None]):
    """Appends :meth:`scheduled`'s request every ``interval_s`` (a subclass says which).

    The first tick is at start (a period missed while the daemon was down is requested
    at once). ``interval_s`` may be an :class:`~actors.interval.Interval` shared with a
    reload: a changed period applies from the last tick, and None pauses the schedule
    (a period set later ticks at once). ``appended`` is called after a new request was
    appended (the daemon wakes the dispatcher with it). A request's envelope id must
    depend on its period only, so the journal drops a repeated one.
    """

    default_name = "scheduler"
    """The actor's name when the caller gives none."""

    def __init__(
        self,
        journal: Journal,
        *,
        interval_s: float | Interval | None,
        now: Callable[[], float] = time.time,
        appended: Callable[[], None] = lambda: None,
        name: str | None = None,
        **actor_options: float,
    ) -> None:
        # No messages: it runs on the clock.
        super().__init__(name or self.default_name, mailbox_size=0, **actor_options)
        self.interval = interval_s if isinstance(interval_s, Interval) else Interval(interval_s)
        self.journal = journal
        self._now = now
        self._appended = appended
        self._stop = trio.Event()

    @abstractmethod
    def scheduled(self, now: float, interval_s: float) -> Envelope:
        """The request due at wall time ``now``."""

    def request_stop(self) -> None:
        self._stop.set()

    async def tick(self) -> bool:
        """Append the request due now; True if that request is new.

        Does nothing (False) while the schedule is off (the interval is None).
        """
        interval_s = self.interval.seconds
        if interval_s is None:
            return False
        envelope = self.scheduled(self._now(), interval_s)
        result = await self.journal.append([event_record(envelope)])
        new = result.new_count == 1
        if new:
            log.info("scheduled request", scheduler=self.name, type=envelope.type, key=envelope.key)
            self._appended()
        return new

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        last_tick: float | None = None
        while not self._stop.is_set():
            self.heartbeat()
            now = trio.current_time()
            if last_tick is None and self.interval.seconds is not None:
                due_in = 0.0
            else:
                due_in = self.interval.due_in(now if last_tick is None else last_tick, now)
            if due_in <= 0:
                last_tick = now  # from the tick's start: the schedule does not drift
                await self.tick()
                continue
            # Wake every heartbeat interval to show we are alive and to see a new interval.
            with trio.move_on_after(min(due_in, self.heartbeat_interval_s)):
                await self._stop.wait()


class ReconcileScheduler(Scheduler):
    """Appends the scheduled ``ReconciliationRequested`` of the last complete window of
    days (:func:`last_complete_period`) every ``interval_s`` (see :class:`Scheduler`)."""

    default_name = "reconcile-scheduler"

    def scheduled(self, now: float, interval_s: float) -> Envelope:
        return scheduled_request(last_complete_period(now, interval_s), now)


class TmCloseScheduler(Scheduler):
    """Appends ``BillingPeriodClosed`` for the newest month closed ``close_after_days``
    ago (:func:`last_closable_period`) at every tick, every ``interval_s`` (see
    :class:`Scheduler`); one request per month, across ticks and restarts."""

    default_name = "tm-close-scheduler"

    def __init__(
        self, journal: Journal, *, close_after_days: int = DEFAULT_CLOSE_AFTER_DAYS, **options: Any
    ) -> None:
        if close_after_days < 0:  # fail at wiring, not at the first tick
            raise ValueError(f"close_after_days must be 0 or more, got {close_after_days}")
        super().__init__(journal, **options)
        self.close_after_days = close_after_days

    def scheduled(self, now: float, interval_s: float) -> Envelope:
        return close_request(last_closable_period(now, self.close_after_days), now)
