"""``pssync demo``'s knobs, its pace, and how it runs the simulated vendors."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: The simulated vendors as the demo runs them. The sandbox clock runs weeks ahead of the
#: real one while the daemon signs NetSuite requests with real timestamps, so the account
#: accepts that drift (its nonce check still refuses a replayed request). Kantata's limits
#: (10 requests/s; 2/s for listing and creating workspaces) would stretch a month of time
#: for 100 consultants over several minutes; a month compressed into a minute gets more,
#: and the demo says so.
SANDBOX_OPTIONS: dict[str, dict[str, Any]] = {
    "netsuite": {"timestamp_skew_s": 400 * 86_400.0},
    "kantata": {
        "rate_per_s": 60.0,
        "burst": 120,
        "workspace_rate_per_s": 10.0,
        "workspace_burst": 20,
    },
}
LIMITS_NOTE = (
    "Kantata's rate limits raised (10/s to 60/s; workspaces 2/s to 10/s) "
    "to fit a month into a minute"
)


@dataclass(frozen=True)
class Pace:
    """How fast the demo plays (all wall-clock seconds)."""

    poll_interval_s: float
    week_max_s: float
    """At most this long for the pipeline to catch up after a week, before the next one."""
    drain_max_s: float
    """At most this long for the final drain (and again after the reconciliation)."""
    settle_s: float
    """Quiet this long (no new event, nothing due) counts as caught up."""
    month_end_entries: int
    wins_per_week: tuple[int, int]
    base_s: float
    per_week_s: float
    """The scenario, the drain and the reconciliation together end within
    ``base_s + per_week_s * weeks`` (:meth:`budget_s`)."""
    reserve_s: float
    """Of the budget, kept for the final drain and the reconciliation."""

    def budget_s(self, weeks: int) -> float:
        """Seconds for ``weeks`` weeks, the drain and the reconciliation."""
        return self.base_s + self.per_week_s * weeks


NORMAL_PACE = Pace(
    poll_interval_s=1.0,
    week_max_s=15.0,
    drain_max_s=30.0,
    settle_s=2.5,
    month_end_entries=500,
    wins_per_week=(4, 7),
    base_s=15.0,
    per_week_s=17.0,
    reserve_s=25.0,
)
FAST_PACE = Pace(
    poll_interval_s=0.5,
    week_max_s=8.0,
    drain_max_s=15.0,
    settle_s=1.5,
    month_end_entries=150,
    wins_per_week=(2, 4),
    base_s=12.0,
    per_week_s=8.0,
    reserve_s=10.0,
)


@dataclass(frozen=True)
class DemoOptions:
    """``pssync demo``'s knobs."""

    weeks: int = 5
    fast: bool = False
    state_dir: Path | None = None
    seed: int = 0
    keep_running: bool = False
    color: bool | None = None
    """ANSI colour and the redrawn display; None: when stdout is a terminal."""

    @property
    def pace(self) -> Pace:
        return FAST_PACE if self.fast else NORMAL_PACE
