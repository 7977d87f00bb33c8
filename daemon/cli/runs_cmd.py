"""``pssync runs list|show``: workflow runs in the running daemon's journal."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Any

from ..render import key_values, table
from . import online


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("runs", help="workflow runs (through the running daemon)")
    commands = parser.add_subparsers(dest="runs_command", metavar="COMMAND", required=True)

    listing = commands.add_parser("list", help="runs, oldest first")
    listing.add_argument(
        "--status",
        choices=("pending", "running", "retry_wait", "waiting", "completed", "cancelled"),
    )
    listing.add_argument("--workflow")
    listing.add_argument("--key", help="the entity key (e.g. a project id)")
    listing.add_argument("--limit", type=int, default=100, help="at most this many (100)")
    online.add_connection_options(listing)
    listing.set_defaults(handler=list_command)

    show = commands.add_parser("show", help="one run with its steps and triggering events")
    show.add_argument("run_id", metavar="ID", type=int)
    online.add_connection_options(show)
    show.set_defaults(handler=show_command)


def list_command(args: argparse.Namespace) -> int:
    return online.run(
        args,
        "runs.list",
        render_runs,
        status=args.status,
        workflow=args.workflow,
        key=args.key,
        limit=args.limit,
    )


def render_runs(runs: list[dict[str, Any]]) -> str:
    if not runs:
        return "no runs"
    return table(
        (
            (
                r["id"],
                r["workflow"],
                r["key"],
                r["status"],
                r["attempts"],
                when(r["updated_at"]),
                r["last_error"],
            )
            for r in runs
        ),
        ("id", "workflow", "key", "status", "attempts", "updated", "last error"),
    )


def show_command(args: argparse.Namespace) -> int:
    return online.run(args, "runs.show", render_run, run_id=args.run_id)


def render_run(shown: dict[str, Any]) -> str:
    run = shown["run"]
    parts = [
        key_values(
            [
                ("run", run["id"]),
                ("workflow", run["workflow"]),
                ("key", run["key"]),
                ("status", run["status"]),
                ("attempts", run["attempts"]),
                ("replay", run["replay"]),
                ("correlation id", run["correlation_id"]),
                ("created", when(run["created_at"])),
                ("updated", when(run["updated_at"])),
                ("next attempt", when(run["next_attempt_at"])),
                ("lease", run["lease_owner"]),
                ("last error", run["last_error"]),
            ]
        )
    ]
    if shown["steps"]:
        parts.append(
            table(
                (
                    (s["name"], s["status"], s["recorded_at"], s["result_bytes"])
                    for s in shown["steps"]
                ),
                ("step", "status", "recorded", "result bytes"),
            )
        )
    if shown["triggers"]:
        parts.append(
            table(
                ((e["seq"], e["type"], e["key"], e["source"], e["id"]) for e in shown["triggers"]),
                ("seq", "event", "key", "source", "id"),
            )
        )
    return "\n\n".join(parts)


def when(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%SZ")
