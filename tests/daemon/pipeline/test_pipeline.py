"""``pssync run`` with the real pipeline, in process, against the sandbox's four vendors.

``serve()`` runs the daemon exactly as ``pssync run --config config/pssync.sandbox.toml``
would, except that each system's HTTP transport is ``httpx.ASGITransport`` on the
in-process sandbox. The sandbox's wall time is the real one (so request signing and
Stripe's search window agree with the daemon's ``time.time``), its monotonic time is
trio's, and trio's clock is the autojump clock: poll intervals pass in milliseconds.

Waiting is event-driven: every request that reaches a vendor touches :class:`Changes`,
and the tests re-check their condition on each (pollers keep polling, so a condition
that became true without a request is seen at the next poll).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import date
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
import trio
from trio.testing import MockClock

from actors import Supervisor
from actors.messages import decode_envelope
from actors.systems import FeedState
from adapters.sandbox import Sandbox, SandboxClock, SandboxConfig, Scenario, build_sandbox
from daemon.config import Config, MetricsConfig
from daemon.config_load import load_config
from daemon.control import ControlRegistry
from daemon.control.protocol import Reconcile, Replay
from daemon.pipeline import SystemPausable, WorkflowSlot, parse_period
from daemon.secrets import SecretResolver, resolve_all
from daemon.service import EXIT_OK, serve
from store import Journal, open_journal

REPO = Path(__file__).resolve().parents[2]
SANDBOX_CONFIG = REPO / "config" / "pssync.sandbox.toml"


@pytest.fixture
def autojump_clock() -> MockClock:
    # 20 ms: the journal writes on a thread (see tests/actors/workflows/conftest.py).
    return MockClock(autojump_threshold=0.02)


class Changes:
    """Touched by every vendor request; waiters re-check their condition on each."""

    def __init__(self) -> None:
        self.version = 0
        self._event = trio.Event()

    def touch(self) -> None:
        self.version += 1
        self._event.set()
        self._event = trio.Event()

    async def until(self, condition: Callable[[], Awaitable[bool]], *, within_s: float = 600):
        with trio.fail_after(within_s):  # virtual seconds
            while True:
                seen = self.version
                if await condition():
                    return
                if self.version == seen:
                    # Journal-only progress (a run completing) touches no vendor: look
                    # again after a virtual second as well.
                    with trio.move_on_after(1):
                        await self._event.wait()


class Touching(httpx.AsyncBaseTransport):
    def __init__(self, inner: httpx.AsyncBaseTransport, changes: Changes) -> None:
        self.inner = inner
        self.changes = changes

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return await self.inner.handle_async_request(request)
        finally:
            self.changes.touch()


def environ_for(sandbox: Sandbox) -> dict[str, str]:
    """The env: secret references of config/pssync.sandbox.toml, from the sandbox."""
    salesforce = sandbox.vendors["salesforce"].credentials
    netsuite = sandbox.vendors["netsuite"].credentials
    return {
        "PSSYNC_SANDBOX_SALESFORCE_CLIENT_SECRET": salesforce["client_secret"],
        "PSSYNC_SANDBOX_KANTATA_TOKEN": sandbox.vendors["kantata"].credentials["access_token"],
        "PSSYNC_SANDBOX_NETSUITE_CONSUMER_KEY": netsuite["consumer_key"],
        "PSSYNC_SANDBOX_NETSUITE_CONSUMER_SECRET": netsuite["consumer_secret"],
        "PSSYNC_SANDBOX_NETSUITE_TOKEN_ID": netsuite["token_id"],
        "PSSYNC_SANDBOX_NETSUITE_TOKEN_SECRET": netsuite["token_secret"],
        "PSSYNC_SANDBOX_STRIPE_API_KEY": sandbox.vendors["stripe"].credentials["api_key"],
    }


@dataclass
class Daemon:
    config: Config
    sandbox: Sandbox
    registry: ControlRegistry
    root: Supervisor
    journal: Journal
    """A second connection to the daemon's journal file, for the test's reads."""
    changes: Changes
    scenario: Scenario

    async def events(self, event_type: str) -> list[Any]:
        return await self.journal.read_events(0, 100_000, [event_type])

    async def runs(self, **filters: Any) -> list[Any]:
        return await self.journal.list_runs(limit=100_000, **filters)

    async def until(self, condition: Callable[[], Awaitable[bool]]) -> None:
        await self.changes.until(condition)

    async def until_runs_settled(self, workflow: str) -> None:
        async def settled() -> bool:
            runs = await self.runs(workflow=workflow)
            return bool(runs) and all(r.status in ("completed", "waiting") for r in runs)

        await self.until(settled)


@pytest.fixture
async def daemon(tmp_path: Path, autojump_clock: MockClock) -> AsyncIterator[Daemon]:
    clock = SandboxClock(monotonic_source=trio.current_time)  # real wall time
    sandbox = build_sandbox(SandboxConfig(seed_data=True), clock=clock)
    base = load_config(SANDBOX_CONFIG, environ={})
    config = msgspec.structs.replace(
        base,
        journal=msgspec.structs.replace(base.journal, path=str(tmp_path / "journal.sqlite3")),
        control=msgspec.structs.replace(base.control, socket_path=str(tmp_path / "c.sock")),
        metrics=MetricsConfig(enabled=False),
    )
    secrets = resolve_all(config, SecretResolver(environ_for(sandbox)))
    changes = Changes()
    transports = {
        name: Touching(httpx.ASGITransport(app=sandbox.apps[system.vendor]), changes)
        for name, system in config.systems.items()
    }
    registry = ControlRegistry()
    statuses: list[int] = []

    async def run(task_status: trio.TaskStatus[Supervisor]) -> None:
        statuses.append(
            await serve(
                config, secrets, registry=registry, transports=transports, task_status=task_status
            )
        )

    async with trio.open_nursery() as nursery:
        root = await nursery.start(run)
        async with open_journal(config.journal.path, synchronous="NORMAL") as journal:
            yield Daemon(config, sandbox, registry, root, journal, changes, Scenario(sandbox))
        root.request_stop()
    assert statuses == [EXIT_OK]


def _feeds_paused(daemon: Daemon, system: str) -> Callable[[], Awaitable[bool]]:
    async def paused() -> bool:
        await trio.lowlevel.checkpoint()
        status = daemon.registry.systems[system].snapshot()
        return all(feed["state"] == FeedState.PAUSED for feed in status["feeds"])

    return paused


async def test_run_wires_every_configured_component(
    daemon: Daemon, autojump_clock: MockClock
) -> None:
    registry = daemon.registry
    assert set(registry.systems) == {"crm", "psa", "erp", "billing"}
    assert all(isinstance(s, SystemPausable) for s in registry.systems.values())
    assert set(registry.governors) == {"crm", "psa", "erp", "billing"}
    assert set(registry.workflows) == set(daemon.config.workflows)
    assert all(isinstance(w, WorkflowSlot) for w in registry.workflows.values())
    assert registry.replay is not None
    assert registry.reconcile is not None
    tree = {child.name for child in daemon.root.status()}
    assert {"systems", "dispatcher", "schedule:reconcile"} <= tree
    assert {f"workflow:{name}" for name in daemon.config.workflows} <= tree
    # limits: the configured governor of each system
    crm = registry.governors["crm"].snapshot()
    assert (crm.rate_per_s, crm.burst, crm.quota_limit) == (20.0, 40, 100_000)


async def test_a_won_deal_is_provisioned_end_to_end(
    daemon: Daemon, autojump_clock: MockClock
) -> None:
    daemon.scenario.win_deals(1)

    async def activated() -> bool:
        return bool(await daemon.events("project.activated"))

    await daemon.until(activated)
    # The seeded firm has won none before. Our own write-back makes the CRM report the
    # deal again (a new version), which may already be journaled: one key either way.
    [key] = {deal.key for deal in await daemon.events("deal.won")}
    await daemon.until_runs_settled("deal_to_project")
    runs = await daemon.runs(workflow="deal_to_project", key=key)
    assert [run.status for run in runs] == ["completed"] * len(runs)
    assert len(await daemon.events("project.activated")) == 1
    assert all(
        not items for items in (v.state.duplicates() for v in daemon.sandbox.vendors.values())
    )
    assert daemon.registry.workflows["deal_to_project"].snapshot()["state"] == "running"


async def test_pausing_a_system_stops_its_polls_until_resumed(
    daemon: Daemon, autojump_clock: MockClock
) -> None:
    crm = daemon.registry.systems["crm"]
    await crm.pause()
    assert crm.snapshot()["paused"] is True
    await daemon.until(_feeds_paused(daemon, "crm"))

    daemon.scenario.win_deals(1)
    await trio.sleep(120)  # four poll intervals of the CRM
    assert await daemon.events("deal.won") == []

    await crm.resume()
    assert crm.snapshot()["state"] == "running"

    async def arrived() -> bool:
        return bool(await daemon.events("deal.won"))

    await daemon.until(arrived)


async def test_pausing_a_workflow_stops_its_runs_until_resumed(
    daemon: Daemon, autojump_clock: MockClock
) -> None:
    workflow = daemon.registry.workflows["deal_to_project"]
    await workflow.pause()
    assert workflow.snapshot()["state"] == "paused"
    daemon.scenario.win_deals(1)

    async def run_created() -> bool:
        return bool(await daemon.runs(workflow="deal_to_project"))

    await daemon.until(run_created)
    await trio.sleep(120)
    [run] = await daemon.runs(workflow="deal_to_project")
    assert run.status == "pending"

    await workflow.resume()
    await daemon.until_runs_settled("deal_to_project")
    [run] = await daemon.runs(workflow="deal_to_project")
    assert run.status == "completed"


async def test_replay_reaches_the_runner_and_repeats_no_effect(
    daemon: Daemon, autojump_clock: MockClock
) -> None:
    daemon.scenario.win_deals(1)
    await daemon.until_runs_settled("deal_to_project")
    [first] = await daemon.runs(workflow="deal_to_project")
    counts = {name: v.state.counts() for name, v in daemon.sandbox.vendors.items()}

    assert daemon.registry.replay is not None
    planned = await daemon.registry.replay(
        Replay(workflow="deal_to_project", key=first.key, dry_run=True)
    )
    assert planned["runs"] == 1
    assert planned["run_ids"] == []
    result = await daemon.registry.replay(Replay(workflow="deal_to_project", key=first.key))
    assert len(result["run_ids"]) == 1

    await daemon.until_runs_settled("deal_to_project")
    replayed = [r for r in await daemon.runs(workflow="deal_to_project") if r.replay]
    assert [r.status for r in replayed] == ["completed"]
    assert {name: v.state.counts() for name, v in daemon.sandbox.vendors.items()} == counts


async def test_reconcile_appends_a_request_for_the_workflow(
    daemon: Daemon, autojump_clock: MockClock
) -> None:
    assert daemon.registry.reconcile is not None
    result = await daemon.registry.reconcile(Reconcile(period="2026-01"))
    assert (result["period_start"], result["period_end"]) == ("2026-01-01", "2026-01-31")

    async def requested() -> bool:
        # The schedule may append its own (daily) requests meanwhile: look for ours.
        bodies = [
            decode_envelope(record.body).body
            for record in await daemon.events("reconciliation.requested")
        ]
        ours = [b for b in bodies if (b.period_start, b.period_end) == (JAN_1, JAN_31)]
        return len(ours) == 1

    await daemon.until(requested)
    await daemon.until_runs_settled("reconcile")


JAN_1, JAN_31 = date(2026, 1, 1), date(2026, 1, 31)


def test_periods() -> None:
    assert [d.isoformat() for d in parse_period("2026-02", now=0)] == ["2026-02-01", "2026-02-28"]
    assert [d.isoformat() for d in parse_period("2026-02-03..2026-02-05", now=0)] == [
        "2026-02-03",
        "2026-02-05",
    ]
    assert [d.isoformat() for d in parse_period(None, now=86_400 * 10 + 5)] == [
        "1970-01-10",
        "1970-01-10",
    ]
    with pytest.raises(ValueError, match="expected YYYY-MM"):
        parse_period("last week", now=0)


async def test_run_without_systems_or_workflows_has_no_pipeline(tmp_path: Path) -> None:
    config = msgspec.structs.replace(
        load_config(SANDBOX_CONFIG, environ={}),
        systems={},
        workflows={},
        journal=msgspec.structs.replace(
            load_config(SANDBOX_CONFIG, environ={}).journal, path=str(tmp_path / "j.sqlite3")
        ),
        control=msgspec.structs.replace(
            load_config(SANDBOX_CONFIG, environ={}).control, socket_path=str(tmp_path / "c.sock")
        ),
        metrics=MetricsConfig(enabled=False),
    )
    registry = ControlRegistry()
    async with trio.open_nursery() as nursery:
        root = await nursery.start(partial(serve, config, {}, registry=registry))
        assert root.status() == ()
        assert registry.systems == {}
        assert registry.workflows == {}
        root.request_stop()


async def test_a_reload_of_limits_reaches_the_running_governor(
    daemon: Daemon, autojump_clock: MockClock
) -> None:
    [hook] = [h for h in daemon.registry.reload_hooks if h.prefixes == ("systems.crm.limits",)]
    old = daemon.config
    limits = msgspec.structs.replace(old.systems["crm"].limits, rate_per_s=5.0, burst=7)
    crm = msgspec.structs.replace(old.systems["crm"], limits=limits)
    new = msgspec.structs.replace(old, systems={**old.systems, "crm": crm})

    summary = await hook.apply(old, new)

    snapshot = daemon.registry.governors["crm"].snapshot()
    assert (snapshot.rate_per_s, snapshot.burst) == (5.0, 7)
    assert summary.startswith("crm: 5/s, burst 7")
    assert daemon.registry.governors["erp"].snapshot().rate_per_s != 5.0
