"""The whole pipeline in process, on trio's clock, against the simulated vendors.

::

    async with open_stack(tmp_path, workflows=("deal_to_project",)) as stack:
        report = await stack.run_scenario_week()      # a business week, then idle
        assert stack.duplicates() == {}
        assert not await stack.exceptions(category="project")

What runs (the daemon's own wiring, :func:`daemon.pipeline.assemble`):

- the sandbox (``adapters.sandbox.build_sandbox``, seeded) on a :class:`SandboxClock`
  whose monotonic time is trio's, so the vendors, the governors, leases and backoffs all
  agree on the mock clock;
- one adapter per system of ``config/pssync.sandbox.toml`` over
  ``httpx.ASGITransport(app=sandbox.apps[vendor])`` (:func:`sandbox_adapters`, the one
  place that builds them for tests), signing with the sandbox's credentials and clock;
- a real journal under ``tmp_path``; the system actors and pollers; the dispatcher; one
  runner per workflow (a name from :mod:`actors.workflows.catalog` or a spec object);
  :class:`~actors.workflows.WorkflowDeps` with the config's roles, ERP routes and field
  owners, and ``now`` from the sandbox clock.

Use it under the ``autojump_clock`` of tests/e2e/conftest.py (threshold 20 ms: the
journal writes on a thread). The engine's ``now`` is the sandbox's wall time, which
:meth:`Scenario.run_week` moves a week ahead: :meth:`Stack.run_scenario_week` therefore
waits until the pipeline is idle before playing the week, so no lease is in flight when
the clock jumps.
"""

from __future__ import annotations

import datetime as dt
import itertools
import random
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import msgspec
import trio

from actors.supervisor import RestartPolicy, Supervisor
from actors.systems import FeedState
from actors.workflows import BackoffPolicy, Enabled, RunOutcome, WorkflowSettings, WorkflowSpec
from adapters.auth import BearerToken, NetSuiteTba, salesforce_client_credentials
from adapters.base import ChangeFeed, FeedPage, VendorAdapter
from adapters.governor import Governor
from adapters.http import SystemClient
from adapters.kantata import create_adapter as create_kantata
from adapters.mapping import load_mappings
from adapters.netsuite import NetSuiteAdapter, NetSuiteErrorSignals
from adapters.salesforce import create_adapter as create_salesforce
from adapters.sandbox import (
    FaultConfig,
    Sandbox,
    SandboxClock,
    SandboxConfig,
    Scenario,
    WeekReport,
    build_sandbox,
)
from adapters.signals import KantataSignals, SalesforceSignals, StripeSignals
from adapters.stripe import create_adapter as create_stripe
from daemon.config import Config
from daemon.config_load import load_config
from daemon.metrics import Metrics
from daemon.pipeline import Pipeline, assemble, config_wiring
from daemon.systems import governor_config, http_config
from store import UNFINISHED_STATUSES, ExceptionRecord, Journal, RunRecord, open_journal

REPO = Path(__file__).resolve().parents[2]
SANDBOX_CONFIG = REPO / "config" / "pssync.sandbox.toml"

START = 1_767_225_600.0
"""2026-01-01T00:00:00Z: the sandbox's wall time at trio time 0."""

ALL_WORKFLOWS = (
    "deal_to_project",
    "time_expense_to_erp",
    "milestone_to_invoice",
    "invoice_feedback",
    "customer_master",
    "reconcile",
)

OWNERS = {
    "contract": "deal-desk",
    "project": "pmo",
    "time": "resource-management",
    "billing": "billing-ops",
    "master_data": "mdm",
    "mapping": "integration-team",
}
"""Exception owners by category (``[governance.owners]`` of the stack)."""

FAST = WorkflowSettings(
    width=4,
    max_attempts=3,
    backoff=BackoffPolicy(initial_s=1.0, max_s=30.0, jitter_fraction=0.0),
    lease_s=30.0,
)
"""Default settings of every runner: small retries so a parked run shows up quickly."""

POLL_INTERVAL_S = 10.0
"""Pollers' sleep once caught up (virtual seconds; each cycle costs ~20 ms real)."""

IDLE_DEADLINE_S = 3_600.0
""":meth:`Stack.until_idle` gives up after this much virtual time."""


