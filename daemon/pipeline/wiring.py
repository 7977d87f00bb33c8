"""The pipeline: systems, dispatcher and workflow runners as the root supervisor's children.

::

    pipeline = build_pipeline(config, secrets, journal, registry=registry, metrics=metrics)
    root = Supervisor("root", [*pipeline.children, ...])
    ...                                   # run the root until it drains
    await pipeline.aclose()               # then close the adapters (their HTTP clients)

:func:`build_pipeline` reads the configuration (clients and adapters through
:mod:`daemon.systems`, workflow settings, exception owners, ERP routes, field owners);
:func:`assemble` does the wiring from adapters already built, so the end-to-end test
stack (tests/e2e/stack.py) runs exactly this wiring against the in-process sandbox.

Children, in start order (a drain stops them in reverse: runners finish their runs before
the systems they call stop)::

    systems                      actors.systems.build_systems (actors + pollers)
    dispatcher                   journal → runs
    workflow:<name> …            one WorkflowHost per enabled workflow
    schedule:<name> …            a workflow's schedule, where its module defines one

Wake-ups, so nothing waits for a fallback poll: a poller's append wakes the dispatcher;
the dispatcher creating runs wakes that workflow's runner; every run outcome wakes the
dispatcher too (a run may have published an event, ProjectActivated).

Control: ``registry.systems[name]`` pauses the system's pollers and commands (its
SystemControl), ``registry.workflows[name]`` stops and restarts the workflow's runner
(runs in hand finish), ``registry.governors[name]`` is the system's governor, and
``registry.replay`` / ``registry.reconcile`` / ``registry.close_period`` create runs and
wake the runner.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

import structlog
import trio

from actors.errors import ControlError
from actors.interval import Interval
from actors.supervisor import ChildSpec
from actors.systems import Systems, SystemSettings, build_systems
from actors.workflows import (
    Enabled,
    ReplaySelection,
    RunOutcome,
    WorkflowDeps,
    default_owner,
    plan_replay,
    replay,
)
from actors.workflows.months import month_bounds
from actors.workflows.schedule import (
    DEFAULT_CLOSE_AFTER_DAYS,
    ReconcileScheduler,
    Scheduler,
    TmCloseScheduler,
    last_closable_period,
    last_complete_period,
    request_close,
    request_reconciliation,
)
from adapters.base import VendorAdapter
from store import AppendResult, EventRecord, Journal

from .slots import (
    DispatcherSlot,
    OnOutcome,
    SystemPausable,
    WorkflowHost,
    WorkflowSlot,
)

if TYPE_CHECKING:
    from ..control import ControlRegistry
    from ..control.protocol import ClosePeriod, Reconcile, Replay
    from ..metrics import Metrics

__all__ = ["Pipeline", "assemble", "parse_period", "replay_summary"]

log = structlog.get_logger(__name__)

OnAppend = Callable[[Sequence[EventRecord], AppendResult], None]
OnWatermark = Callable[[str, str, str], None]


class _NotifyingJournal:
    """The journal as pollers see it: appends and watermarks are reported once durable."""

    def __init__(self, journal: Journal, on_append: OnAppend, on_watermark: OnWatermark) -> None:
        self._journal = journal
        self._on_append = on_append
        self._on_watermark = on_watermark

    async def append(self, records: Sequence[EventRecord]) -> AppendResult:
        result = await self._journal.append(records)
        self._on_append(records, result)
        return result

    async def set_watermark(self, system: str, feed: str, value: str, now: float) -> None:
        await self._journal.set_watermark(system, feed, value, now)
        self._on_watermark(system, feed, value)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._journal, name)


# ------------------------------------------------------------------------ the pipeline


@dataclass
class Pipeline:
    """What :func:`assemble` built: the root's children and handles on the components."""

    children: list[ChildSpec]
    """Add to the root supervisor, in this order."""
    systems: Systems
    dispatcher: DispatcherSlot | None
    workflows: dict[str, WorkflowSlot]
    deps: WorkflowDeps
    journal: Journal
    now: Callable[[], float]
    reconcile_interval: Interval | None = None
    """The reconcile schedule's period (None inside: off) when reconcile is enabled."""
    tm_close_interval: Interval | None = None
    """How often the tm_close scheduler looks for a month to close (None inside: off)
    when tm_close is enabled."""
    close_after_days: int = DEFAULT_CLOSE_AFTER_DAYS
    """Days after a month's end before it is closable (the default of ``close_period``)."""
    _closed: bool = field(default=False, repr=False)

    def notify_dispatcher(self) -> None:
        if self.dispatcher is not None:
            self.dispatcher.notify()

    async def replay(self, request: Replay) -> dict[str, Any]:
        """``registry.replay``: create replay runs (or plan them) and wake the runner."""
        slot = self.workflows.get(request.workflow)
        if slot is None:
            raise ControlError(
                "not_found",
                f"no enabled workflow named {request.workflow!r}; enabled: "
                + (", ".join(sorted(self.workflows)) or "none"),
            )
        if request.until is not None:
            raise ControlError(
                "bad_request", "replay by time takes since only (until is not supported)"
            )
        try:
            selection = ReplaySelection(
                from_seq=request.from_seq,
                to_seq=request.to_seq,
                since=request.since,
                key=request.key,
            )
        except ValueError as exc:
            raise ControlError("bad_request", str(exc)) from None
        max_batch = slot.settings.max_batch
        if request.dry_run:
            result = await plan_replay(self.journal, slot.spec, selection, max_batch=max_batch)
        else:
            result = await replay(
                self.journal, slot.spec, selection, now=self.now(), max_batch=max_batch
            )
            slot.notify()
        log.info(
            "replay requested",
            workflow=result.workflow,
            events=result.events,
            runs=len(result.runs),
            dry_run=request.dry_run,
        )
        return replay_summary(result, dry_run=request.dry_run)

    async def reconcile(self, request: Reconcile) -> dict[str, Any]:
        """``registry.reconcile``: append a ReconciliationRequested (one project with
        ``key``; the last complete day without ``period``) and wake the dispatcher."""
        try:
            period = parse_period(request.period, now=self.now())
            envelope = await request_reconciliation(
                self.journal,
                period,
                (request.key,) if request.key else (),
                "operator",
                now=self.now(),
            )
        except ValueError as exc:
            raise ControlError("bad_request", str(exc)) from None
        self.notify_dispatcher()
        return {
            "requested": envelope.id,
            "period_start": period[0].isoformat(),
            "period_end": period[1].isoformat(),
            "projects": [request.key] if request.key else "all",
        }

    async def close_period(self, request: ClosePeriod) -> dict[str, Any]:
        """``registry.close_period``: append an operator's BillingPeriodClosed for
        ``period`` (without it, the newest month past its close) and wake the dispatcher.
        A malformed month, or one that has not ended yet, is a ``bad_request``."""
        now = self.now()
        period = request.period or last_closable_period(now, self.close_after_days)
        try:
            envelope = await request_close(self.journal, period, "operator", now=now)
        except ValueError as exc:
            raise ControlError("bad_request", str(exc)) from None
        self.notify_dispatcher()
        return {"requested": envelope.id, "period": period}

    async def aclose(self) -> None:
        """Close every adapter (and its HTTP client); call once the root has stopped."""
        if self._closed:
            return
        self._closed = True
        with trio.move_on_after(10.0) as scope:
            scope.shield = True
            await self.systems.aclose()


