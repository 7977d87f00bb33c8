"""``pssync demo``: the simulated vendors, the daemon and a scenario, with a summary."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .common import ExitCode


def _weeks(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of weeks, got {text!r}") from None
    if not 1 <= value <= 12:
        raise argparse.ArgumentTypeError(f"expected 1 to 12 weeks, got {value}")
    return value


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run the daemon against the sandbox through a month of business (start here)",
        description="Start the simulated Salesforce, Kantata, NetSuite and Stripe on loopback "
        "and the daemon with a built-in configuration and a fresh state directory; play "
        "business weeks (won deals, some malformed; time from 100 consultants; a month-end "
        "spike; milestones; late and missing payments) with live progress; then reconcile "
        "the month and print a summary checked against the sandbox's own counts. The "
        "journal is left behind. Exit 0: consistent; 1: a difference, a duplicate or a part "
        "that did not run; 130: interrupted.",
    )
    parser.add_argument(
        "--weeks", type=_weeks, default=5, metavar="N", help="business weeks to play (default 5)"
    )
    parser.add_argument(
        "--fast",
        action="store_true",
        help="a quicker, smaller run: fewer deals, a smaller month-end spike, shorter waits",
    )
    parser.add_argument(
        "--state-dir",
        metavar="DIR",
        type=Path,
        help="where the journal, the configuration and the daemon log go "
        "(default: a new ./pssync-demo-<timestamp>/)",
    )
    parser.add_argument("--seed", type=int, default=0, help="the scenario's seed (default 0)")
    parser.add_argument(
        "--keep-running",
        action="store_true",
        help="after the summary, keep the daemon and the sandbox up (for pssync status, "
        "replay, exceptions …) until Ctrl-C",
    )
    parser.set_defaults(handler=demo_command)


def demo_command(args: argparse.Namespace) -> int:
    # Imported here: the sandbox and the runtime are not needed by the other commands.
    from ..demo import DemoOptions, run_demo

    options = DemoOptions(
        weeks=args.weeks,
        fast=args.fast,
        state_dir=args.state_dir,
        seed=args.seed,
        keep_running=args.keep_running,
    )
    status = run_demo(options)
    return status if status in (0, 1, 130) else ExitCode.FAILED
