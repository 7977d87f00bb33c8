"""sd_notify: datagrams on $NOTIFY_SOCKET; the watchdog is fed only while actors are alive."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trio

from actors import Actor, ChildSpec
from daemon.config_load import load_config
from daemon.service import EXIT_OK, serve
from daemon.systemd import Notifier

from .conftest import GOVERNANCE


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[tuple[str, socket.socket]]:
    path = str(tmp_path / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(path)
        sock.settimeout(5)
        yield path, sock


def test_notify_sends_one_datagram(notify_socket: tuple[str, socket.socket]) -> None:
    path, sock = notify_socket
    notifier = Notifier({"NOTIFY_SOCKET": path})

    assert notifier.ready("running: 4 systems") is True

    assert sock.recv(4096) == b"READY=1\nSTATUS=running: 4 systems"


def test_notify_is_a_no_op_outside_systemd() -> None:
    notifier = Notifier({})

    assert notifier.enabled is False
    assert notifier.notify("READY=1") is False
    assert notifier.watchdog_interval_s is None


def test_watchdog_interval_is_half_of_watchdog_usec() -> None:
    assert Notifier({"WATCHDOG_USEC": "30000000"}).watchdog_interval_s == 15.0
    other_pid = {"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid() + 1)}
    assert Notifier(other_pid).watchdog_interval_s is None


def test_relative_notify_socket_is_rejected() -> None:
    with pytest.raises(OSError, match="unsupported NOTIFY_SOCKET"):
        Notifier({"NOTIFY_SOCKET": "relative/path"})


class Idle(Actor[Any]):
    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        async for _ in self.messages():
            pass


async def test_serve_notifies_ready_watchdog_and_stopping(
    tmp_path: Path, notify_socket: tuple[str, socket.socket]
) -> None:
    path, sock = notify_socket
    sock.setblocking(False)
    config_file = tmp_path / "pssync.toml"
    config_file.write_text(
        GOVERNANCE
        + '[journal]\npath = "journal.sqlite3"\n[control]\nsocket_path = "control.sock"\n'
    )
    config = load_config(config_file, environ={})
    # WatchdogSec=20ms: fed every 10 ms of real time while the one actor is alive.
    notifier = Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "20000"})

    def children(config: Any, journal: Any, secrets: Any) -> list[ChildSpec]:
        return [ChildSpec(name="idle", factory=lambda: Idle("idle"))]

    async def receive() -> bytes:
        return await trio.socket.from_stdlib_socket(sock).recv(4096)

    results: list[int] = []

    async def run(task_status: trio.TaskStatus[Any]) -> None:
        results.append(await serve(config, {}, children, notifier, task_status=task_status))

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await nursery.start(run)
            assert await receive() == b"READY=1\nSTATUS=running: 0 systems"
            assert await receive() == b"WATCHDOG=1"
            assert await receive() == b"WATCHDOG=1"
            os.kill(os.getpid(), signal.SIGTERM)
            message = await receive()
            while message == b"WATCHDOG=1":
                message = await receive()
            assert message == b"STOPPING=1\nSTATUS=draining after SIGTERM"

    assert results == [EXIT_OK]


class Wedged(Actor[Any]):
    """Heartbeats once when it starts, then never again: it looks alive, then wedged."""

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        self.heartbeat()
        task_status.started()
        await trio.sleep_forever()


async def test_a_wedged_actor_stops_the_watchdog_pings(
    tmp_path: Path, notify_socket: tuple[str, socket.socket]
) -> None:
    path, sock = notify_socket
    sock.setblocking(False)
    config_file = tmp_path / "pssync.toml"
    config_file.write_text(
        GOVERNANCE
        + '[journal]\npath = "journal.sqlite3"\n[control]\nsocket_path = "control.sock"\n'
        + "[metrics]\nenabled = false\n"
    )
    config = load_config(config_file, environ={})
    notifier = Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "20000"})

    def children(config: Any, journal: Any, secrets: Any) -> list[ChildSpec]:
        # Wedged after 0.2 s without a heartbeat; the supervisor leaves it to the watchdog.
        return [
            ChildSpec(
                name="erp",
                factory=lambda: Wedged("erp", heartbeat_interval_s=0.1, heartbeat_timeout_s=0.2),
                shutdown_timeout_s=0.1,
            )
        ]

    async def receive() -> bytes:
        return await trio.socket.from_stdlib_socket(sock).recv(4096)

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await nursery.start(
                lambda task_status: serve(config, {}, children, notifier, task_status=task_status)
            )
            assert (await receive()).startswith(b"READY=1")
            assert await receive() == b"WATCHDOG=1"  # alive: fed
            message = await receive()
            while message == b"WATCHDOG=1":
                message = await receive()
            assert message == b"STATUS=unhealthy: root/erp"
            # From now on only the unhealthy status, never a ping, while it stays wedged.
            for _ in range(5):
                assert await receive() == b"STATUS=unhealthy: root/erp"
            nursery.cancel_scope.cancel()


@pytest.mark.slow
def test_pssync_run_process_notifies_ready_watchdog_and_stopping(
    tmp_path: Path, notify_socket: tuple[str, socket.socket]
) -> None:
    path, sock = notify_socket
    config_file = tmp_path / "pssync.toml"
    config_file.write_text(
        GOVERNANCE
        + '[journal]\npath = "journal.sqlite3"\n[control]\nsocket_path = "control.sock"\n'
        + "[metrics]\nenabled = false\n"
    )
    env = {**os.environ, "NOTIFY_SOCKET": path, "WATCHDOG_USEC": "200000"}
    process = subprocess.Popen(
        [sys.executable, "-m", "daemon", "run", "--config", str(config_file)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        assert sock.recv(4096).startswith(b"READY=1\nSTATUS=")
        assert sock.recv(4096) == b"WATCHDOG=1"
        assert sock.recv(4096) == b"WATCHDOG=1"
        process.send_signal(signal.SIGTERM)
        message = sock.recv(4096)
        while message == b"WATCHDOG=1":
            message = sock.recv(4096)
        assert message.startswith(b"STOPPING=1")
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
