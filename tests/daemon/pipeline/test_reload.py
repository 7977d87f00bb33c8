"""``pssync reload`` against the running pipeline: rate limits, field mappings and schedules
change without a restart; a mapping an adapter cannot use refuses the whole reload."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import trio
from trio.testing import MockClock

from daemon.pipeline import MappingsReload, ScheduleReload

from .conftest import Daemon

CRM_RATE_5 = ("[systems.crm.limits]\nrate_per_s = 20\n", "[systems.crm.limits]\nrate_per_s = 5\n")
RECONCILE = "[workflows.reconcile]\ninterval_s = {}\n"
CRM_POLL = 'api_version = "v66.0"\npoll_interval_s = {}\n'  # in [systems.crm]


def edit(path: Path, *replacements: tuple[str, str]) -> None:
    text = path.read_text()
    for old, new in replacements:
        assert text.count(old) == 1, f"{old!r} is not in {path} exactly once"
        text = text.replace(old, new)
    path.write_text(text)


def hook(daemon: Daemon, kind: type[Any]) -> Any:
    [found] = [h for h in daemon.registry.reload_hooks if isinstance(h, kind)]
    return found


def netsuite_customers(daemon: Daemon) -> list[dict[str, Any]]:
    return list(daemon.sandbox.vendors["netsuite"].state.records["customer"].values())


async def test_reload_applies_limits_mappings_and_schedules_without_a_restart(
    daemon: Daemon, autojump_clock: MockClock
) -> None:
    # Before: the ERP customer's website goes to NetSuite's `url`.
    daemon.scenario.win_deals(1)
    await daemon.until(lambda: _activated(daemon, 1))
    [before] = netsuite_customers(daemon)
    assert before["url"].startswith("https://")

    edit(
        daemon.config_file,
        CRM_RATE_5,
        (CRM_POLL.format(5), CRM_POLL.format(7)),
        (
            "[workflows.reconcile]\ninterval_s = 3600\n",
            "[workflows.reconcile]\ninterval_s = 7200\n",
        ),
        (
            "[workflows.tm_close]\ninterval_s = 3600\n",
            "[workflows.tm_close]\ninterval_s = 600\n",
        ),
    )
    edit(
        daemon.config_file.parent / "mappings" / "netsuite.toml",
        ("version = 1\n", "version = 2\n"),
        ('website = "url"\n', 'website = "custentity_pssync_website"\n'),
    )
    answer = await daemon.reload()

    assert answer["ok"] is True, answer
    result = answer["result"]
    assert result["restart_required"] == []
    assert result["failed"] == {}
    changed = {change["key"]: (change["old"], change["new"]) for change in result["changed"]}
    assert changed == {
        "systems.crm.limits.rate_per_s": (20.0, 5.0),
        "systems.crm.poll_interval_s": (5.0, 7.0),
        "workflows.reconcile.interval_s": (3600.0, 7200.0),
        "workflows.tm_close.interval_s": (3600.0, 600.0),
        "mappings.netsuite.version": (1, 2),
        "mappings.netsuite.entities.customer.fields.website.from": (
            "url",
            "custentity_pssync_website",
        ),
    }
    assert result["applied"] == {
        "systems.crm.limits": "crm: 5/s, burst 40, 8 concurrent",
        "mappings": "erp: netsuite v1 → v2",
        "schedules": "crm poll 5 s → 7 s; reconcile every 3600 s → 7200 s; "
        "tm_close every 3600 s → 600 s",
    }
    # Running components have the new values …
    assert daemon.registry.governors["crm"].snapshot().rate_per_s == 5.0
    assert hook(daemon, MappingsReload).adapters["erp"].mappings.version == 2
    schedules = hook(daemon, ScheduleReload)
    assert schedules.polls["crm"].seconds == 7.0
    assert schedules.workflows["reconcile"].seconds == 7200.0
    assert schedules.workflows["tm_close"].seconds == 600.0
    status = (await daemon.ask("status"))["result"]
    versions = {s["name"]: s["mapping_version"] for s in status["systems"]}
    assert versions == {"crm": 1, "psa": 1, "erp": 2, "billing": 1}

    # … and use them: the next customer's website lands in the newly mapped field.
    daemon.scenario.win_deals(1)
    await daemon.until(lambda: _activated(daemon, 2))
    after = [c for c in netsuite_customers(daemon) if c["id"] != before["id"]]
    assert after  # the customer (and its parent, when the account has one)
    for customer in after:
        assert customer["custentity_pssync_website"].startswith("https://")
        assert "url" not in customer


async def test_a_mapping_an_adapter_cannot_use_refuses_the_whole_reload(
    daemon: Daemon, autojump_clock: MockClock
) -> None:
    mapping = daemon.config_file.parent / "mappings" / "netsuite.toml"
    edit(daemon.config_file, CRM_RATE_5)
    edit(
        mapping,
        ("version = 1\n", "version = 2\n"),
        ("[entities.payment]\n", "[entities.customer_payment]\n"),
        ("[entities.payment.fields]\n", "[entities.customer_payment.fields]\n"),
    )

    answer = await daemon.reload()

    assert answer["ok"] is False
    assert answer["error"]["code"] == "invalid_config"
    message = answer["error"]["message"]
    assert "configuration refused, the running one is kept" in message
    assert str(mapping) in message
    assert "no mapping for entity 'payment'" in message
    # Nothing was applied: not the mapping, not the valid limit beside it.
    assert hook(daemon, MappingsReload).adapters["erp"].mappings.version == 1
    assert daemon.registry.governors["crm"].snapshot().rate_per_s == 20.0

    # A broken file (not TOML) is refused the same way, naming the file.
    mapping.write_text("vendor = \n")
    answer = await daemon.reload()
    assert answer["error"]["code"] == "invalid_config"
    assert str(mapping) in answer["error"]["message"]


async def test_a_new_poll_interval_reaches_a_poller_already_waiting(
    daemon: Daemon, autojump_clock: MockClock
) -> None:
    edit(daemon.config_file, (CRM_POLL.format(5), CRM_POLL.format(3600)))
    assert (await daemon.reload())["ok"] is True
    await trio.sleep(10)  # every CRM poller is now in its (hour-long) sleep

    daemon.scenario.win_deals(1)
    await trio.sleep(600)
    assert await daemon.events("deal.won") == []

    edit(daemon.config_file, (CRM_POLL.format(3600), CRM_POLL.format(5)))
    assert (await daemon.reload())["ok"] is True
    # The sleep begun under the hour-long interval ends at the next heartbeat.
    with trio.fail_after(15):
        await daemon.until(lambda: _arrived(daemon, "deal.won"))


async def _activated(daemon: Daemon, count: int) -> bool:
    return len(await daemon.events("project.activated")) >= count


async def _arrived(daemon: Daemon, event_type: str) -> bool:
    return bool(await daemon.events(event_type))