def parse_period(text: str | None, *, now: float) -> tuple[dt.date, dt.date]:
    """``2026-10`` (a month), ``2026-10-05`` (a day), ``2026-10-01..2026-10-15``, or
    None: the last complete day before ``now``."""
    if not text:
        return last_complete_period(now, 86_400.0)
    text = text.strip()
    try:
        if ".." in text:
            first, _, last = text.partition("..")
            start, end = dt.date.fromisoformat(first), dt.date.fromisoformat(last)
        elif len(text) == 7:
            start, end = month_bounds(text)
        else:
            start = end = dt.date.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"period {text!r}: expected YYYY-MM, YYYY-MM-DD or YYYY-MM-DD..YYYY-MM-DD"
        ) from None
    if end < start:
        raise ValueError(f"period {text!r} ends before it starts")
    return start, end


def replay_summary(result: Any, *, dry_run: bool) -> dict[str, Any]:
    """A :class:`~actors.workflows.ReplayResult` as JSON for the socket and the CLI."""
    return {
        "workflow": result.workflow,
        "dry_run": dry_run,
        "events": result.events,
        "runs": len(result.runs),
        "run_ids": list(result.run_ids),
        "keys": sorted({run.key for run in result.runs}),
        "up_to_seq": result.up_to_seq,
    }


