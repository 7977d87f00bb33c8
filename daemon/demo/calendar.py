"""Where the demo's business month sits: a start date that puts a month end in the run.

The scenario plays the week *ending* at each clock advance, so week ``k`` (from 1) covers
``[start + 7(k-1), start + 7k)`` days. The month-end spike needs a month end inside a
week, and late in the run so that there are projects and time by then (projects come
from the first week's deals, time from the second week on): the month end falls in the
last-but-one week, or the last one of a run of up to two weeks, three days into it.
The start is in the future of the real clock because the sandbox clock only moves forward.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True)
class BusinessCalendar:
    """The demo's business dates."""

    start: dt.date
    month_end: dt.date
    weeks: int

    @property
    def end(self) -> dt.date:
        """The day after the last week played (the business date at the end)."""
        return self.start + dt.timedelta(days=7 * self.weeks)

    @property
    def period(self) -> str:
        """The month reconciled at the end (``2026-12``)."""
        return f"{self.month_end.year:04d}-{self.month_end.month:02d}"

    def start_epoch(self) -> float:
        """Midnight UTC of :attr:`start`, in epoch seconds."""
        return dt.datetime.combine(self.start, dt.time(), tzinfo=dt.UTC).timestamp()


def month_end_after(day: dt.date) -> dt.date:
    """The last day of ``day``'s month."""
    next_month = (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    return next_month - dt.timedelta(days=1)


def spike_week(weeks: int) -> int:
    """The week (from 1) holding the month end: the last-but-one, or the last of two."""
    return weeks if weeks <= 2 else weeks - 1


def plan_calendar(weeks: int, today: dt.date) -> BusinessCalendar:
    """A calendar of ``weeks`` weeks with its month end in :func:`spike_week`."""
    if weeks < 1:
        raise ValueError("the demo needs at least one week")
    lead = dt.timedelta(days=7 * (spike_week(weeks) - 1) + 3)
    month_end = month_end_after(today)
    while month_end - lead <= today:
        month_end = month_end_after(month_end + dt.timedelta(days=1))
    return BusinessCalendar(start=month_end - lead, month_end=month_end, weeks=weeks)
