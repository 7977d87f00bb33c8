"""A period that actors wait out and that ``pssync reload`` may change while they wait.

Pollers sleep ``poll_interval_s`` between polls and the reconcile scheduler ticks every
``interval_s``; both are schedules an operator tunes without a restart. The actors'
supervisors create them through factories, so the period cannot live in an actor: one
:class:`Interval` is created beside the factory and handed to every incarnation, and a
change outlives restarts. Waiters re-read it at each heartbeat, so a change takes effect
within one heartbeat interval, counted from the waiter's last run (a shorter period can
make the next run due at once; a longer one pushes it out).
"""

from __future__ import annotations

import math

__all__ = ["Interval"]


class Interval:
    """A period in seconds, or None for "never" (nothing is due until it is set)."""

    def __init__(self, seconds: float | None) -> None:
        self._seconds = _checked(seconds)

    @property
    def seconds(self) -> float | None:
        return self._seconds

    def set(self, seconds: float | None) -> float | None:
        """Change the period; returns the old one. ValueError unless positive and finite."""
        old, self._seconds = self._seconds, _checked(seconds)
        return old

    def due_in(self, since: float, now: float) -> float:
        """Seconds from ``now`` until a run ``since`` a moment is due again (<= 0: due)."""
        if self._seconds is None:
            return math.inf
        return since + self._seconds - now

    def __repr__(self) -> str:
        return f"Interval({self._seconds!r})"


def _checked(seconds: float | None) -> float | None:
    if seconds is not None and not (0 < seconds < math.inf):
        raise ValueError(f"an interval must be a positive number of seconds, got {seconds!r}")
    return seconds
