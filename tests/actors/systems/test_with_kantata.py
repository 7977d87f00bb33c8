"""The system tree over a real vendor adapter: Kantata against its in-process sandbox.

Commands go through the SystemActor to the adapter's governed client; every feed's
poller sweeps into the journal; a second run of the pollers adds nothing.
"""

from __future__ import annotations

import random
from datetime import date
from pathlib import Path

import httpx
import pytest
import trio

from actors.messages import CreateProjectFromTemplate, Money, Project
from actors.supervisor import Supervisor
from actors.systems import PollSettings, SystemSettings, build_systems, execute
from adapters.auth import BearerToken
from adapters.governor import Governor, GovernorConfig
from adapters.http import HttpConfig, SystemClient
from adapters.mapping import load_mapping
from adapters.sandbox import SandboxClock, SandboxConfig, build_sandbox
from adapters.sandbox.scenario import Scenario
from adapters.signals import KantataSignals

from .fakes import Changes
from .test_poller import Backlog

kantata = pytest.importorskip("adapters.kantata")

MAPPING = Path(__file__).parents[3] / "config" / "mappings" / "kantata.toml"
START = 1_767_225_600.0  # 2026-01-01T00:00:00Z
SETTINGS = {"psa": SystemSettings(poll=PollSettings(poll_interval_s=60, batch=200))}


def adapter_for(sandbox):
    client = SystemClient(
        "psa",
        HttpConfig(base_url="https://api.mavenlink.com/api/v1"),
        auth=BearerToken(sandbox.vendors["kantata"].credentials["access_token"]),
        # Under the sandbox's own 10/s, burst 20, so nothing is throttled.
        governor=Governor(GovernorConfig(rate_per_s=8.0, burst=10, max_concurrency=4)),
        signals=KantataSignals(),
        transport=httpx.ASGITransport(app=sandbox.apps["kantata"]),
        rng=random.Random(7),
    )
    return kantata.create_adapter(
        system="psa",
        client=client,
        mappings=load_mapping(MAPPING),
        options=kantata.KantataOptions(templates={"implementation": "Implementation template"}),
    )


def provisioning(number: int) -> CreateProjectFromTemplate:
    return CreateProjectFromTemplate(
        idempotency_key=f"deal_to_project:{number}:psa_project",
        correlation_id=f"corr-{number}",
        template_id="implementation",
        project=Project(
            id=f"PRJ-{number}",
            name=f"Implementation {number}",
            account_id=f"001ACC{number}",
            currency="USD",
            start_date=date(2026, 1, 5),
            end_date=date(2026, 3, 31),
            budget=Money.of("250000.00", "USD"),
        ),
    )


class Watched:
    """A real adapter whose feeds report when each has come back after catching up."""

    def __init__(self, adapter) -> None:
        self._adapter = adapter
        self.system = adapter.system
        self.changes = Changes()
        self._feeds = [_WatchedFeed(feed, self.changes) for feed in adapter.feeds()]

    def __getattr__(self, name: str):
        return getattr(self._adapter, name)

    def feeds(self):
        return self._feeds

    def caught_up(self) -> bool:
        return all(feed.polls_after_idle > 0 for feed in self._feeds)


class _WatchedFeed:
    def __init__(self, feed, changes: Changes) -> None:
        self._feed = feed
        self.name = feed.name
        self.workflow = feed.workflow
        self._changes = changes
        self._idle = False
        self.polls_after_idle = 0

    async def poll(self, watermark, *, limit):
        if self._idle:  # the previous page said "no more" and has been stored
            self.polls_after_idle += 1
            self._changes.notify()
        page = await self._feed.poll(watermark, limit=limit)
        self._idle = not page.more
        return page


async def sweep_all(adapter, journal) -> None:
    watched = Watched(adapter)
    systems = build_systems([watched], journal=journal, backlog=Backlog(), settings=SETTINGS)
    root = Supervisor("root", [systems.child_spec])
    async with trio.open_nursery() as nursery:
        await nursery.start(root.run)
        await watched.changes.until(watched.caught_up)
        root.request_stop()
    await systems.aclose()


async def test_kantata_feeds_reach_the_journal_once(journal_clock, journal):
    clock = SandboxClock(start=START, monotonic_source=trio.current_time)
    sandbox = build_sandbox(
        SandboxConfig(vendors=("kantata",), seed=3, seed_data=True), clock=clock
    )
    adapter = adapter_for(sandbox)
    systems = build_systems([adapter], journal=journal, backlog=Backlog(), settings=SETTINGS)
    root = Supervisor("root", [systems.child_spec])
    async with trio.open_nursery() as nursery:
        await nursery.start(root.run)
        for number in (1, 2):
            result = await execute(systems.mailboxes["psa"], provisioning(number), timeout_s=600)
            assert result.created
        again = await execute(systems.mailboxes["psa"], provisioning(1), timeout_s=600)
        root.request_stop()
    assert not again.created

    scenario = Scenario(sandbox, seed=5, month_end_entries=50)
    approved = sum(scenario.run_week().time_entries_approved for _ in range(2))
    assert approved > 0

    await sweep_all(adapter_for(sandbox), journal)
    first = await journal.read_events(limit=100_000)
    assert sum(row.type == "time.approved" for row in first) == approved

    # A fresh tree, as after a restart, resumes from the stored watermarks.
    await sweep_all(adapter_for(sandbox), journal)
    assert len(await journal.read_events(limit=100_000)) == len(first)
    await systems.aclose()
