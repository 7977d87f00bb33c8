"""Every operator command against a running daemon: tables, --json, exit statuses."""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import trio

from actors.messages import decode_envelope
from actors.workflows import Enabled, WorkflowSettings, tm_close
from daemon.cli import main
from daemon.control import ControlRegistry
from daemon.pipeline import assemble
from store import EventRecord, NewRun

from .conftest import TIMEOUT_S, FakeSystem, unprivileged


def out_json(capsys: pytest.CaptureFixture[str]) -> Any:
    return json.loads(capsys.readouterr().out)


# ------------------------------------------------------------------------ status, actors


async def test_status_table_and_json(start_daemon, capsys: pytest.CaptureFixture[str]) -> None:
    daemon = await start_daemon(registry=ControlRegistry(systems={"erp": FakeSystem("erp")}))

    assert await daemon.cli("status") == 0
    text = capsys.readouterr().out
    assert await daemon.cli("status", "--json") == 0
    status = out_json(capsys)

    assert text.startswith("state            running (healthy)\n")
    assert "exceptions open  0" in text
    assert "erp     erp   netsuite  v1       polling  no" in text
    assert status["pid"] == os.getpid()
    assert status["state"] == "running"
    assert status["systems"] == [
        {
            "name": "erp",
            "kind": "erp",
            "vendor": "netsuite",
            "mapping_version": 1,
            "state": "polling",
            "paused": False,
        }
    ]
    assert status["journal"]["path"] == daemon.config.journal.path
    assert status["journal"]["bytes"] > 0
    assert status["backlog"]["runs_unfinished"] == 0


async def test_actors(start_daemon, capsys: pytest.CaptureFixture[str]) -> None:
    daemon = await start_daemon()

    assert await daemon.cli("actors") == 0
    text = capsys.readouterr().out
    assert await daemon.cli("actors", "--json") == 0
    [root] = out_json(capsys)

    assert text.splitlines()[0].split() == [
        "ACTOR", "STATE", "ALIVE", "REQUIRED", "RESTARTS", "HEARTBEAT", "LAST", "ERROR"
    ]  # fmt: skip
    assert root["path"] == "root"
    assert root["state"] == "running"
    assert root["alive"] is True


# ------------------------------------------------------------------------ pause, resume


async def test_pause_and_resume_a_registered_system(
    start_daemon, capsys: pytest.CaptureFixture[str]
) -> None:
    system = FakeSystem("erp")
    daemon = await start_daemon(registry=ControlRegistry(systems={"erp": system}))

    assert await daemon.cli("pause", "erp") == 0
    assert capsys.readouterr().out == "system erp paused (state: paused)\n"
    assert system.paused
    assert await daemon.cli("resume", "erp", "--json") == 0
    assert out_json(capsys) == {
        "name": "erp",
        "kind": "system",
        "state": "polling",
        "paused": False,
    }
    assert system.calls == ["pause", "resume"]


async def test_pause_unknown_or_unregistered_exits_1(
    start_daemon, capsys: pytest.CaptureFixture[str]
) -> None:
    daemon = await start_daemon()

    assert await daemon.cli("pause", "crm") == 1
    assert capsys.readouterr().err == (
        "pssync: error: not_found: no system or workflow named 'crm'; known: erp\n"
    )
    # configured, but no system actor has registered (actors/systems not wired yet)
    assert await daemon.cli("pause", "erp") == 1
    assert "unavailable: system 'erp' is configured but has no running actor" in (
        capsys.readouterr().err
    )


async def test_mutation_by_an_unprivileged_peer_exits_4(
    start_daemon, capsys: pytest.CaptureFixture[str]
) -> None:
    system = FakeSystem("erp")
    daemon = await start_daemon(
        policy=unprivileged(), registry=ControlRegistry(systems={"erp": system})
    )

    assert await daemon.cli("pause", "erp") == 4
    assert "forbidden: pause changes the daemon" in capsys.readouterr().err
    assert await daemon.cli("status") == 0  # reading is still allowed
    assert system.calls == []


# ------------------------------------------------------------------------ runs


