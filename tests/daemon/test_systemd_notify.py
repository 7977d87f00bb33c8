"""The sd_notify datagrams, on real SOCK_DGRAM sockets: path and abstract NOTIFY_SOCKET."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio

from actors import Actor, ChildSpec, HealthView, Supervisor
from daemon.systemd import (
    Notifier,
    extend_timeout_while_running,
    monotonic_usec,
    status_line,
)


@pytest.fixture(params=["path", "abstract"])
def notify_socket(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[str, socket.socket]]:
    """A bound datagram socket and the NOTIFY_SOCKET value that names it."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        if request.param == "path":
            address = str(tmp_path / "notify.sock")
            sock.bind(address)
        else:
            name = f"pssync-test-{os.getpid()}-{time.monotonic_ns()}"
            sock.bind("\0" + name)
            address = "@" + name
        sock.settimeout(5)
        yield address, sock


def fields(datagram: bytes) -> dict[str, str]:
    lines = datagram.decode().split("\n")
    return dict(line.split("=", 1) for line in lines)


def test_ready_and_status(notify_socket: tuple[str, socket.socket]) -> None:
    address, sock = notify_socket
    notifier = Notifier({"NOTIFY_SOCKET": address})

    assert notifier.enabled
    notifier.ready("running: 4 systems, 6 workflows")
    notifier.status("polling: crm, psa\nerp paused")

    assert sock.recv(4096) == b"READY=1\nSTATUS=running: 4 systems, 6 workflows"
    # STATUS= is one line: a newline would start a bogus assignment.
    assert sock.recv(4096) == b"STATUS=polling: crm, psa erp paused"


def test_watchdog(notify_socket: tuple[str, socket.socket]) -> None:
    address, sock = notify_socket
    Notifier({"NOTIFY_SOCKET": address}).watchdog()
    assert sock.recv(4096) == b"WATCHDOG=1"


def test_reloading_carries_monotonic_usec_in_the_same_datagram(
    notify_socket: tuple[str, socket.socket],
) -> None:
    address, sock = notify_socket
    notifier = Notifier({"NOTIFY_SOCKET": address})

    before = monotonic_usec()
    with notifier.reload_cycle("reloading /etc/pssync/pssync.toml"):
        reloading = fields(sock.recv(4096))
    after = monotonic_usec()
    ready = fields(sock.recv(4096))

    assert reloading["RELOADING"] == "1"
    assert before <= int(reloading["MONOTONIC_USEC"]) <= after
    assert reloading["STATUS"] == "reloading /etc/pssync/pssync.toml"
    assert ready == {"READY": "1", "STATUS": "running: configuration reloaded"}


def test_a_failed_reload_still_ends_with_ready(notify_socket: tuple[str, socket.socket]) -> None:
    address, sock = notify_socket
    notifier = Notifier({"NOTIFY_SOCKET": address})

    with pytest.raises(ValueError, match="bad"), notifier.reload_cycle():
        raise ValueError("bad limits")

    assert fields(sock.recv(4096))["RELOADING"] == "1"
    ready = fields(sock.recv(4096))
    assert ready["READY"] == "1"
    assert ready["STATUS"] == "reload failed, previous configuration kept: bad limits"


def test_monotonic_usec_is_clock_monotonic_in_microseconds() -> None:
    expected = time.clock_gettime(time.CLOCK_MONOTONIC) * 1_000_000
    assert abs(monotonic_usec() - expected) < 1_000_000


def test_stopping_with_extend_timeout(notify_socket: tuple[str, socket.socket]) -> None:
    address, sock = notify_socket
    notifier = Notifier({"NOTIFY_SOCKET": address})

    notifier.stopping("draining after SIGTERM", extend_timeout_s=30)
    notifier.extend_timeout(12.5)

    assert fields(sock.recv(4096)) == {
        "STOPPING": "1",
        "STATUS": "draining after SIGTERM",
        "EXTEND_TIMEOUT_USEC": "30000000",
    }
    assert sock.recv(4096) == b"EXTEND_TIMEOUT_USEC=12500000"


async def test_extend_timeout_is_resent_while_a_drain_runs(
    notify_socket: tuple[str, socket.socket], autojump_clock: trio.abc.Clock
) -> None:
    # The datagrams land in the socket's buffer at once; the mock clock only paces sends.
    address, sock = notify_socket
    notifier = Notifier({"NOTIFY_SOCKET": address})

    with trio.move_on_after(12):
        await extend_timeout_while_running(notifier, every_s=5, extend_by_s=15)

    sock.setblocking(False)
    sent = []
    while True:
        try:
            sent.append(sock.recv(4096))
        except BlockingIOError:
            break
    assert sent == [b"EXTEND_TIMEOUT_USEC=15000000"] * 3  # at 0, 5 and 10 s
    with pytest.raises(ValueError, match="shorter"):
        await extend_timeout_while_running(notifier, every_s=15, extend_by_s=15)


async def test_extend_timeout_outside_systemd_returns_at_once() -> None:
    await extend_timeout_while_running(Notifier({}))


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"WATCHDOG_USEC": "60000000"}, 30.0),
        ({"WATCHDOG_USEC": "60000000", "WATCHDOG_PID": str(os.getpid())}, 30.0),
        ({"WATCHDOG_USEC": "60000000", "WATCHDOG_PID": "1"}, None),  # meant for another pid
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "soon"}, None),
        ({}, None),
    ],
)
def test_watchdog_interval(environ: dict[str, str], expected: float | None) -> None:
    assert Notifier(environ).watchdog_interval_s == expected


def test_no_op_outside_systemd() -> None:
    notifier = Notifier({})
    assert not notifier.enabled
    assert notifier.reloading() is False
    assert notifier.extend_timeout(10) is False
    assert notifier.status("x") is False


class Idle(Actor[None]):
    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        async for _ in self.messages():
            pass


class Wedged(Actor[None]):
    """Starts, heartbeats once, then never again: the health view calls it not alive."""

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        self.heartbeat()
        task_status.started()
        await trio.sleep_forever()

    def request_stop(self) -> None:
        pass


async def test_status_line_summarises_the_tree(autojump_clock: trio.abc.Clock) -> None:
    root = Supervisor(
        "root",
        [
            ChildSpec(name="crm", factory=lambda: Idle("crm")),
            ChildSpec(name="erp", factory=lambda: Wedged("erp"), shutdown_timeout_s=0.1),
        ],
    )
    health = HealthView(root)
    async with trio.open_nursery() as nursery:
        await nursery.start(root.run)
        assert status_line(health, systems=2, workflows=1) == (
            "running: 2 systems, 1 workflows, 3 actors"
        )
        await trio.sleep(3600)  # far past any heartbeat timeout: erp is wedged
        assert status_line(health, systems=2, workflows=1) == "degraded: root/erp down"
        nursery.cancel_scope.cancel()
