"""A real ``pssync run``: SIGHUP reloads (telling systemd), ``pssync drain`` ends it with 0."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import trio

from .conftest import BASE, ENVIRON, TIMEOUT_S

REPO = Path(__file__).resolve().parents[3]


class Output:
    """The daemon's JSON log lines, read as they come."""

    def __init__(self, stream: trio.abc.ReceiveStream) -> None:
        self.stream = stream
        self.buffer = bytearray()

    async def until(self, event: str) -> dict:
        while True:
            while b"\n" in self.buffer:
                line, _, rest = bytes(self.buffer).partition(b"\n")
                self.buffer[:] = rest
                entry = json.loads(line)
                if entry["event"] == event:
                    return entry
            chunk = await self.stream.receive_some()
            if not chunk:
                raise AssertionError(f"the daemon's output ended before {event}")
            self.buffer.extend(chunk)


async def datagram(sock: socket.socket) -> str:
    await trio.lowlevel.wait_readable(sock)
    return sock.recv(4096).decode()


@pytest.mark.slow
async def test_sighup_reloads_and_drain_exits_0(tmp_path: Path) -> None:
    config = tmp_path / "pssync.toml"
    config.write_text(BASE)
    notify_path = str(tmp_path / "notify.sock")
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(notify_path)
    notify.setblocking(False)
    env = {**os.environ, **ENVIRON, "PYTHONUNBUFFERED": "1", "NOTIFY_SOCKET": notify_path}
    process = await trio.lowlevel.open_process(
        [sys.executable, "-m", "daemon", "run", "--config", str(config)],
        stdout=subprocess.PIPE,
        cwd=REPO,
        env=env,
    )
    assert process.stdout is not None
    output = Output(process.stdout)
    try:
        with trio.fail_after(TIMEOUT_S):
            await output.until("daemon.ready")
            assert (await datagram(notify)).startswith("READY=1\n")

            # a valid change, by SIGHUP
            config.write_text(BASE + "\n[systems.erp.limits]\nburst = 20\n")
            process.send_signal(signal.SIGHUP)
            reloaded = await output.until("daemon.reloaded")
            reloading = await datagram(notify)
            ready = await datagram(notify)

            # an invalid one, by SIGHUP: refused, the daemon carries on
            config.write_text(BASE + "\n[systems.erp.limits]\nburst = 0\n")
            process.send_signal(signal.SIGHUP)
            refused = await output.until("daemon.reload_refused")
            assert (await datagram(notify)).startswith("RELOADING=1\n")
            assert (await datagram(notify)).startswith("READY=1\n")

            # drain over the socket: the CLI returns once the daemon has gone
            drained = await trio.run_process(
                [sys.executable, "-m", "daemon", "drain", "--config", str(config)],
                cwd=REPO,
                env=env,
                capture_stdout=True,
                check=False,
            )
            await output.until("daemon.stopped")
            status = await process.wait()
    finally:
        notify.close()
        if process.returncode is None:
            process.kill()
            await process.wait()

    assert reloaded["origin"] == "SIGHUP"
    assert reloaded["changed"] == ["systems.erp.limits.burst"]
    assert reloading.startswith("RELOADING=1\nMONOTONIC_USEC=")
    assert int(reloading.split("\n")[1].removeprefix("MONOTONIC_USEC=")) > 0
    assert ready.startswith("READY=1\n")
    assert refused["origin"] == "SIGHUP"
    assert "systems.erp.limits.burst: expected an integer >= 1, got 0" in refused["problems"][0]
    assert drained.returncode == 0
    assert drained.stdout.decode().endswith("stopped\n")
    assert status == 0
    assert not (tmp_path / "run" / "control.sock").exists()