def load_sandbox_config(**changes: Any) -> Config:
    """``config/pssync.sandbox.toml`` as the daemon loads it (secrets stay references:
    the stack takes credentials from the sandbox), with top-level ``changes``."""
    config = load_config(SANDBOX_CONFIG, environ={})
    return msgspec.structs.replace(config, **changes) if changes else config


def sandbox_adapters(
    sandbox: Sandbox,
    config: Config,
    *,
    wrap: Callable[[str, httpx.AsyncBaseTransport], httpx.AsyncBaseTransport] | None = None,
    seed: int = 0,
) -> dict[str, VendorAdapter]:
    """One adapter per system of ``config`` over the in-process sandbox, by system name.

    As :mod:`daemon.systems` builds them (HTTP settings, governor from ``limits``, the
    vendor's options), except that credentials come from the sandbox and every clock
    (request signing, Retry-After dates, Stripe's search window, NetSuite's today) is the
    sandbox's. ``wrap(system, transport)`` may wrap a system's transport (recording).
    """
    clock = sandbox.clock
    mappings = load_mappings(config.mappings.directory)
    adapters: dict[str, VendorAdapter] = {}
    for index, (name, system) in enumerate(sorted(config.systems.items())):
        vendor = system.vendor
        credentials = sandbox.vendors[vendor].credentials
        transport: httpx.AsyncBaseTransport = httpx.ASGITransport(app=sandbox.apps[vendor])
        if wrap is not None:
            transport = wrap(name, transport)
        http = http_config(system)
        match vendor:
            case "salesforce":
                auth: Any = salesforce_client_credentials(
                    system.base_url,
                    client_id=credentials["client_id"],
                    client_secret=credentials["client_secret"],
                    system=name,
                )
                signals: Any = SalesforceSignals()
            case "kantata":
                auth = BearerToken(credentials["access_token"])
                signals = KantataSignals()
            case "netsuite":
                auth = NetSuiteTba(
                    account_id=credentials["account_id"],
                    consumer_key=credentials["consumer_key"],
                    consumer_secret=credentials["consumer_secret"],
                    token_id=credentials["token_id"],
                    token_secret=credentials["token_secret"],
                    wall_clock=clock.now,
                )
                signals = NetSuiteErrorSignals()
            case "stripe":
                auth = BearerToken(credentials["api_key"])
                signals = StripeSignals()
            case _:
                raise ValueError(f"the stack has no sandbox for vendor {vendor!r}")
        client = SystemClient(
            name,
            http,
            auth=auth,
            governor=Governor(governor_config(system.limits), name=name),
            signals=signals,
            transport=transport,
            rng=random.Random(seed * 100 + index),
            wall_clock=clock.now,
        )
        mapping = mappings[vendor]
        options = system.adapter_options()
        match vendor:
            case "salesforce":
                adapter: Any = create_salesforce(
                    system=name, client=client, mappings=mapping, options=options
                )
            case "kantata":
                adapter = create_kantata(
                    system=name, client=client, mappings=mapping, options=options
                )
            case "netsuite":
                adapter = NetSuiteAdapter(
                    system=name,
                    client=client,
                    mappings=mapping,
                    options=options,
                    today=lambda: dt.datetime.fromtimestamp(clock.now(), dt.UTC).date(),
                )
            case _:
                adapter = create_stripe(
                    system=name,
                    client=client,
                    mappings=mapping,
                    options=options,
                    wall_clock=clock.now,
                )
        adapters[name] = adapter
    return adapters


# ---------------------------------------------------------------------- observation


class Changes:
    """Something happened (a poll, an append, a run outcome): wake whoever waits."""

    def __init__(self) -> None:
        self._event = trio.Event()
        self.generation = 0
        self.version = 0
        """Counts touches: a waiter that compares it misses none while it was busy."""

    def touch(self, *, new_generation: bool = False) -> None:
        """``new_generation``: what happened may have changed a vendor (feeds re-poll)."""
        if new_generation:
            self.generation += 1
        self.version += 1
        self._event.set()
        self._event = trio.Event()

    async def wait(self) -> None:
        await self._event.wait()


@dataclass
class _FeedWatch:
    system: str
    name: str
    polled_generation: int = -1
    """The generation at the start of the last poll that returned."""
    more: bool = True