async def add_run(daemon) -> int:
    appended = await daemon.journal.append(
        [
            EventRecord(
                id="crm:opp:1:1",
                type="DealWon",
                key="ACME-1",
                source="crm",
                correlation_id="c-1",
                occurred_at=1_700_000_000.0,
                recorded_at=1_700_000_000.0,
            )
        ]
    )
    [run_id] = await daemon.journal.create_runs(
        [
            NewRun(
                workflow="deal_to_project",
                key="ACME-1",
                trigger_seqs=appended.seqs,
                correlation_id="c-1",
            )
        ],
        now=time.time(),
    )
    assert run_id is not None
    await daemon.journal.record_step(run_id, "create_customer", b"\x81\xa2id\xa3C-1", time.time())
    return run_id


async def test_runs_list_and_show(start_daemon, capsys: pytest.CaptureFixture[str]) -> None:
    daemon = await start_daemon()
    run_id = await add_run(daemon)

    assert await daemon.cli("runs", "list") == 0
    listing = capsys.readouterr().out
    assert await daemon.cli("runs", "list", "--workflow", "deal_to_project", "--json") == 0
    [run] = out_json(capsys)
    assert await daemon.cli("runs", "list", "--status", "completed", "--json") == 0
    assert out_json(capsys) == []
    assert await daemon.cli("runs", "show", str(run_id)) == 0
    shown = capsys.readouterr().out
    assert await daemon.cli("runs", "show", str(run_id), "--json") == 0
    detail = out_json(capsys)

    assert "deal_to_project  ACME-1  pending" in listing
    assert run["id"] == run_id
    assert run["status"] == "pending"
    assert f"run             {run_id}\n" in shown
    assert "create_customer  completed" in shown
    assert "DealWon  ACME-1  crm     crm:opp:1:1" in shown
    assert detail["steps"][0]["result_bytes"] == 8
    assert detail["triggers"][0]["occurred_at"] == "2023-11-14T22:13:20+00:00"


async def test_runs_show_missing_exits_1_and_bad_id_exits_2(
    start_daemon, capsys: pytest.CaptureFixture[str]
) -> None:
    daemon = await start_daemon()

    assert await daemon.cli("runs", "show", "404") == 1
    assert capsys.readouterr().err == "pssync: error: not_found: run 404 does not exist\n"
    assert await daemon.cli("runs", "show", "four") == 2
    assert await daemon.cli("runs", "show", "404", "--json") == 1
    assert out_json(capsys)["error"]["code"] == "not_found"


# ------------------------------------------------------------------------ exceptions


async def open_exceptions(daemon) -> tuple[int, int]:
    now = time.time()
    old = await daemon.journal.open_exception(
        workflow="milestone_to_invoice",
        category="billing",
        owner="billing-ops",
        message="invoice rejected: tax code missing",
        correlation_id="c-9",
        now=now - 3 * 86400,
        amount=Decimal("12500.00"),
        currency="EUR",
        detail=b"NetSuite said: INVALID_FLD_VALUE",
    )
    new = await daemon.journal.open_exception(
        workflow="deal_to_project",
        category="master_data",
        owner="mdm",
        message="account has no parent",
        correlation_id="c-10",
        now=now,
    )
    return old.id, new.id


async def test_exceptions_list_filters_and_show(
    start_daemon, capsys: pytest.CaptureFixture[str]
) -> None:
    daemon = await start_daemon()
    old, new = await open_exceptions(daemon)

    assert await daemon.cli("exceptions", "list") == 0
    listing = capsys.readouterr().out
    assert await daemon.cli("exceptions", "list", "--older-than", "2d", "--json") == 0
    aged = out_json(capsys)
    assert await daemon.cli("exceptions", "list", "--owner", "mdm", "--json") == 0
    owned = out_json(capsys)
    assert await daemon.cli("exceptions", "list", "--category", "billing", "--json") == 0
    categorised = out_json(capsys)
    assert await daemon.cli("exceptions", "list", "--workflow", "nope", "--json") == 0
    assert out_json(capsys) == []
    assert await daemon.cli("exceptions", "show", str(old)) == 0
    shown = capsys.readouterr().out

    assert "12500.00 EUR" in listing
    assert "3d 0h" in listing
    assert [e["id"] for e in aged] == [old]
    assert [e["id"] for e in owned] == [new]
    assert [e["id"] for e in categorised] == [old]
    assert "detail          NetSuite said: INVALID_FLD_VALUE" in shown
    assert "amount at risk  12500.00 EUR" in shown


