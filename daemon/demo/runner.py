"""``pssync demo`` from start to summary, in one process and one trio run.

1. A fresh state directory; the daemon's JSON logs go to ``daemon.log`` in it.
2. The sandbox (seeded demo firm: ~25 customer groups, 100 consultants, templates) on
   ephemeral loopback ports, its clock set so the business month ends late in the run
   (:mod:`daemon.demo.calendar`).
3. The daemon — :func:`daemon.service.serve`, exactly what ``pssync run`` runs — with the
   built-in configuration (:mod:`daemon.demo.config`) written to ``pssync.toml``; it talks
   to the vendors over real HTTP on loopback.
4. The scenario (:class:`adapters.sandbox.scenario.Scenario`) plays one business week at a
   time; after each the demo lets the pipeline catch up (bounded per week), then waits for
   it to drain, asks for the month's reconciliation and waits again.
5. Readings of the journal and the sandbox make the summary; the daemon drains and stops,
   the sandbox stops, the journal stays.

Throughout, a live display (:mod:`daemon.demo.progress`) shows the pipeline's counts.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TextIO

import trio

from actors.errors import ConfigError
from adapters.sandbox.clock import SandboxClock
from adapters.sandbox.sandbox import SandboxConfig, build_sandbox
from adapters.sandbox.scenario import Scenario, WeekReport
from adapters.sandbox.server import serve_sandbox

from ..config import Config
from ..control import ControlRegistry
from ..control.protocol import Reconcile
from ..logging import configure_logging
from ..secrets import SecretResolver, resolve_all
from ..systemd import Notifier
from .calendar import BusinessCalendar, plan_calendar
from .config import (
    demo_environment,
    load_demo_config,
    sandbox_identifiers,
    write_demo_config,
)
from .options import LIMITS_NOTE, SANDBOX_OPTIONS, DemoOptions
from .progress import ProgressDisplay, ProgressView
from .readings import (
    JournalReading,
    SandboxReading,
    read_journal,
    read_sandbox,
    save_sandbox_counts,
)
from .summary import DemoOutcome, Summary, build_summary, render_summary
from .weeks import describe_week, totals


@dataclass
class _Run:
    """What the demo learns as it goes."""

    options: DemoOptions
    state_dir: Path
    calendar: BusinessCalendar
    started_at: float = field(default_factory=time.monotonic)
    progress: trio.CancelScope = field(default_factory=trio.CancelScope)
    """The live display's scope: cancelled once the summary is out."""
    phase: str = "starting"
    journal_path: str = ""
    workflows: list[str] = field(default_factory=list)
    reports: list[WeekReport] = field(default_factory=list)
    unavailable: list[str] = field(default_factory=list)
    journal: JournalReading = field(default_factory=JournalReading)
    daemon_status: int | None = None
    printed: bool = False
    """The summary is already on the terminal (``--keep-running``)."""

    def elapsed(self) -> float:
        return time.monotonic() - self.started_at

    def remaining(self) -> float:
        """Seconds left of the pace's budget."""
        return self.options.pace.budget_s(self.options.weeks) - self.elapsed()


def new_state_dir(base: Path | None = None, *, now: dt.datetime | None = None) -> Path:
    """``./pssync-demo-<UTC timestamp>/`` (a counter appended if it exists)."""
    base = base or Path.cwd()
    stamp = (now or dt.datetime.now(dt.UTC)).strftime("%Y%m%d-%H%M%S")
    candidate = base / f"pssync-demo-{stamp}"
    number = 1
    while candidate.exists():
        number += 1
        candidate = base / f"pssync-demo-{stamp}-{number}"
    return candidate


def prepare_state_dir(path: Path | None) -> Path:
    """Create the state directory; refuse one that already holds a journal."""
    state_dir = (path or new_state_dir()).resolve()
    if (state_dir / "journal.sqlite3").exists():
        raise ConfigError(
            f"{state_dir} already holds a journal; the demo starts from nothing "
            "(give a new directory, or leave --state-dir out)",
            path="--state-dir",
        )
    state_dir.mkdir(parents=True, exist_ok=True)
    return state_dir


