"""Serve a :class:`~adapters.sandbox.sandbox.Sandbox` on loopback with hypercorn on trio.

Each vendor gets its own port, so every base URL looks like the vendor's own host::

    async with trio.open_nursery() as nursery:
        urls = await nursery.start(partial(serve_sandbox, sandbox, ports={"salesforce": 0}))
        # urls == {"salesforce": "http://127.0.0.1:54321", ...}
        ...
        nursery.cancel_scope.cancel()   # stops every server

The ``pssync sandbox`` command is meant to be one call, :func:`run_sandbox`: build the
sandbox from its config, serve it, print :func:`print_banner`, run until cancelled
(SIGINT/SIGTERM), and persist the state on the way out when a persist path is configured.
"""

from __future__ import annotations

import sys
from functools import partial
from typing import TextIO

import trio
from hypercorn.config import Config
from hypercorn.trio import serve

from .sandbox import Sandbox, SandboxConfig, build_sandbox

#: Ports ``pssync sandbox`` uses unless told otherwise (0 means any free port).
DEFAULT_PORTS: dict[str, int] = {
    "salesforce": 8701,
    "kantata": 8702,
    "netsuite": 8703,
    "stripe": 8704,
}

#: Where each vendor's API lives under its base URL (for the banner).
API_PATHS: dict[str, str] = {
    "salesforce": "/services/data/v66.0/",
    "kantata": "/api/v1/",
    "netsuite": "/services/rest/record/v1/",
    "stripe": "/v1/",
}


def _hypercorn_config(host: str, port: int) -> Config:
    config = Config()
    config.bind = [f"{host}:{port}"]
    # Access logs would drown the demo; errors (an app traceback) still reach stderr.
    config.accesslog = None
    config.loglevel = "WARNING"
    config.graceful_timeout = 1.0
    return config


async def serve_sandbox(
    sandbox: Sandbox,
    *,
    host: str = "127.0.0.1",
    ports: dict[str, int] | None = None,
    task_status: trio.TaskStatus[dict[str, str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve every vendor app on ``host``; report ``{vendor: base_url}`` once all listen.

    ``ports`` maps vendor → port (0 = ephemeral); vendors absent from it get an ephemeral
    port. Runs until cancelled, then stops every server.
    """
    ports = ports or {}
    base_urls: dict[str, str] = {}
    async with trio.open_nursery() as nursery:
        for name, app in sandbox.apps.items():
            config = _hypercorn_config(host, ports.get(name, 0))
            binds: list[str] = await nursery.start(partial(serve, app, config, mode="asgi"))
            base_urls[name] = binds[0]
        task_status.started(base_urls)


def banner(base_urls: dict[str, str], sandbox: Sandbox) -> str:
    """Text naming each vendor's base URL, API root and demo credentials."""
    lines = ["pssync sandbox — simulated vendor systems", ""]
    for name, url in base_urls.items():
        lines.append(f"  {name:<11} {url}{API_PATHS.get(name, '/')}")
        vendor = sandbox.vendors.get(name)
        for key, value in (vendor.credentials if vendor else {}).items():
            lines.append(f"  {'':<11} {key}: {value}")
        lines.append(f"  {'':<11} admin: {url}/_sandbox/counts")
    if sandbox.skipped:
        lines.append("")
        lines.append(f"  not available: {', '.join(sandbox.skipped)}")
    if sandbox.persist_path is not None:
        lines.append("")
        lines.append(f"  state persisted to {sandbox.persist_path}")
    return "\n".join(lines) + "\n"


def print_banner(base_urls: dict[str, str], sandbox: Sandbox, *, file: TextIO | None = None) -> str:
    """Print :func:`banner` (to stdout by default) and return it."""
    text = banner(base_urls, sandbox)
    print(text, file=file or sys.stdout, end="")
    return text


async def run_sandbox(
    config: SandboxConfig,
    *,
    host: str = "127.0.0.1",
    ports: dict[str, int] | None = None,
    file: TextIO | None = None,
    task_status: trio.TaskStatus[dict[str, str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """``pssync sandbox``: build, serve on :data:`DEFAULT_PORTS` (or ``ports``), print the
    banner, run until cancelled, then persist (if ``config.persist_path`` is set)."""
    sandbox = build_sandbox(config)
    try:
        async with trio.open_nursery() as nursery:
            chosen = DEFAULT_PORTS if ports is None else ports
            urls = await nursery.start(partial(serve_sandbox, sandbox, host=host, ports=chosen))
            print_banner(urls, sandbox, file=file)
            task_status.started(urls)
    finally:
        sandbox.persist()
