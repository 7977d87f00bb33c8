"""A real daemon (``serve()``) in the test's trio run, with its control socket in tmp_path.

Socket tests run on real time with ``fail_after`` bounds, not on the autojump clock: with
real I/O in flight a MockClock can jump past deadlines falsely. CLI commands are blocking
code, so they run on a worker thread (``cli()``) while the daemon answers on this one.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import structlog
import trio

from actors import ChildSpec, Supervisor
from daemon.cli import main
from daemon.config import Config
from daemon.config_load import load_config
from daemon.control import ControlRegistry, CredentialPolicy
from daemon.control.lines import LineReader
from daemon.service import serve
from store import Journal

from ..conftest import GOVERNANCE

BASE = (
    GOVERNANCE
    + """
[journal]
path = "state/journal.sqlite3"
backup_dir = "backups"

[control]
socket_path = "run/control.sock"

[metrics]
enabled = false

[mappings]
# The ERP below is wired for real by `pssync run`: its adapter needs the field mappings.
directory = """
    + json.dumps(str(Path(__file__).resolve().parents[3] / "config" / "mappings"))
    + """

[systems.erp]
kind = "erp"
vendor = "netsuite"
base_url = "https://1234567.suitetalk.api.netsuite.com"
account_id = "1234567"

[systems.erp.auth]
method = "tba"
consumer_key = "env:NS_CK"
consumer_secret = "env:NS_CS"
token_id = "env:NS_TI"
token_secret = "env:NS_TS"
"""
)

ENVIRON = {"NS_CK": "ck", "NS_CS": "cs", "NS_TI": "ti", "NS_TS": "ts"}

# Every wait on the daemon is bounded; real time, generous for a loaded CI machine.
TIMEOUT_S = 20


@dataclass
class FakeSystem:
    """A Pausable system actor as actors/systems will register one."""

    name: str
    paused: bool = False
    calls: list[str] = field(default_factory=list)
    fail_with: Exception | None = None

    async def pause(self) -> None:
        self.calls.append("pause")
        if self.fail_with is not None:
            raise self.fail_with
        self.paused = True

    async def resume(self) -> None:
        self.calls.append("resume")
        self.paused = False

    def snapshot(self) -> dict[str, Any]:
        return {"state": "paused" if self.paused else "polling", "paused": self.paused}


@dataclass
class Daemon:
    """A running daemon and what tests reach into."""

    tmp_path: Path
    config_file: Path
    config: Config
    registry: ControlRegistry
    root: Supervisor
    journal: Journal
    results: list[int]
    finished: trio.Event

    @property
    def socket(self) -> str:
        return self.config.control.socket_path

    async def cli(self, *argv: str) -> int:
        """``pssync ARGV --socket …`` on a thread; its exit status."""
        return await trio.to_thread.run_sync(main, [*argv, "--socket", self.socket])

    async def connect(self) -> Connection:
        return Connection(await trio.open_unix_socket(self.socket))


class Connection:
    """A raw protocol client: send lines, read JSON answers."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.lines = LineReader(stream, max_line_bytes=1 << 24)

    async def send(self, data: bytes) -> None:
        await self.stream.send_all(data)

    async def answer(self) -> dict[str, Any] | None:
        with trio.fail_after(TIMEOUT_S):
            line = await self.lines.next_line()
        return None if line is None else json.loads(line)

    async def ask(self, request: Mapping[str, Any]) -> dict[str, Any]:
        await self.send(json.dumps(request).encode() + b"\n")
        answer = await self.answer()
        assert answer is not None, "the daemon closed the connection"
        return answer

    async def aclose(self) -> None:
        await self.stream.aclose()


StartDaemon = Callable[..., Any]


@pytest.fixture
async def start_daemon(tmp_path: Path, nursery: trio.Nursery) -> AsyncIterator[Callable[..., Any]]:
    """``await start_daemon(extra_toml="", policy=None, registry=None)`` → a running Daemon.

    Daemons still running at the end of the test are cancelled.
    """
    scopes: list[trio.CancelScope] = []
    # The daemon's log lines would land in the captured stdout the CLI tests read; tests
    # that look at logs use structlog.testing.capture_logs(). (conftest resets this.)
    structlog.configure(logger_factory=structlog.ReturnLoggerFactory())

    async def start(
        extra_toml: str = "",
        *,
        policy: CredentialPolicy | None = None,
        registry: ControlRegistry | None = None,
        children: Sequence[ChildSpec] = (),
    ) -> Daemon:
        config_file = tmp_path / "pssync.toml"
        config_file.write_text(BASE + extra_toml)
        config = load_config(config_file, environ=ENVIRON)
        registry = registry if registry is not None else ControlRegistry()
        journals: list[Journal] = []
        results: list[int] = []
        finished = trio.Event()

        def factory(config: Any, journal: Journal, secrets: Any) -> Sequence[ChildSpec]:
            journals.append(journal)
            return children

        async def run(task_status: trio.TaskStatus[Supervisor]) -> None:
            with trio.CancelScope() as scope:
                scopes.append(scope)
                try:
                    status = await serve(
                        config,
                        {},
                        factory,
                        config_file=str(config_file),
                        environ=ENVIRON,
                        registry=registry,
                        policy=policy,
                        task_status=task_status,
                    )
                    results.append(status)
                finally:
                    finished.set()

        root = await nursery.start(run)
        return Daemon(
            tmp_path=tmp_path,
            config_file=config_file,
            config=config,
            registry=registry,
            root=root,
            journal=journals[0],
            results=results,
            finished=finished,
        )

    yield start
    for scope in scopes:
        scope.cancel()


def unprivileged() -> CredentialPolicy:
    """A policy under which this test process is "uid 1234, not in the operator group"."""
    return CredentialPolicy(
        uids=frozenset({1234}), gids=frozenset({4321}), groups_of=lambda uid, gid: {5678}
    )