def run_demo(options: DemoOptions, *, out: TextIO | None = None) -> int:
    """The whole demo; the exit status (0 when the summary is consistent)."""
    out = out or sys.stdout
    tty = _isatty(out) if options.color is None else options.color
    state_dir = prepare_state_dir(options.state_dir)
    calendar = plan_calendar(options.weeks, dt.datetime.now(dt.UTC).date())
    run = _Run(options=options, state_dir=state_dir, calendar=calendar)
    display = ProgressDisplay(out, tty=tty, interval_s=5.0)
    log_path = state_dir / "daemon.log"
    print(
        f"pssync demo: {options.weeks} business week{'' if options.weeks == 1 else 's'} "
        f"from {calendar.start} "
        f"(month end {calendar.month_end}); state in {state_dir}\n"
        f"sandbox: {LIMITS_NOTE}; the daemon's log goes to {log_path}",
        file=out,
        flush=True,
    )
    with log_path.open("a", encoding="utf-8") as log_file:
        summary = trio.run(_demo, run, display, log_file, log_path)
    if summary is None:
        print("pssync demo: interrupted; the journal is in " + run.journal_path, file=out)
        return 130
    if not run.printed:
        out.write(render_summary(summary, color=tty))
        out.flush()
    return 0 if summary.ok else 1


async def _demo(
    run: _Run, display: ProgressDisplay, log_file: TextIO, log_path: Path
) -> Summary | None:
    pace = run.options.pace
    clock = SandboxClock()
    clock.advance(max(0.0, run.calendar.start_epoch() - clock.now()))
    sandbox = build_sandbox(
        SandboxConfig(seed=run.options.seed, seed_data=True, options=SANDBOX_OPTIONS), clock=clock
    )
    scenario = Scenario(
        sandbox,
        seed=run.options.seed,
        wins_per_week=pace.wins_per_week,
        month_end_entries=pace.month_end_entries,
    )
    async with trio.open_nursery() as nursery:
        urls = await nursery.start(
            partial(serve_sandbox, sandbox, ports=dict.fromkeys(sandbox.apps, 0))
        )
        config_path = write_demo_config(
            run.state_dir,
            urls,
            poll_interval_s=pace.poll_interval_s,
            identifiers=sandbox_identifiers(sandbox),
        )
        config = load_demo_config(config_path)
        run.journal_path = config.journal.path
        configure_logging(config.log, stream=log_file)
        registry = ControlRegistry()
        daemon_done = trio.Event()
        watch = _StopWatch()
        root = await nursery.start(
            partial(_run_daemon, run, config, config_path, sandbox, registry, watch, daemon_done)
        )
        run.workflows = sorted(registry.workflows)
        if not registry.systems:
            run.unavailable.append(
                "the pipeline: the daemon started no system actors "
                "(daemon/service.py root_children built none)"
            )
        if not registry.workflows:
            run.unavailable.append("the workflows: the daemon runs no workflow")
        before = read_sandbox(sandbox)
        nursery.start_soon(_show_progress, run, display, sandbox)
        # Ctrl-C reaches serve(), which drains the daemon; the demo then stops too.
        with trio.CancelScope() as drive_scope:
            nursery.start_soon(_cancel_when_set, watch.draining, drive_scope)
            drained = await _drive(run, scenario, registry, display)
            run.phase = "summarising"
            run.journal = await _read_journal(run)
            after = read_sandbox(sandbox)
            save_sandbox_counts(run.state_dir / "sandbox-counts.json", before, after)
            summary = build_summary(
                DemoOutcome(
                    journal=run.journal,
                    before=before,
                    after=after,
                    journal_path=run.journal_path,
                    state_dir=str(run.state_dir),
                    log_path=str(log_path),
                    elapsed_s=run.elapsed(),
                    scenario=totals(run.reports, run.calendar, scenario.invoice_fates),
                    workflows=run.workflows,
                    reconcile_period=run.calendar.period,
                    unavailable=tuple(run.unavailable),
                    drained=drained,
                )
            )
            run.progress.cancel()
            await _show(run, display, sandbox, force=True)
            drive_scope.shield = True  # from here on, a stopped daemon is expected
        if drive_scope.cancelled_caught:
            run.phase = "interrupted: the daemon drains"
            await daemon_done.wait()
            nursery.cancel_scope.cancel()
            return None
        if run.options.keep_running:
            display.note(render_summary(summary, color=display.tty))
            display.note(
                "pssync demo: the daemon and the sandbox keep running; try\n"
                f"  pssync status --config {config_path}\n"
                f"  pssync replay WORKFLOW --dry-run --config {config_path}\n"
                "Ctrl-C stops them."
            )
            run.printed = True
        else:
            run.phase = "stopping the daemon"
            root.request_stop()
        await daemon_done.wait()
        nursery.cancel_scope.cancel()
    return summary


