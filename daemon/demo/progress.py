"""The demo's live progress: a redrawn block on a terminal, a plain line otherwise.

:func:`render_block` and :func:`render_line` are pure functions of a :class:`ProgressView`;
:class:`ProgressDisplay` decides which to write and when. On a terminal the block is
redrawn in place with two ANSI sequences (cursor up to the block's first line, clear to
the end of the screen), so nothing but the standard library is needed; into a pipe or a
file it writes one line every ``interval_s`` seconds, which reads well in CI logs.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TextIO

from .readings import JournalReading, SandboxReading

_UP_AND_CLEAR = "\x1b[{lines}F\x1b[J"


@dataclass(frozen=True)
class ProgressView:
    """Everything one frame of the display shows."""

    elapsed_s: float
    phase: str
    """What the demo is doing: ``week 2 of 5``, ``draining``, ``reconciling`` …"""
    business_date: str
    journal: JournalReading
    sandbox: SandboxReading
    workflows: Sequence[str] = ()
    systems: dict[str, str] = field(default_factory=dict)
    """System name → vendor, to label events journaled per feed source."""


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}:{secs:02d}"


def _workflow_rows(view: ProgressView) -> list[tuple[str, int, int, int, int]]:
    names = list(view.workflows) or sorted(view.journal.runs)
    rows = []
    for name in names:
        runs = view.journal.runs.get(name, {})
        exceptions = sum(
            group.count
            for group in view.journal.exceptions
            if group.workflow == name and group.status == "open"
        )
        rows.append(
            (
                name,
                runs.get("completed", 0),
                view.journal.pending(name),
                runs.get("waiting", 0) + view.journal.held_runs(name),
                exceptions,
            )
        )
    return rows


def _pairs(values: dict[str, int]) -> str:
    return " · ".join(f"{name} {count:,}" for name, count in sorted(values.items())) or "none"


def render_block(view: ProgressView) -> list[str]:
    """The terminal frame: a header, a table per workflow, then backlog, events and calls."""
    journal = view.journal
    lines = [
        f"pssync demo · {view.phase} · business date {view.business_date} · "
        f"elapsed {_clock(view.elapsed_s)}",
        f"  {'workflow':<22}{'completed':>10}{'pending':>9}{'held':>8}{'exceptions':>12}",
    ]
    for name, completed, active, parked, exceptions in _workflow_rows(view):
        lines.append(f"  {name:<22}{completed:>10,}{active:>9,}{parked:>8,}{exceptions:>12,}")
    workflows = list(view.workflows) or sorted(journal.runs)
    lines.append(
        f"  backlog {journal.backlog(workflows):,} "
        f"(runs {journal.pending():,}, undispatched events {journal.undispatched(workflows):,})"
        f" · exceptions open {journal.exceptions_open():,}"
    )
    lines.append(f"  events journaled: {_pairs(journal.events_by_source)}")
    lines.append(f"  API calls: {_pairs(view.sandbox.requests)}")
    return lines


def render_line(view: ProgressView) -> str:
    """The plain line for a pipe or a log file."""
    journal = view.journal
    workflows = list(view.workflows) or sorted(journal.runs)
    completed = sum(runs.get("completed", 0) for runs in journal.runs.values())
    held = sum(runs.get("waiting", 0) for runs in journal.runs.values()) + journal.held_runs()
    return (
        f"[{_clock(view.elapsed_s)}] {view.phase} ({view.business_date}): "
        f"runs completed {completed:,} pending {journal.pending():,} held {held:,} · "
        f"backlog {journal.backlog(workflows):,} · exceptions {journal.exceptions_open():,} · "
        f"events {sum(journal.events_by_source.values()):,} · "
        f"API calls {sum(view.sandbox.requests.values()):,}"
    )


class ProgressDisplay:
    """Writes frames to ``stream``: redrawn in place on a TTY, a line per interval elsewhere."""

    def __init__(
        self,
        stream: TextIO,
        *,
        tty: bool | None = None,
        interval_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        width: Callable[[], int] | None = None,
    ) -> None:
        self.stream = stream
        self.tty = _isatty(stream) if tty is None else tty
        # A line wider than the terminal wraps, and the redraw would then move up too few
        # lines: the block is cut to the width instead.
        self._width = width or (lambda: shutil.get_terminal_size().columns)
        self.interval_s = interval_s
        self._clock = clock
        self._drawn = 0
        self._last_line_at: float | None = None

    def update(self, view: ProgressView, *, force: bool = False) -> None:
        """Show ``view``: always on a TTY; otherwise when ``interval_s`` has passed (or forced)."""
        if self.tty:
            width = max(20, self._width() - 1)
            block = [line[:width] for line in render_block(view)]
            prefix = _UP_AND_CLEAR.format(lines=self._drawn) if self._drawn else ""
            self.stream.write(prefix + "\n".join(block) + "\n")
            self._drawn = len(block)
        else:
            now = self._clock()
            last = self._last_line_at
            if not force and last is not None and now - last < self.interval_s:
                return
            self._last_line_at = now
            self.stream.write(render_line(view) + "\n")
        self.stream.flush()

    def note(self, text: str) -> None:
        """A line that stays (a week's events); on a TTY it goes above the live block."""
        if self.tty and self._drawn:
            self.stream.write(_UP_AND_CLEAR.format(lines=self._drawn))
            self._drawn = 0
        self.stream.write(text + "\n")
        self.stream.flush()


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
