"""The sandbox's notion of time, shared by every simulated vendor.

Vendors stamp records (``SystemModstamp``, ``updated_at``) with :meth:`SandboxClock.now`
and measure rate limits and rolling quotas with :meth:`SandboxClock.monotonic`.
:meth:`SandboxClock.advance` moves both, so a test can expire a Stripe idempotency key
after 24 h or roll Salesforce's 24-hour API window without waiting.

Tests under ``autojump_clock`` pass ``monotonic_source=trio.current_time`` so that
``trio.sleep`` and the sandbox agree on elapsed time. The sources are first read lazily,
so a clock may be built outside ``trio.run`` even with a trio source.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class SandboxClock:
    """Wall and monotonic time plus an offset that :meth:`advance` moves.

    With ``start`` given, :meth:`now` is ``start`` plus the monotonic time elapsed since
    the clock was first read (deterministic under a mock monotonic source); without it,
    :meth:`now` is the wall time (``wall_source``, default ``time.time``) plus the offset.
    """

    def __init__(
        self,
        *,
        start: float | None = None,
        monotonic_source: Callable[[], float] | None = None,
        wall_source: Callable[[], float] | None = None,
    ) -> None:
        self._start = start
        self._monotonic_source = monotonic_source or time.monotonic
        self._wall_source = wall_source or time.time
        self._base: float | None = None
        self._offset = 0.0

    @property
    def offset_s(self) -> float:
        """Seconds added by :meth:`advance` so far (persisted by the sandbox)."""
        return self._offset

    def set_offset(self, offset_s: float) -> None:
        """Restore an offset saved by :attr:`offset_s` (used when loading a snapshot)."""
        self._offset = float(offset_s)

    def _elapsed(self) -> float:
        current = self._monotonic_source()
        if self._base is None:
            self._base = current
        return current - self._base

    def now(self) -> float:
        """Epoch seconds: the simulated wall time."""
        if self._start is not None:
            return self._start + self._elapsed() + self._offset
        return self._wall_source() + self._offset

    def monotonic(self) -> float:
        """Seconds on a monotonic scale (never goes back; jumps forward on advance)."""
        return self._monotonic_source() + self._offset

    def advance(self, seconds: float) -> None:
        """Move both :meth:`now` and :meth:`monotonic` forward by ``seconds``."""
        if seconds < 0:
            raise ValueError("the sandbox clock only moves forward")
        self._offset += float(seconds)