class _WatchedFeed:
    """A change feed that reports each finished poll (for :meth:`Stack.until_idle`)."""

    def __init__(self, feed: ChangeFeed, watch: _FeedWatch, changes: Changes) -> None:
        self._feed = feed
        self._watch = watch
        self._changes = changes
        self.name = feed.name
        self.workflow = feed.workflow

    async def poll(self, watermark: str | None, *, limit: int) -> FeedPage:
        generation = self._changes.generation
        page = await self._feed.poll(watermark, limit=limit)
        self._watch.polled_generation = generation
        self._watch.more = page.more
        self._changes.touch()
        return page


class _WatchedAdapter:
    """An adapter whose feeds are watched; everything else is the adapter's."""

    def __init__(self, adapter: VendorAdapter, watches: list[_FeedWatch], changes: Changes):
        self._adapter = adapter
        self._watches = watches
        self._changes = changes
        self.system = adapter.system

    def feeds(self) -> list[ChangeFeed]:
        feeds: list[ChangeFeed] = []
        for feed in self._adapter.feeds():
            watch = _FeedWatch(system=self.system, name=feed.name)
            self._watches.append(watch)
            feeds.append(_WatchedFeed(feed, watch, self._changes))  # type: ignore[arg-type]
        return feeds

    def __getattr__(self, name: str) -> Any:
        return getattr(self._adapter, name)


# ---------------------------------------------------------------------- the stack