async def test_exceptions_assign_retry_resolve(
    start_daemon, capsys: pytest.CaptureFixture[str]
) -> None:
    daemon = await start_daemon()
    old, new = await open_exceptions(daemon)

    assert await daemon.cli("exceptions", "assign", str(old), "finance-lead", "--json") == 0
    assert out_json(capsys)["owner"] == "finance-lead"
    assert await daemon.cli("exceptions", "retry", str(old), "--note", "tax code added") == 0
    assert "status          retry" in capsys.readouterr().out
    assert await daemon.cli("exceptions", "resolve", str(old), "--resolution", "x") == 1
    assert "conflict: exception" in capsys.readouterr().err
    assert await daemon.cli("exceptions", "resolve", str(new), "--resolution", "fixed") == 0
    capsys.readouterr()
    assert await daemon.cli("exceptions", "show", "999") == 1
    assert await daemon.cli("exceptions", "resolve", str(new)) == 2  # --resolution required

    record = await daemon.journal.get_exception(new)
    assert record is not None
    assert record.status == "resolved"
    assert record.resolved_by is not None
    assert record.resolved_by.startswith(f"uid {os.getuid()}")
    assert record.resolved_by.endswith(f"pid {os.getpid()}")


# ------------------------------------------------------------------------ journal


async def test_journal_online(start_daemon, capsys: pytest.CaptureFixture[str]) -> None:
    daemon = await start_daemon()
    await add_run(daemon)
    copy = daemon.tmp_path / "copy.sqlite3"

    assert await daemon.cli("journal", "stats", "--json") == 0
    stats = out_json(capsys)
    assert await daemon.cli("journal", "verify") == 0
    verified = capsys.readouterr().out
    assert await daemon.cli("journal", "backup", str(copy)) == 0
    backed_up = capsys.readouterr().out
    assert await daemon.cli("journal", "backup", "--json") == 0
    default = out_json(capsys)
    assert await daemon.cli("journal", "backup", str(copy)) == 1  # never overwrites

    assert stats["max_seq"] == 1
    assert stats["runs_by_status"] == {"pending": 1}
    assert verified.startswith(f"OK {daemon.config.journal.path}\n")
    assert backed_up.startswith(f"backed up {daemon.config.journal.path} to {copy} (")
    assert copy.exists()
    assert Path(default["destination"]).parent == daemon.tmp_path / "backups"
    # the offline path still reads the copy
    assert await trio.to_thread.run_sync(main, ["journal", "stats", "--journal", str(copy)]) == 0


# ------------------------------------------------------------------------ limits, replay


class FakeGovernor:
    def snapshot(self) -> dict[str, Any]:
        return {
            "rate_per_s": 5.0,
            "effective_rate_per_s": 2.5,
            "burst": 10,
            "tokens": 3.25,
            "max_concurrency": 4,
            "in_flight": 1,
            "queued": {"financial": 2, "master_data": 1},
            "quota_used": 120,
            "quota_limit": 10_000,
            "paused_until": None,
            "throttle_count": 3,
        }


async def test_limits(start_daemon, capsys: pytest.CaptureFixture[str]) -> None:
    daemon = await start_daemon(registry=ControlRegistry(governors={"erp": FakeGovernor()}))

    assert await daemon.cli("limits") == 0
    text = capsys.readouterr().out
    assert await daemon.cli("limits", "erp", "--json") == 0
    [erp] = out_json(capsys)
    assert await daemon.cli("limits", "crm") == 1

    assert "erp          5          2.5    3.25  1/4" in text
    assert "120/10,000" in text
    assert erp["system"] == "erp"
    assert erp["tokens"] == 3.25


