"""``pssync bench journal|governor``: measured scenarios, as tables or ``--json``."""

from __future__ import annotations

import argparse
from typing import Any

import trio

from ..render import emit, to_json
from .common import ExitCode, add_json_flag

# --quick: a smoke run for CI and laptops, seconds rather than a minute.
QUICK = {"concurrency": (1, 10), "seconds": 0.2, "repeats": 1}
FULL = {"concurrency": (1, 10, 100), "seconds": 1.0, "repeats": 3}


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("bench", help="measured scenarios")
    commands = parser.add_subparsers(dest="bench_command", metavar="SCENARIO", required=True)
    journal = commands.add_parser(
        "journal",
        help="journal append throughput with group commit (temporary files)",
        description="Concurrent appenders, one durable append per await, for synchronous="
        "FULL and NORMAL. Run it on the disk the journal will live on (--dir).",
    )
    journal.add_argument("--quick", action="store_true", help="a short run (smoke test, CI)")
    journal.add_argument(
        "--dir", metavar="DIR", default=None, help="where to put the temporary journals"
    )
    add_json_flag(journal)
    journal.set_defaults(handler=journal_command)

    governor = commands.add_parser(
        "governor",
        help="requests through the governor against a rate-limited sandbox (another process)",
        description="Serves a sandbox vendor enforcing RATE requests/s in a child process on "
        "loopback and sends REQUESTS through a real client whose governor is configured at "
        "the same rate. Target: achieved rate >= 95%% of RATE and no 429s.",
    )
    governor.add_argument("--rate", type=_positive_float, default=50.0, metavar="RATE")
    governor.add_argument("--requests", type=_positive_int, default=1_000, metavar="REQUESTS")
    governor.add_argument(
        "--concurrency", type=_positive_int, default=8, help="requests in flight at most"
    )
    add_json_flag(governor)
    governor.set_defaults(handler=governor_command)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected at least 1, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a number above 0, got {text}")
    return value


def journal_command(args: argparse.Namespace) -> int:
    # Imported here so the other commands do not load the benchmark code.
    from store.bench import bench_append, format_table

    settings: dict[str, Any] = dict(QUICK if args.quick else FULL)
    results = trio.run(lambda: bench_append(directory=args.dir, **settings))
    emit(to_json(results) if args.json else format_table(results))
    return ExitCode.OK


def governor_command(args: argparse.Namespace) -> int:
    from adapters.governor_bench import bench_governor, format_governor_table

    result = trio.run(
        lambda: bench_governor(
            rate_per_s=args.rate, requests=args.requests, concurrency=args.concurrency
        )
    )
    emit(to_json(result) if args.json else format_governor_table(result))
    return ExitCode.OK
