"""``pssync``: argument parsing and dispatch to the command modules.

A command group is a module with ``register(subparsers)`` that adds its parsers and sets
``handler`` (``Namespace -> exit status``) on each; adding one is a line in ``COMMANDS``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from importlib import metadata

from actors.errors import ConfigError, PssyncError

from . import (
    bench_cmd,
    config_cmd,
    daemon_cmd,
    demo_cmd,
    exceptions_cmd,
    journal_cmd,
    run_cmd,
    runs_cmd,
    sandbox_cmd,
)
from .common import ExitCode, error, report_config_error

COMMANDS = (
    demo_cmd,
    run_cmd,
    config_cmd,
    daemon_cmd,
    runs_cmd,
    exceptions_cmd,
    journal_cmd,
    bench_cmd,
    sandbox_cmd,
)


def version() -> str:
    try:
        return metadata.version("pssync")
    except metadata.PackageNotFoundError:
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pssync",
        description="Keep a professional-services firm's CRM, PSA, ERP and billing in step.",
        epilog="Exit status: 0 ok, 1 the operation failed (or its object was not found), "
        "2 usage or configuration error, 3 the daemon is not running (no control socket), "
        "4 permission denied.",
    )
    parser.add_argument("--version", action="version", version=f"pssync {version()}")
    # Also accepted after the command; these say which daemon the online commands talk to.
    parser.add_argument(
        "--socket", metavar="PATH", default=argparse.SUPPRESS, help="the control socket"
    )
    parser.add_argument(
        "--config",
        metavar="FILE",
        default=argparse.SUPPRESS,
        help="find the control socket in this configuration",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMANDS:
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """The console script: parse ``argv`` (default ``sys.argv[1:]``), run, return the status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help, --version (0) and usage errors (2)
        return exit_.code if isinstance(exit_.code, int) else ExitCode.USAGE
    try:
        return int(args.handler(args))
    except ConfigError as exc:
        return report_config_error(exc)
    except PssyncError as exc:
        error(str(exc))
        return ExitCode.FAILED
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `pssync … | head`: the reader left; nothing more to say.
        sys.stderr.close()
        return ExitCode.FAILED
    except OSError as exc:  # a missing directory, a full disk: the environment, not a bug
        error(f"{exc.filename}: {exc.strerror}" if exc.filename else str(exc))
        return ExitCode.FAILED


if __name__ == "__main__":
    sys.exit(main())