@dataclass
class Stack:
    """A running pipeline over the sandbox; see the module docstring."""

    sandbox: Sandbox
    config: Config
    journal: Journal
    pipeline: Pipeline
    adapters: dict[str, VendorAdapter]
    scenario: Scenario
    changes: Changes
    outcomes: list[RunOutcome] = field(default_factory=list)
    crashes: int = 0
    _watches: list[_FeedWatch] = field(default_factory=list)
    _nursery: trio.Nursery | None = None
    _workflows_scope: trio.CancelScope | None = None
    _workflows_done: trio.Event | None = None
    _systems_root: Supervisor | None = None
    _systems_done: trio.Event = field(default_factory=trio.Event)
    _workflows_root: Supervisor | None = None

    @property
    def clock(self) -> SandboxClock:
        return self.sandbox.clock

    def now(self) -> float:
        """The engine's wall time: the sandbox's."""
        return self.sandbox.clock.now()

    # -- inspection ----------------------------------------------------------------------

    def duplicates(self) -> dict[str, list[dict[str, Any]]]:
        """Records sharing a source key, by vendor (the admin ``duplicates`` views); only
        vendors that have some."""
        found = {name: vendor.state.duplicates() for name, vendor in self.sandbox.vendors.items()}
        return {name: items for name, items in found.items() if items}

    def counts(self) -> dict[str, dict[str, int]]:
        """Live records per object type, by vendor (the admin ``counts`` views)."""
        return {name: vendor.state.counts() for name, vendor in self.sandbox.vendors.items()}

    async def exceptions(
        self, *, status: str | None = "open", **filters: Any
    ) -> list[ExceptionRecord]:
        """Exceptions (default: open), filtered like ``journal.list_exceptions``."""
        return await self.journal.list_exceptions(status=status, limit=100_000, **filters)

    async def runs(self, **filters: Any) -> list[RunRecord]:
        """Runs, filtered like ``journal.list_runs`` (status, workflow, key)."""
        return await self.journal.list_runs(limit=1_000_000, **filters)

    async def events(self, *types: str) -> list[Any]:
        """Journal events (optionally of some types), in seq order."""
        found: list[Any] = []
        after = 0
        while True:
            page = await self.journal.read_events(after, 1_000, list(types) or None)
            found.extend(page)
            if len(page) < 1_000:
                return found
            after = page[-1].seq or after

    async def reconcile(self, *, period: str | None = None, key: str | None = None) -> Any:
        """What ``pssync reconcile`` does: append a ReconciliationRequested (``period`` as
        ``2026-01``, ``2026-01-05`` or ``start..end``; default the last complete day)."""
        from daemon.control.protocol import Reconcile

        result = await self.pipeline.reconcile(Reconcile(period=period, key=key))
        self.touched()
        return result

    def faults(self, vendor: str, config: FaultConfig) -> None:
        """Switch a vendor's fault injection (``FaultConfig()`` switches it off)."""
        self.sandbox.injectors[vendor].configure(config)

    # -- driving -------------------------------------------------------------------------

    async def run_scenario_week(self, *, idle: bool = True) -> WeekReport:
        """Play one business week (after the pipeline is idle) and, with ``idle``, wait
        until the pipeline has handled it."""
        await self.until_idle()
        report = self.scenario.run_week()
        self.changes.touch(new_generation=True)
        if idle:
            await self.until_idle()
        return report

    def touched(self) -> None:
        """Tell the stack a test changed vendor state directly (feeds must re-poll)."""
        self.changes.touch(new_generation=True)

    async def until_idle(
        self, *, deadline_s: float = IDLE_DEADLINE_S, settle_retries: bool = True
    ) -> None:
        """Wait until every feed has polled dry since the last change, the dispatcher has
        caught up and no run is due (with ``settle_retries``, none is unfinished at all:
        retries waiting out a backoff are waited for). Parked runs (on the exception
        queue) and the runs of their keys queued behind them do not count. Raises
        AssertionError naming what is still busy after ``deadline_s`` (virtual)."""
        self.changes.touch(new_generation=True)
        busy: str | None = "not checked yet"
        with trio.move_on_after(deadline_s):
            while True:
                seen = self.changes.version
                busy = await self._busy(settle_retries)
                if busy is None:
                    return
                if self.changes.version == seen:
                    await self.changes.wait()
        raise AssertionError(f"not idle after {deadline_s:g} s (virtual): {busy}")

    async def _busy(self, settle_retries: bool) -> str | None:
        """Why the pipeline is not idle yet, or None if it is."""
        generation = self.changes.generation
        for watch in self._watches:
            control = self.pipeline.systems.controls[watch.system]
            state = control.feeds[watch.name].state if watch.name in control.feeds else None
            if control.paused or state is FeedState.POISONED:
                # Polls nothing (an operator's pause), or waits at a bad record that is
                # on the exception queue already: idle as far as this feed goes.
                continue
            feed = f"feed {watch.system}/{watch.name}"
            if watch.polled_generation < generation:
                return f"{feed} has not polled since the last change"
            if watch.more or state != FeedState.IDLE:
                return f"{feed} is {state} (more pages: {watch.more})"
        for name, slot in self.pipeline.workflows.items():
            if slot.runner is not None and slot.runner.active:
                return f"workflow {name} has {slot.runner.active} runs in hand"
        for name, slot in self.pipeline.workflows.items():
            cursor = await self.journal.get_cursor(name)
            types = sorted(slot.spec.trigger_types)
            if await self.journal.read_events(cursor, 1, types):
                return f"the dispatcher has {name} events past its cursor {cursor}"
        now = self.now()
        # A parked run (waiting on its exception) holds back its key's later runs: that
        # is a steady state until an operator acts, so neither counts as busy.
        parked: dict[tuple[str, str], int] = {}
        for run in await self.journal.list_runs(status="waiting", limit=100_000):
            first = parked.get((run.workflow, run.key), run.id)
            parked[run.workflow, run.key] = min(first, run.id)
        for status in UNFINISHED_STATUSES:
            if status == "waiting":
                continue
            for run in await self.journal.list_runs(status=status, limit=100_000):
                slot = self.pipeline.workflows.get(run.workflow)
                if slot is None or slot.paused:
                    continue
                if parked.get((run.workflow, run.key), run.id + 1) < run.id:
                    continue
                if settle_retries or run.next_attempt_at <= now:
                    return f"run {run.id} of {run.workflow} ({run.key}) is {run.status}"
        if generation != self.changes.generation:
            return "something changed meanwhile"
        return None

    # -- crashes ---------------------------------------------------------------------------

    async def crash_and_restart(self, *, before_restart: Callable[[], Any] | None = None) -> None:
        """Cancel the dispatcher and every runner at once (runs mid-flight are abandoned
        with their leases held, as after ``kill -9``), then start new ones with new lease
        owners. The journal, the systems and the sandbox carry on; the abandoned runs are
        claimed again once their leases expire on the mock clock."""
        assert self._workflows_scope is not None
        assert self._workflows_done is not None
        self._workflows_scope.cancel()
        await self._workflows_done.wait()
        self.crashes += 1
        if before_restart is not None:
            result = before_restart()
            if hasattr(result, "__await__"):
                await result
        await self._start_workflows()

    async def _start(self, nursery: trio.Nursery) -> None:
        self._nursery = nursery
        systems = [spec for spec in self.pipeline.children if spec.name == "systems"]
        # Fail fast: a crashing actor is a bug the test must see, not a restart.
        root = Supervisor("stack", systems, policy=RestartPolicy(max_restarts=0))
        self._systems_root = root

        async def run(*, task_status: trio.TaskStatus[None]) -> None:
            try:
                await root.run(task_status=task_status)
            finally:
                self._systems_done.set()

        await nursery.start(run)
        await self._start_workflows()

    async def _start_workflows(self) -> None:
        assert self._nursery is not None
        specs = [spec for spec in self.pipeline.children if spec.name != "systems"]
        root = Supervisor("workflows", specs, policy=RestartPolicy(max_restarts=0))
        self._workflows_root = root
        done = trio.Event()
        self._workflows_done = done

        async def run(*, task_status: trio.TaskStatus[trio.CancelScope]) -> None:
            try:
                with trio.CancelScope() as scope:
                    await root.run(task_status=_Started(task_status, scope))
            finally:
                done.set()

        self._workflows_scope = await self._nursery.start(run)

    async def _stop(self) -> None:
        """Drain: runners finish their runs, then the systems stop."""
        if self._workflows_root is not None and self._workflows_done is not None:
            if self._workflows_root.running:
                self._workflows_root.request_stop()
            await self._workflows_done.wait()
        if self._systems_root is not None:
            if self._systems_root.running:
                self._systems_root.request_stop()
            await self._systems_done.wait()


