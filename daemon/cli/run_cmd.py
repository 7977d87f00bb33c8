"""``pssync run --config FILE``: the service (what systemd's ExecStart= runs)."""

from __future__ import annotations

import argparse
from typing import Any

from actors.errors import ConfigError

from ..config_load import load_config
from .common import report_config_error


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "run",
        help="run the daemon (systemd ExecStart=)",
        description="Run the daemon in the foreground until SIGTERM or SIGINT, which drain "
        "it (exit 0). Exit 2: bad configuration; exit 1: the daemon failed.",
    )
    parser.add_argument("--config", metavar="FILE", required=True, help="the TOML configuration")
    parser.set_defaults(handler=run_command)


def run_command(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        return report_config_error(exc)
    # Imported here: the runtime and the journal are not needed by the other commands, and
    # `pssync config check` should work (and start fast) without them.
    from ..service import run_service

    return run_service(config, config_file=args.config)
