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
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta

import structlog
import trio

from actors.actor import Actor
from actors.interval import Interval
from actors.messages import Envelope, ReconciliationRequested
from actors.systems import event_record
from store import Journal

__all__ = ["ReconcileScheduler", "last_complete_period", "request_reconciliation"]

log = structlog.get_logger(__name__)

_DAY_S = 86_400.0
SOURCE = "pssync"
"""The envelope source of requests pssync raises itself."""


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
    moment = datetime.fromtimestamp(at, UTC)
    envelope = Envelope.new(
        ReconciliationRequested(
            period_start=start, period_end=end, project_ids=projects, requested_by=requested_by
        ),
        source=SOURCE,
        object_id=f"reconcile:{start.isoformat()}..{end.isoformat()}:{','.join(projects)}",
        version=f"{requested_by}@{at!r}",
        occurred_at=moment,
        recorded_at=moment,
    )
    await journal.append([event_record(envelope)])
    log.info(
        "reconciliation requested",
        period_start=str(start),
        period_end=str(end),
        projects=len(projects),
        requested_by=requested_by,
        event_id=envelope.id,
    )
    return envelope


class ReconcileScheduler(Actor[None]):
    """Appends the scheduled ``ReconciliationRequested`` every ``interval_s``.

    The first tick is at start (a period missed while the daemon was down is requested
    at once). ``interval_s`` may be an :class:`~actors.interval.Interval` shared with a
    reload: a changed period applies from the last tick, and None pauses the schedule
    (a period set later ticks at once). ``appended`` is called after a new request was
    appended (the daemon wakes the dispatcher with it).
    """

    def __init__(
        self,
        journal: Journal,
        *,
        interval_s: float | Interval | None,
        now: Callable[[], float] = time.time,
        appended: Callable[[], None] = lambda: None,
        name: str = "reconcile-scheduler",
        **actor_options: float,
    ) -> None:
        # No messages: it runs on the clock.
        super().__init__(name, mailbox_size=0, **actor_options)
        self.interval = interval_s if isinstance(interval_s, Interval) else Interval(interval_s)
        self.journal = journal
        self._now = now
        self._appended = appended
        self._stop = trio.Event()

    def request_stop(self) -> None:
        self._stop.set()

    async def tick(self) -> bool:
        """Request the last complete period; True if that request is new.

        Does nothing (False) while the schedule is off (the interval is None).
        """
        interval_s = self.interval.seconds
        if interval_s is None:
            return False
        now = self._now()
        period = last_complete_period(now, interval_s)
        result = await self.journal.append([event_record(scheduled_request(period, now))])
        new = result.new_count == 1
        if new:
            log.info(
                "scheduled reconciliation", period_start=str(period[0]), period_end=str(period[1])
            )
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
