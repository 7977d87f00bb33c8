"""``pssync run`` with the real pipeline against the sandbox (the ``daemon`` fixture of
conftest.py): wiring, provisioning, pause and resume, replay, reconcile."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date
from functools import partial
from pathlib import Path

import msgspec
import pytest
import trio
from trio.testing import MockClock

from actors.errors import ControlError
from actors.messages import BillingPeriodClosed, decode_envelope
from actors.systems import FeedState
from daemon.config import MetricsConfig
from daemon.config_load import load_config
from daemon.control import ControlRegistry
from daemon.control.protocol import ClosePeriod, Reconcile, Replay
from daemon.pipeline import SystemPausable, WorkflowSlot, parse_period
from daemon.service import serve

from .conftest import SANDBOX_CONFIG, Daemon


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
    assert registry.close_period is not None
    tree = {child.name for child in daemon.root.status()}
    assert {"systems", "dispatcher", "schedule:reconcile", "schedule:tm_close"} <= tree
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


async def test_close_period_appends_a_close_for_tm_close(
    daemon: Daemon, autojump_clock: MockClock
) -> None:
    assert daemon.registry.close_period is not None
    result = await daemon.registry.close_period(ClosePeriod(period="2026-01"))
    assert result["period"] == "2026-01"

    async def requested() -> bool:
        # The schedule appends its own close of the newest closable month: look for ours.
        envelopes = [
            decode_envelope(record.body) for record in await daemon.events("billing_period.closed")
        ]
        ours = [e for e in envelopes if e.id == result["requested"]]
        return len(ours) == 1 and ours[0].body == BillingPeriodClosed(
            period="2026-01", requested_by="operator"
        )

    await daemon.until(requested)

    async def ran() -> bool:
        runs = await daemon.runs(workflow="tm_close")
        return any(run.key == "period:2026-01" for run in runs)

    await daemon.until(ran)
    await daemon.until_runs_settled("tm_close")

    # A month not over yet is refused, and nothing is appended for it.
    with pytest.raises(ControlError) as refused:
        await daemon.registry.close_period(ClosePeriod(period="2999-01"))
    assert refused.value.code == "bad_request"
    assert "has not ended yet" in refused.value.message


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