async def test_limits_replay_reconcile_unavailable_until_registered(
    start_daemon, capsys: pytest.CaptureFixture[str]
) -> None:
    seen: list[Any] = []

    async def replay(request: Any) -> dict[str, Any]:
        seen.append(request)
        return {"runs_created": 3, "dry_run": request.dry_run}

    registry = ControlRegistry()
    daemon = await start_daemon(registry=registry)

    assert await daemon.cli("limits") == 1
    assert await daemon.cli("replay", "deal_to_project", "--key", "ACME-1") == 1
    assert await daemon.cli("reconcile") == 1
    errors = capsys.readouterr().err
    assert "unavailable: limits is not available yet" in errors
    assert "unavailable: replay is not available yet" in errors
    assert "(expected from the dispatcher (actors/workflows))" in errors

    registry.replay = replay
    assert await daemon.cli("replay", "deal_to_project", "--from-seq", "5", "--dry-run") == 0
    assert capsys.readouterr().out == "runs_created  3\ndry_run       true\n"
    assert seen[0].workflow == "deal_to_project"
    assert (seen[0].from_seq, seen[0].dry_run, seen[0].key) == (5, True, None)


# ------------------------------------------------------------------------ close-period

# 10 February 2026, 12:00 UTC: January is past its close (3 days), February is not over.
FEB_10 = datetime(2026, 2, 10, 12, tzinfo=UTC).timestamp()


async def test_close_period_requests_the_month_end_close(
    start_daemon, capsys: pytest.CaptureFixture[str]
) -> None:
    registry = ControlRegistry()
    daemon = await start_daemon(registry=registry)

    assert await daemon.cli("close-period") == 1  # tm_close is not enabled
    errors = capsys.readouterr().err
    assert "unavailable: close_period is not available yet" in errors
    assert "(expected from the tm_close workflow (actors/workflows))" in errors

    assemble(
        [],
        daemon.journal,
        [Enabled(tm_close.SPEC, WorkflowSettings())],
        owners={},
        roles={},
        registry=registry,
        now=lambda: FEB_10,
    )
    assert registry.close_period is not None

    assert await daemon.cli("close-period") == 0  # the newest month past its close
    text = capsys.readouterr().out
    assert await daemon.cli("close-period", "2025-11", "--json") == 0
    answer = out_json(capsys)

    closes = [
        decode_envelope(record.body)
        for record in await daemon.journal.read_events(0, 100, ["billing_period.closed"])
    ]
    assert [(c.body.period, c.body.requested_by) for c in closes] == [
        ("2026-01", "operator"),
        ("2025-11", "operator"),
    ]
    assert text == f"requested  {closes[0].id}\nperiod     2026-01\n"
    assert answer == {"requested": closes[1].id, "period": "2025-11"}

    # A month not over yet (closing it would finalize drafts still being filled), or not
    # a month at all: refused, nothing appended.
    assert await daemon.cli("close-period", "2026-02") == 2
    assert "bad_request: period '2026-02' has not ended yet" in capsys.readouterr().err
    assert await daemon.cli("close-period", "2026-13", "--json") == 2
    refused = out_json(capsys)
    assert refused["error"]["code"] == "bad_request"
    assert "expected a month, YYYY-MM" in refused["error"]["message"]
    assert len(await daemon.journal.read_events(0, 100, ["billing_period.closed"])) == 2


# ------------------------------------------------------------------------ reload


class LimitsHook:
    name = "systems.erp.limits"
    prefixes = ("systems.erp.limits",)

    def __init__(self) -> None:
        self.applied: list[float] = []

    def check(self, old: Any, new: Any) -> None:
        pass

    async def apply(self, old: Any, new: Any) -> str:
        rate = new.config.systems["erp"].limits.rate_per_s
        self.applied.append(rate)
        return f"erp rate {rate}/s"


