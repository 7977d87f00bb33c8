"""The running daemon of :func:`daemon.service.serve` with the real pipeline, in process,
against the sandbox's four vendors (the ``daemon`` fixture).

``serve()`` runs the daemon exactly as ``pssync run --config config/pssync.sandbox.toml``
would — from a copy of that file and of ``config/mappings`` in the test's directory, so
tests may edit and reload them — except that each system's HTTP transport is
``httpx.ASGITransport`` on the in-process sandbox. The sandbox's wall time is the real
one (so request signing and Stripe's search window agree with the daemon's
``time.time``), its monotonic time is trio's, and trio's clock is the autojump clock:
poll intervals pass in milliseconds.

Waiting is event-driven: every request that reaches a vendor touches :class:`Changes`,
and the tests re-check their condition on each (pollers keep polling, so a condition
that became true without a request is seen at the next poll).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from trio.testing import MockClock

from actors import Supervisor
from adapters.sandbox import Sandbox, SandboxClock, SandboxConfig, Scenario, build_sandbox
from daemon.config import Config
from daemon.config_load import load_config
from daemon.control import ControlRegistry
from daemon.secrets import SecretResolver, resolve_all
from daemon.service import EXIT_OK, serve
from store import Journal, open_journal

REPO = Path(__file__).resolve().parents[3]
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
    config_file: Path
    """The daemon's configuration file; its mappings are in ``mappings/`` beside it."""

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

    async def reload(self) -> dict[str, Any]:
        """``pssync reload`` over the control socket: the daemon's answer, as JSON."""
        return await self.ask("reload")

    async def ask(self, op: str) -> dict[str, Any]:
        """One request over the control socket: the daemon's answer, as JSON."""
        stream = await trio.open_unix_socket(self.config.control.socket_path)
        async with stream:
            await stream.send_all(json.dumps({"id": 1, "op": op}).encode() + b"\n")
            received = b""
            while not received.endswith(b"\n"):
                chunk = await stream.receive_some()
                assert chunk, "the daemon closed the connection"
                received += chunk
        return json.loads(received)


@pytest.fixture
async def daemon(tmp_path: Path, autojump_clock: MockClock) -> AsyncIterator[Daemon]:
    clock = SandboxClock(monotonic_source=trio.current_time)  # real wall time
    sandbox = build_sandbox(SandboxConfig(seed_data=True), clock=clock)
    config_file = write_config(tmp_path)
    environ = environ_for(sandbox)
    config = load_config(config_file, environ=environ)
    secrets = resolve_all(config, SecretResolver(environ))
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
                config,
                secrets,
                registry=registry,
                transports=transports,
                config_file=str(config_file),
                environ=environ,
                task_status=task_status,
            )
        )

    async with trio.open_nursery() as nursery:
        root = await nursery.start(run)
        async with open_journal(config.journal.path, synchronous="NORMAL") as journal:
            yield Daemon(
                config, sandbox, registry, root, journal, changes, Scenario(sandbox), config_file
            )
        root.request_stop()
    assert statuses == [EXIT_OK]


def write_config(directory: Path) -> Path:
    """config/pssync.sandbox.toml with its state in ``directory``, metrics off, and a copy
    of config/mappings beside it (tests edit both and reload)."""
    text = SANDBOX_CONFIG.read_text()
    for old, new in (
        ('"../state/', '"state/'),
        ('listen = "127.0.0.1:9464"', 'enabled = false\nlisten = "127.0.0.1:9464"'),
    ):
        assert old in text, old
        text = text.replace(old, new)
    shutil.copytree(REPO / "config" / "mappings", directory / "mappings")
    (directory / "state").mkdir()
    config_file = directory / "pssync.toml"
    config_file.write_text(text)
    return config_file