class _Started:
    """Hands the cancel scope to ``nursery.start`` once the supervisor has started."""

    def __init__(self, task_status: trio.TaskStatus[trio.CancelScope], scope: trio.CancelScope):
        self._task_status = task_status
        self._scope = scope

    def started(self, value: object = None) -> None:
        self._task_status.started(self._scope)


def _resolve(workflows: Sequence[str | WorkflowSpec]) -> list[WorkflowSpec]:
    specs: list[WorkflowSpec] = []
    for workflow in workflows:
        if isinstance(workflow, WorkflowSpec):
            specs.append(workflow)
        else:
            from actors.workflows.catalog import SPECS  # the seven modules, imported on use

            specs.append(SPECS[workflow])
    return specs


@asynccontextmanager
async def open_stack(
    tmp_path: Path,
    *,
    workflows: Sequence[str | WorkflowSpec] = ALL_WORKFLOWS,
    sandbox_config: SandboxConfig | None = None,
    seed: int = 0,
    config: Config | None = None,
    erp_systems: Mapping[str, Sequence[str]] | None = None,
    faults: Mapping[str, FaultConfig] | None = None,
    settings: WorkflowSettings = FAST,
    workflow_settings: Mapping[str, WorkflowSettings] | None = None,
    poll_interval_s: float = POLL_INTERVAL_S,
    owners: Mapping[str, str] = OWNERS,
    field_owners: Mapping[str, str] | None = None,
    wrap_transport: Callable[[str, httpx.AsyncBaseTransport], httpx.AsyncBaseTransport]
    | None = None,
    scenario_options: Mapping[str, Any] | None = None,
    schedule_reconcile: bool = False,
    schedule_tm_close: bool = False,
    metrics: Metrics | None = None,
) -> AsyncIterator[Stack]:
    """Build and start the stack; drain and close it on the way out.

    - ``workflows``: names (specs from :mod:`actors.workflows.catalog`) or spec objects.
    - ``sandbox_config``: default ``SandboxConfig(seed_data=True, seed=seed)``;
      ``faults`` (vendor → FaultConfig) is merged into it.
    - ``config``: the daemon configuration (default ``config/pssync.sandbox.toml``);
      only ``systems`` and ``governance.customer_master`` are used.
    - ``erp_systems``: ERP system name → the legal entities it books for. Every such
      system is the ``erp`` system of the config against the same simulated NetSuite
      (ERP routing by legal entity); default: the config's one ERP.
    - ``settings``: every runner's settings, ``workflow_settings`` per workflow.
    - ``poll_interval_s``: every system's poll interval (virtual seconds).
    - ``field_owners``: customer-master field ownership (default: the config's).
    - ``metrics``: a :class:`daemon.metrics.Metrics` the pipeline records into (runs,
      events, SLAs, governors), as the daemon's does.
    - ``schedule_reconcile``: run the reconcile scheduler at the config's ``interval_s``
      (off by default: tests request reconciliations with :meth:`Stack.reconcile`).
    - ``schedule_tm_close``: run the tm_close scheduler (when tm_close is among the
      workflows) at the config's schedule (off by default: tests append the close).
    """
    config = config or load_sandbox_config()
    systems = {
        name: msgspec.structs.replace(system, poll_interval_s=poll_interval_s)
        for name, system in config.systems.items()
    }
    if erp_systems is not None:
        base_erp = next(system for system in systems.values() if system.kind == "erp")
        systems = {name: system for name, system in systems.items() if system.kind != "erp"}
        for name, entities in erp_systems.items():
            systems[name] = msgspec.structs.replace(
                base_erp,
                legal_entities={e: base_erp.legal_entities[e] for e in entities},
            )
    config = msgspec.structs.replace(config, systems=systems)

    base = sandbox_config or SandboxConfig(seed_data=True, seed=seed)
    if faults:
        base = msgspec.structs.replace(base, faults={**base.faults, **faults})
    clock = SandboxClock(start=START, monotonic_source=trio.current_time)
    sandbox = build_sandbox(base, clock=clock)

    changes = Changes()
    watches: list[_FeedWatch] = []
    adapters = sandbox_adapters(sandbox, config, wrap=wrap_transport, seed=base.seed)
    watched = [_WatchedAdapter(adapter, watches, changes) for adapter in adapters.values()]
    specs = _resolve(workflows)
    per_workflow = workflow_settings or {}
    enabled = [Enabled(spec=spec, settings=per_workflow.get(spec.name, settings)) for spec in specs]
    owner_numbers = itertools.count(1)
    outcomes: list[RunOutcome] = []

    def on_outcome(outcome: RunOutcome) -> None:
        outcomes.append(outcome)
        changes.touch(new_generation=True)

    async with open_journal(tmp_path / "journal.db", synchronous="NORMAL") as journal:
        wiring = config_wiring(config)
        wiring["owners"] = dict(owners)
        if field_owners is not None:
            wiring["field_owners"] = dict(field_owners)
        if not schedule_reconcile:
            wiring["reconcile_interval_s"] = None
        if not schedule_tm_close:
            wiring["tm_close_interval_s"] = None
        pipeline = assemble(
            watched,  # type: ignore[arg-type]
            journal,
            enabled,
            **wiring,
            now=clock.now,
            owner=lambda: f"e2e-owner-{next(owner_numbers)}",
            command_timeout_s=120.0,
            dispatcher_poll_s=poll_interval_s,
            runner_poll_s=poll_interval_s,
            on_outcome=on_outcome,
            metrics=metrics,
            on_append=lambda records, result: changes.touch(),
            # The poller marks its feed idle right after storing the watermark.
            on_watermark=lambda system, feed, value: changes.touch(),
        )
        stack = Stack(
            sandbox=sandbox,
            config=config,
            journal=journal,
            pipeline=pipeline,
            adapters=adapters,
            scenario=Scenario(sandbox, seed=base.seed, **dict(scenario_options or {})),
            changes=changes,
            outcomes=outcomes,
            _watches=watches,
        )
        try:
            async with trio.open_nursery() as nursery:
                await stack._start(nursery)
                try:
                    yield stack
                finally:
                    with trio.move_on_after(120) as drain:
                        drain.shield = True
                        await stack._stop()
                    nursery.cancel_scope.cancel()
        finally:
            await pipeline.aclose()


__all__ = [
    "ALL_WORKFLOWS",
    "FAST",
    "OWNERS",
    "START",
    "Changes",
    "Stack",
    "load_sandbox_config",
    "open_stack",
    "sandbox_adapters",
]
