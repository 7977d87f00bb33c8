"""What every command shares: exit codes, error output and config lookup."""

from __future__ import annotations

import argparse
import enum
import sys
from collections.abc import Callable
from typing import TextIO

from actors.errors import ConfigError

from ..errors import config_problems

# A command handler gets the parsed arguments and returns the process exit status.
Handler = Callable[[argparse.Namespace], int]


class ExitCode(enum.IntEnum):
    """Exit statuses; the LSB-style 3 and 4 are kept for control-socket commands."""

    OK = 0
    FAILED = 1  # the operation ran and failed (a corrupt journal, a backup that failed)
    USAGE = 2  # bad arguments or a bad configuration file: fix the input, then retry
    NOT_RUNNING = 3  # no daemon behind the control socket
    PERMISSION = 4  # the control socket refused this user


def error(message: str, *, file: TextIO | None = None) -> None:
    """One ``pssync: error: …`` line per line of ``message`` on stderr."""
    out = file or sys.stderr
    for line in message.splitlines() or [""]:
        print(f"pssync: error: {line}", file=out)


def report_config_error(exc: ConfigError) -> int:
    """Print every problem of a configuration error; the exit status for it."""
    for problem in config_problems(exc):
        error(str(problem))
    return ExitCode.USAGE


def add_json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--json", action="store_true", help="print JSON for scripts instead of a table"
    )
