"""``pssync bench journal [--json] [--quick]``: measured journal scenarios."""

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


def journal_command(args: argparse.Namespace) -> int:
    # Imported here so the other commands do not load the benchmark code.
    from store.bench import bench_append, format_table

    settings: dict[str, Any] = dict(QUICK if args.quick else FULL)
    results = trio.run(lambda: bench_append(directory=args.dir, **settings))
    emit(to_json(results) if args.json else format_table(results))
    return ExitCode.OK