class _StopWatch(Notifier):
    """The daemon's systemd notifier, which also tells the demo when a drain begins
    (Ctrl-C reaches serve()'s signal handler, not the demo): the scenario stops at once
    rather than playing on while the daemon drains."""

    def __init__(self) -> None:
        super().__init__({})  # no NOTIFY_SOCKET: nothing goes to systemd
        self.draining = trio.Event()

    def stopping(self, status: str, *, extend_timeout_s: float | None = None) -> bool:
        self.draining.set()
        return super().stopping(status, extend_timeout_s=extend_timeout_s)


async def _cancel_when_set(event: trio.Event, scope: trio.CancelScope) -> None:
    await event.wait()
    scope.cancel()


async def _run_daemon(
    run: _Run,
    config: Config,
    config_path: Path,
    sandbox: Any,
    registry: ControlRegistry,
    notifier: Notifier,
    done: trio.Event,
    *,
    task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED,
) -> None:
    """``serve()`` with the demo's environment; sets ``done`` whenever it returns."""
    from ..service import serve

    environ = demo_environment(sandbox)
    secrets = resolve_all(config, SecretResolver(environ))
    try:
        run.daemon_status = await serve(
            config,
            secrets,
            notifier=notifier,
            config_file=str(config_path),
            environ=environ,
            registry=registry,
            task_status=task_status,
        )
    finally:
        done.set()


async def _drive(
    run: _Run, scenario: Scenario, registry: ControlRegistry, display: ProgressDisplay
) -> bool:
    """Play the weeks, drain, reconcile, drain; True when the pipeline drained."""
    pace = run.options.pace
    for week in range(1, run.options.weeks + 1):
        run.phase = f"week {week} of {run.options.weeks}"
        report = scenario.run_week()
        run.reports.append(report)
        display.note(describe_week(week, report))
        # Each week may take what the budget leaves after the reserve for the end.
        await _settle(run, max_s=min(pace.week_max_s, run.remaining() - pace.reserve_s))
    run.phase = "draining"
    drained = await _settle(run, max_s=min(pace.drain_max_s, run.remaining() - pace.reserve_s / 2))
    run.phase = f"reconciling {run.calendar.period}"
    if registry.reconcile is None:
        run.unavailable.append(
            "reconciliation: the daemon registered no reconcile handler "
            "(pssync reconcile answers unavailable)"
        )
    else:
        await registry.reconcile(Reconcile(period=run.calendar.period))
        drained = await _settle(run, max_s=min(pace.drain_max_s, run.remaining())) and drained
    return drained


async def _settle(run: _Run, *, max_s: float) -> bool:
    """Until nothing is due and no event arrived for ``settle_s`` (or ``max_s`` passed)."""
    pace = run.options.pace
    quiet_since: float | None = None
    last_seq = -1
    # Never less than one settling period: a late week still gets its events read.
    with trio.move_on_after(max(max_s, pace.settle_s + 1.0)):
        while True:
            await trio.sleep(0.25)
            reading = await _read_journal(run)
            run.journal = reading
            busy = reading.backlog(run.workflows) > 0 or reading.due_runs > 0
            now = time.monotonic()
            if busy or reading.max_seq != last_seq:
                quiet_since = None if busy else now
                last_seq = reading.max_seq
                continue
            if quiet_since is None:
                quiet_since = now
            elif now - quiet_since >= pace.settle_s:
                return True
    return False


async def _read_journal(run: _Run) -> JournalReading:
    if not run.journal_path:
        return JournalReading()
    return await trio.to_thread.run_sync(partial(_read_if_present, run.journal_path, time.time()))


def _read_if_present(path: str, now: float) -> JournalReading:
    if not os.path.exists(path):
        return JournalReading()
    return read_journal(path, now=now)


async def _show_progress(run: _Run, display: ProgressDisplay, sandbox: Any) -> None:
    interval = 0.5 if display.tty else 1.0
    with run.progress:
        while True:
            await _show(run, display, sandbox)
            await trio.sleep(interval)


async def _show(run: _Run, display: ProgressDisplay, sandbox: Any, *, force: bool = False) -> None:
    view = progress_view(run, await _read_journal(run), read_sandbox(sandbox), sandbox.clock)
    display.update(view, force=force)


def progress_view(
    run: _Run, journal: JournalReading, sandbox: SandboxReading, clock: SandboxClock
) -> ProgressView:
    business = dt.datetime.fromtimestamp(clock.now(), tz=dt.UTC).date().isoformat()
    return ProgressView(
        elapsed_s=run.elapsed(),
        phase=run.phase,
        business_date=business,
        journal=journal,
        sandbox=sandbox,
        workflows=run.workflows,
    )


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
