"""``pssync run``: readiness, graceful drain on SIGTERM/SIGINT, exit status on failure."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import structlog
import trio

from actors import Actor, ChildSpec, Restart
from daemon.config_load import load_config
from daemon.service import EXIT_FAILED, EXIT_OK, run_service, serve

from .conftest import GOVERNANCE

REPO = Path(__file__).resolve().parents[2]

ERP_WITH_ENV_SECRET = """
[systems.erp]
kind = "erp"
vendor = "oracle"
base_url = "https://acme.fa.us2.oraclecloud.com"
auth = { method = "basic", username = "INTEGRATION", password = "env:PSSYNC_TEST_KEY" }
"""


class Idle(Actor[Any]):
    """Serves an empty mailbox until asked to stop."""

    stopped: list[str] = []

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        async for _ in self.messages():
            pass
        Idle.stopped.append(self.name)


class Crashing(Actor[Any]):
    """Fails as soon as it has started."""

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        await trio.lowlevel.checkpoint()
        raise RuntimeError("vendor adapter exploded")


def config_for(tmp_path: Path) -> Path:
    path = tmp_path / "pssync.toml"
    path.write_text(
        GOVERNANCE
        + '[journal]\npath = "state/journal.sqlite3"\n'
        + '[control]\nsocket_path = "run/control.sock"\n'
        # The metrics server has its own tests; these follow the service's own lifecycle.
        + "[metrics]\nenabled = false\n"
    )
    return path


async def read_until(stream: trio.abc.ReceiveStream, marker: bytes, seen: bytearray) -> None:
    while marker not in seen:
        chunk = await stream.receive_some()
        if not chunk:
            raise AssertionError(f"stream ended before {marker!r}: {seen.decode()}")
        seen.extend(chunk)


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_run_drains_on_signal_and_exits_0(tmp_path: Path, signum: int) -> None:
    config = config_for(tmp_path)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("NOTIFY_SOCKET", None)
    process = await trio.lowlevel.open_process(
        [sys.executable, "-m", "daemon", "run", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=REPO,
        env=env,
    )
    output = bytearray()
    try:
        with trio.fail_after(30):
            assert process.stdout is not None
            await read_until(process.stdout, b'"event":"daemon.ready"', output)
            process.send_signal(signum)
            await read_until(process.stdout, b'"event":"daemon.stopped"', output)
            status = await process.wait()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()

    assert status == 0
    events = [json.loads(line)["event"] for line in output.decode().splitlines()]
    assert events[0] == "daemon.ready"
    assert events[-1] == "daemon.stopped"
    stopping = [json.loads(line) for line in output.decode().splitlines()][1]
    assert stopping["event"] == "daemon.stopping"
    assert stopping["signal"] == signal.Signals(signum).name
    assert (tmp_path / "state" / "journal.sqlite3").exists()


@pytest.mark.slow
def test_run_with_bad_config_exits_2_before_starting(tmp_path: Path) -> None:
    config = tmp_path / "pssync.toml"
    config.write_text(GOVERNANCE + "[journal]\nsynchronous = 1\n")

    result = subprocess.run(
        [sys.executable, "-m", "daemon", "run", "--config", str(config)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=30,
        check=False,
    )

    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == (
        f'pssync: error: {config}: journal.synchronous: expected one of "FULL", "NORMAL", got 1\n'
    )


async def test_sigterm_stops_children_and_serve_returns_0(tmp_path: Path) -> None:
    config = load_config(config_for(tmp_path), environ={})
    Idle.stopped = []

    def children(config: Any, journal: Any, secrets: Any) -> list[ChildSpec]:
        return [
            ChildSpec(name="first", factory=lambda: Idle("first")),
            ChildSpec(name="second", factory=lambda: Idle("second")),
        ]

    results: list[int] = []
    async with trio.open_nursery() as nursery:
        # serve() has taken over SIGTERM before it reports ready, so the signal below
        # reaches its receiver rather than the test process's default handler.
        root = await nursery.start(
            lambda task_status: _serve(config, children, results, task_status)
        )
        assert [child.name for child in root.status()] == ["first", "second"]
        os.kill(os.getpid(), signal.SIGTERM)

    assert results == [EXIT_OK]
    assert Idle.stopped == ["second", "first"]  # drained in reverse start order


async def _serve(config: Any, children: Any, results: list[int], task_status: Any) -> None:
    results.append(await serve(config, {}, children, task_status=task_status))


async def test_root_supervisor_failure_is_logged_and_exits_1(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    config = load_config(config_for(tmp_path), environ={})

    def children(config: Any, journal: Any, secrets: Any) -> list[ChildSpec]:
        return [ChildSpec(name="crm", factory=lambda: Crashing("crm"), restart=Restart.PERMANENT)]

    with structlog.testing.capture_logs() as logs:
        status = await serve(config, {}, children)

    assert status == EXIT_FAILED
    [failed] = [entry for entry in logs if entry["event"] == "daemon.root_failed"]
    assert "child 'crm' ended (RuntimeError: vendor adapter exploded)" in failed["error"]
    assert failed["cause"] == "RuntimeError: vendor adapter exploded"
    assert not any(entry["event"] == "daemon.stopped" for entry in logs)


def test_run_service_unresolvable_secret_exits_2_with_a_log_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config_file = config_for(tmp_path)
    config_file.write_text(config_file.read_text() + ERP_WITH_ENV_SECRET)
    config = load_config(config_file, environ={})

    status = run_service(config, environ={}, cache_loggers=False)

    assert status == 2
    [line] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert line["event"] == "daemon.config_invalid"
    assert line["error"] == (
        "systems.erp.auth.password: environment variable PSSYNC_TEST_KEY is not set"
    )
    assert not (tmp_path / "state").exists()  # nothing was started


def test_run_service_logs_an_unexpected_crash_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = load_config(config_for(tmp_path), environ={})

    def children(config: Any, journal: Any, secrets: Any) -> list[ChildSpec]:
        raise RuntimeError("wiring bug")

    status = run_service(config, environ={}, children=children, cache_loggers=False)

    assert status == 1
    [line] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert line["event"] == "daemon.crashed"
    assert line["level"] == "error"
    assert line["exception"][0]["exc_value"] == "wiring bug"