def assemble(
    adapters: Sequence[VendorAdapter],
    journal: Journal,
    workflows: Sequence[Enabled],
    *,
    owners: Mapping[str, str],
    roles: Mapping[str, Sequence[str]],
    erp_routes: Mapping[str, str] | None = None,
    field_owners: Mapping[str, str] | None = None,
    system_settings: Mapping[str, SystemSettings] | None = None,
    registry: ControlRegistry | None = None,
    metrics: Metrics | None = None,
    now: Callable[[], float] = time.time,
    owner: Callable[[], str] = default_owner,
    command_timeout_s: float = 300.0,
    dispatcher_poll_s: float = 5.0,
    runner_poll_s: float = 30.0,
    on_outcome: OnOutcome | None = None,
    on_append: OnAppend | None = None,
    on_watermark: OnWatermark | None = None,
    reconcile_interval_s: float | None = None,
    tm_close_interval_s: float | None = None,
    close_after_days: int = DEFAULT_CLOSE_AFTER_DAYS,
    deps_extras: Mapping[str, Any] | None = None,
) -> Pipeline:
    """Wire systems, dispatcher and runners; nothing runs until the children start.

    ``workflows`` are the enabled workflows with their settings; ``owners`` maps an
    exception category to its owner; ``roles`` a system kind to system names. ``owner``
    makes the lease owner of each runner incarnation. ``on_outcome`` and ``on_append``
    see every run outcome and every poller append (tests wait on them). With reconcile
    enabled, a scheduler child requests it every ``reconcile_interval_s`` (None: on
    demand only, until a reload sets a period). With tm_close enabled, a scheduler child
    requests the close of each month ``close_after_days`` after its end, looking every
    ``tm_close_interval_s`` (None: off until a reload sets a period).
    """
    workflows = [enabled for enabled in workflows if enabled.settings.enabled]
    slots: dict[str, WorkflowSlot] = {}
    holder: dict[str, DispatcherSlot] = {}

    def runs_created(workflow: str) -> None:
        slot = slots.get(workflow)
        if slot is not None:
            slot.notify()

    def outcome(result: RunOutcome) -> None:
        if metrics is not None:
            metrics.record_run(result.workflow, result.outcome)
        # A run may have published an event (ProjectActivated) or freed its key.
        if "dispatcher" in holder:
            holder["dispatcher"].notify()
        if on_outcome is not None:
            on_outcome(result)

    def appended(records: Sequence[EventRecord], result: AppendResult) -> None:
        if metrics is not None:
            counts: dict[tuple[str, str], int] = {}
            for record, new in zip(records, result.new, strict=True):
                if new:
                    counts[record.source, record.type] = (
                        counts.get((record.source, record.type), 0) + 1
                    )
            for (source, event_type), count in counts.items():
                metrics.record_events(source, event_type, count)
        if result.new_count and "dispatcher" in holder:
            holder["dispatcher"].notify()
        if on_append is not None:
            on_append(records, result)

    dispatcher: DispatcherSlot | None = None
    if workflows:
        dispatcher = DispatcherSlot(
            journal,
            workflows,
            now=now,
            runs_created=runs_created,
            poll_interval_s=dispatcher_poll_s,
        )
        holder["dispatcher"] = dispatcher

    async def no_backlog(workflow: str) -> int:
        await trio.lowlevel.checkpoint()
        return 0

    systems = build_systems(
        adapters,
        journal=_NotifyingJournal(  # type: ignore[arg-type]
            journal, appended, on_watermark or (lambda system, feed, value: None)
        ),
        backlog=dispatcher.backlog if dispatcher is not None else no_backlog,
        settings=system_settings,
        high_water_marks={e.spec.name: e.settings.high_water_mark for e in workflows},
        exception_owner=owners.get("mapping", "mapping"),
    )
    deps = WorkflowDeps(
        mailboxes=systems.mailboxes,
        roles={kind: tuple(names) for kind, names in roles.items()},
        erp_routes=erp_routes,
        field_owners=field_owners,
        command_timeout_s=command_timeout_s,
        now=now,
        sla=metrics,
    )
    for attribute, value in (deps_extras or {}).items():
        setattr(deps, attribute, value)
    for enabled in workflows:
        slots[enabled.spec.name] = WorkflowSlot(
            enabled.spec,
            enabled.settings,
            journal=journal,
            owners=owners,
            deps=deps,
            now=now,
            on_outcome=outcome,
            owner=owner,
            poll_interval_s=runner_poll_s,
        )

    children: list[ChildSpec] = []
    if adapters:
        children.append(systems.child_spec)
    if dispatcher is not None:
        children.append(
            ChildSpec(name="dispatcher", factory=dispatcher.new_dispatcher, shutdown_timeout_s=10.0)
        )
    for slot in slots.values():
        children.append(
            ChildSpec(
                name=f"workflow:{slot.name}",
                factory=partial(WorkflowHost, slot),
                # Runs in hand finish within this (a vendor call is bounded by the
                # command timeout); past it they are cancelled and resume on restart.
                shutdown_timeout_s=60.0,
            )
        )

    def schedule(
        name: str, scheduler: type[Scheduler], seconds: float | None, **options: Any
    ) -> Interval:
        interval = Interval(seconds)
        children.append(
            ChildSpec(
                name=f"schedule:{name}",
                factory=partial(
                    scheduler,
                    journal,
                    interval_s=interval,
                    now=now,
                    appended=lambda: holder["dispatcher"].notify(),
                    **options,
                ),
            )
        )
        return interval

    reconcile_interval: Interval | None = None
    if "reconcile" in slots:
        reconcile_interval = schedule("reconcile", ReconcileScheduler, reconcile_interval_s)
    tm_close_interval: Interval | None = None
    if "tm_close" in slots:
        tm_close_interval = schedule(
            "tm_close", TmCloseScheduler, tm_close_interval_s, close_after_days=close_after_days
        )

    pipeline = Pipeline(
        children=children,
        systems=systems,
        dispatcher=dispatcher,
        workflows=slots,
        deps=deps,
        journal=journal,
        now=now,
        reconcile_interval=reconcile_interval,
        tm_close_interval=tm_close_interval,
        close_after_days=close_after_days,
    )
    if registry is not None:
        _register(pipeline, adapters, registry, metrics)
    elif metrics is not None:
        for name, governor in _governors(adapters).items():
            metrics.watch_governor(name, governor)
    return pipeline


def _governors(adapters: Sequence[VendorAdapter]) -> dict[str, Any]:
    governors: dict[str, Any] = {}
    for adapter in adapters:
        client = getattr(adapter, "client", None)
        governor = getattr(client, "governor", None)
        if governor is not None:
            governors[adapter.system] = governor
    return governors


def _register(
    pipeline: Pipeline,
    adapters: Sequence[VendorAdapter],
    registry: ControlRegistry,
    metrics: Metrics | None,
) -> None:
    for name, control in pipeline.systems.controls.items():
        registry.systems[name] = SystemPausable(control)
    for name, governor in _governors(adapters).items():
        registry.governors[name] = governor
        if metrics is not None:
            metrics.watch_governor(name, governor)
    for name, slot in pipeline.workflows.items():
        registry.workflows[name] = slot
    if pipeline.workflows:
        registry.replay = pipeline.replay
    if "reconcile" in pipeline.workflows:
        registry.reconcile = pipeline.reconcile
    if "tm_close" in pipeline.workflows:
        registry.close_period = pipeline.close_period