async def test_reload_valid_and_invalid(start_daemon, capsys: pytest.CaptureFixture[str]) -> None:
    hook = LimitsHook()
    daemon = await start_daemon(registry=ControlRegistry(reload_hooks=[hook]))
    original = daemon.config_file.read_text()

    daemon.config_file.write_text(
        original.replace("enabled = false", 'enabled = false\nlisten = "127.0.0.1:9465"')
        + "\n[systems.erp.limits]\nrate_per_s = 2.0\n"
    )
    assert await daemon.cli("reload", "--json") == 0
    result = out_json(capsys)

    assert result["changed"] == [
        {"key": "metrics.listen", "old": "127.0.0.1:9464", "new": "127.0.0.1:9465"},
        {"key": "systems.erp.limits.rate_per_s", "old": 5.0, "new": 2.0},
    ]
    assert result["applied"] == {"systems.erp.limits": "erp rate 2.0/s"}
    assert result["restart_required"] == ["metrics.listen"]
    assert hook.applied == [2.0]

    daemon.config_file.write_text(original + "\n[systems.erp.limits]\nrate_per_s = -1\n")
    assert await daemon.cli("reload") == 1
    err = capsys.readouterr().err
    assert "invalid_config: configuration refused, the running one is kept" in err
    assert "systems.erp.limits.rate_per_s: expected a number > 0.0, got -1" in err
    assert hook.applied == [2.0]  # nothing applied from the refused file

    assert await daemon.cli("reload") == 1  # still refused; the daemon keeps answering
    capsys.readouterr()
    daemon.config_file.write_text(original)
    assert await daemon.cli("reload") == 0
    text = capsys.readouterr().out
    assert text.startswith(f"reloaded {daemon.config_file}: 2 changed\n")
    assert "systems.erp.limits  erp rate 5.0/s" in text
    assert text.endswith("needs a restart to take effect: metrics.listen\n")
    assert hook.applied == [2.0, 5.0]


async def test_reload_through_config_that_no_longer_validates(
    start_daemon, capsys: pytest.CaptureFixture[str]
) -> None:
    """ExecReload=pssync reload --config FILE after a bad edit still reaches the daemon."""
    daemon = await start_daemon()
    daemon.config_file.write_text(daemon.config_file.read_text() + "\n[log]\nlevel = 5\n")

    status = await trio.to_thread.run_sync(main, ["reload", "--config", str(daemon.config_file)])

    assert status == 1
    assert 'log.level: expected one of "debug", "error", "info", "warning", got 5' in (
        capsys.readouterr().err
    )


# ------------------------------------------------------------------------ drain, exits


async def test_drain_stops_the_daemon_with_0(
    start_daemon, capsys: pytest.CaptureFixture[str]
) -> None:
    system = FakeSystem("erp")
    daemon = await start_daemon(registry=ControlRegistry(systems={"erp": system}))

    assert await daemon.cli("drain") == 0
    with trio.fail_after(TIMEOUT_S):
        await daemon.finished.wait()

    assert capsys.readouterr().out == (
        "draining: polling stopped, in-flight work finishing\nstopped\n"
    )
    assert system.calls == ["pause"]
    assert daemon.results == [0]
    assert not await trio.Path(daemon.socket).exists()
    assert await daemon.cli("status") == 3


async def test_no_daemon_exits_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = str(tmp_path / "none.sock")

    status = await trio.to_thread.run_sync(main, ["status", "--socket", missing])
    top_level = await trio.to_thread.run_sync(main, ["--socket", missing, "actors", "--json"])

    assert status == 3
    assert top_level == 3
    out = capsys.readouterr()
    assert f"pssync: error: the daemon is not running (no control socket at {missing})" in out.err
    assert json.loads(out.out)["error"]["code"] == "not_running"


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to become another user")
async def test_a_user_the_socket_refuses_exits_4(start_daemon) -> None:
    daemon = await start_daemon()

    def as_nobody() -> int:
        # A forked child turns into "nobody" and runs the CLI code already imported
        # here (nobody may not be able to read this interpreter to start a fresh one).
        pid = os.fork()
        if pid == 0:
            try:
                os.setgroups([])
                os.setgid(65534)
                os.setuid(65534)
                code = main(["status", "--socket", daemon.socket])
            finally:
                os._exit(locals().get("code", 99))
        _, status = os.waitpid(pid, 0)
        return os.waitstatus_to_exitcode(status)

    assert await trio.to_thread.run_sync(as_nobody) == 4
