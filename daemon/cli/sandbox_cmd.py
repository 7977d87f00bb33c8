"""``pssync sandbox [--config FILE]``: serve the simulated vendor systems on loopback.

The sandbox (adapters/sandbox) speaks Salesforce's, Kantata OX's, NetSuite's and Stripe's
wire formats, keeps state and injects faults on request. This command serves each vendor on
its own loopback port with hypercorn on trio, prints the base URLs and credentials, and
runs until Ctrl-C or SIGTERM; with ``persist_path`` set it saves its state on the way out.
"""

from __future__ import annotations

import argparse
import signal
import sys
from functools import partial
from pathlib import Path
from typing import Any

import msgspec
import trio

from actors.errors import ConfigError

from ..config_load import explain
from .common import ExitCode


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "sandbox",
        help="serve the simulated Salesforce, Kantata, NetSuite and Stripe on loopback",
        description="Serve the simulated vendor systems until Ctrl-C. The optional TOML "
        "file holds sandbox settings: vendors, seed, seed_data, persist_path, faults.<vendor>, "
        "credentials.<vendor>, options.<vendor> (see config/sandbox.example.toml).",
    )
    parser.add_argument("--config", metavar="FILE", help="sandbox settings (TOML)")
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind")
    parser.add_argument(
        "--ephemeral-ports",
        action="store_true",
        help="bind free ports instead of 8701-8704 (the banner shows them)",
    )
    parser.set_defaults(handler=sandbox_command)


def load_sandbox_config(path: str | None) -> Any:
    """The sandbox settings from ``path`` (defaults with seeded demo data when None)."""
    from adapters.sandbox.sandbox import SandboxConfig

    if path is None:
        return SandboxConfig(seed_data=True)
    source = str(path)
    try:
        raw = msgspec.toml.decode(Path(path).read_bytes())
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror or exc}", source=source) from None
    except msgspec.DecodeError as exc:
        raise ConfigError(f"TOML syntax error: {exc}", source=source) from None

    def convert(value: Any) -> Any:
        return msgspec.convert(value, SandboxConfig)

    try:
        config = convert(raw)
    except msgspec.ValidationError as exc:
        key, message = explain(exc, raw, SandboxConfig, convert)
        raise ConfigError(message, path=key, source=source) from None
    if config.persist_path and not Path(config.persist_path).is_absolute():
        # Relative to the settings file, like every path in pssync's configuration.
        resolved = Path(path).resolve().parent / config.persist_path
        config = msgspec.structs.replace(config, persist_path=str(resolved))
    return config


def sandbox_command(args: argparse.Namespace) -> int:
    from adapters.sandbox.server import run_sandbox

    config = load_sandbox_config(args.config)
    ports = None
    if args.ephemeral_ports:
        ports = dict.fromkeys(config.vendors, 0)

    async def main() -> None:
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async with trio.open_nursery() as nursery:
                await nursery.start(
                    partial(run_sandbox, config, host=args.host, ports=ports, file=sys.stdout)
                )
                print("sandbox: serving; Ctrl-C stops it", flush=True)
                async for _ in signals:
                    nursery.cancel_scope.cancel()
                    break

    trio.run(main)
    print("sandbox: stopped", flush=True)
    return ExitCode.OK
