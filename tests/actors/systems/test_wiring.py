"""build_systems: the systems' subtree under a supervisor, end to end."""

from __future__ import annotations

import pytest
import trio

from actors.health import HealthView
from actors.supervisor import Supervisor
from actors.systems import (
    FeedState,
    PollSettings,
    SystemSettings,
    build_systems,
    execute,
    pause_system,
)

from .fakes import FakeAdapter, FakeFeed, envelope, posting
from .test_poller import Backlog, CrashBeforeWatermark

SETTINGS = SystemSettings(
    max_concurrency=2,
    poll=PollSettings(poll_interval_s=60, batch=2),
)


async def test_one_line_wires_commands_and_feeds_under_the_root(journal_clock, journal):
    feed = FakeFeed([envelope(number) for number in range(3)])
    billing = FakeAdapter("billing", feeds=(feed,))
    erp = FakeAdapter("erp")
    systems = build_systems(
        [billing, erp],
        journal=journal,
        backlog=Backlog(),
        settings={"billing": SETTINGS},
        high_water_marks={"invoice_feedback": 50},
    )
    root = Supervisor("root", [systems.child_spec])
    async with trio.open_nursery() as nursery:
        await nursery.start(root.run)
        result = await execute(systems.mailboxes["erp"], posting("p-1"), timeout_s=60)
        await feed.changes.until(lambda: len(feed.calls) >= 2)
        paths = [actor.path for actor in HealthView(root).actors()]
        assert HealthView(root).all_required_alive()
        root.request_stop()
    await systems.aclose()

    assert result.system == "erp"
    assert erp.started == ["p-1"]
    assert billing.started == []
    assert len(await journal.read_events()) == 3
    assert paths == [
        "root",
        "root/systems",
        "root/systems/billing",
        "root/systems/billing/commands",
        "root/systems/billing/poll:invoice_events",
        "root/systems/erp",
        "root/systems/erp/commands",
    ]
    assert billing.closed
    assert erp.closed
    assert systems.status()["billing"].feeds[0].state is FeedState.STOPPED


async def test_a_poller_that_dies_after_appending_is_restarted_and_dedupes(journal_clock, journal):
    feed = FakeFeed([envelope(number) for number in range(4)])
    crashing = CrashBeforeWatermark(journal)
    systems = build_systems(
        [FakeAdapter("billing", feeds=(feed,))],
        journal=crashing,  # type: ignore[arg-type]
        backlog=Backlog(),
        settings={"billing": SETTINGS},
    )
    root = Supervisor("root", [systems.child_spec])
    async with trio.open_nursery() as nursery:
        await nursery.start(root.run)
        await feed.changes.until(lambda: len(feed.calls) >= 3)
        stats = systems.controls["billing"].feeds["invoice_events"]
        await feed.changes.until(lambda: stats.watermark == "4")
        root.request_stop()

    assert crashing.crashed
    assert feed.calls[:2] == [(None, 2), (None, 2)]  # the page is read again after restart
    assert len(await journal.read_events()) == 4
    assert (stats.events_appended, stats.duplicates) == (4, 2)
    health = {actor.path: actor for actor in HealthView(root).actors()}
    assert health["root/systems/billing/poll:invoice_events"].restarts == 1


async def test_pause_reaches_the_pollers_of_the_system(journal_clock, journal):
    feed = FakeFeed([envelope(0)])
    systems = build_systems(
        [FakeAdapter("billing", feeds=(feed,))], journal=journal, backlog=Backlog()
    )
    root = Supervisor("root", [systems.child_spec])
    async with trio.open_nursery() as nursery:
        await nursery.start(root.run)
        await feed.changes.until(lambda: len(feed.calls) == 1)
        assert await pause_system(systems.mailboxes["billing"], timeout_s=10) is True
        await trio.sleep(180)  # three poll intervals
        assert len(feed.calls) == 1
        assert systems.status()["billing"].paused
        systems.controls["billing"].resume()
        await feed.changes.until(lambda: len(feed.calls) == 2)
        root.request_stop()


def test_settings_for_an_unknown_system_are_refused():
    with pytest.raises(ValueError, match="unconfigured"):
        build_systems(
            [FakeAdapter("billing")],
            journal=None,  # type: ignore[arg-type]
            backlog=Backlog(),
            settings={"crm": SystemSettings()},
        )
