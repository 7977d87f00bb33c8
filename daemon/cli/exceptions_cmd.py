"""``pssync exceptions list|show|retry|resolve|assign``: the exception queue, through the
running daemon (changes are made by the daemon and logged with your uid and pid)."""

from __future__ import annotations

import argparse
from typing import Any

from ..render import key_values, table
from . import online
from .runs_cmd import when


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "exceptions", help="the exception queue (through the running daemon)"
    )
    commands = parser.add_subparsers(dest="exceptions_command", metavar="COMMAND", required=True)

    listing = commands.add_parser("list", help="exceptions, oldest first (open by default)")
    listing.add_argument("--status", choices=("open", "resolved", "retry", "all"), default="open")
    listing.add_argument("--workflow")
    listing.add_argument("--category", help="contract, project, time, billing, master_data, …")
    listing.add_argument("--owner")
    listing.add_argument(
        "--older-than",
        metavar="AGE",
        type=online.age,
        help="only those opened at least AGE ago (90s, 30m, 12h, 3d, 2w)",
    )
    listing.add_argument("--limit", type=int, default=100, help="at most this many (100)")
    online.add_connection_options(listing)
    listing.set_defaults(handler=list_command)

    show = commands.add_parser("show", help="one exception in full")
    show.add_argument("exception_id", metavar="ID", type=int)
    online.add_connection_options(show)
    show.set_defaults(handler=show_command)

    retry = commands.add_parser("retry", help="close it and retry the run it parked")
    retry.add_argument("exception_id", metavar="ID", type=int)
    retry.add_argument("--note", default="", help="why it can be retried now")
    online.add_connection_options(retry)
    retry.set_defaults(handler=retry_command)

    resolve = commands.add_parser(
        "resolve", help="close it as handled by hand (the parked run is cancelled)"
    )
    resolve.add_argument("exception_id", metavar="ID", type=int)
    resolve.add_argument("--resolution", required=True, help="what was done")
    online.add_connection_options(resolve)
    resolve.set_defaults(handler=resolve_command)

    assign = commands.add_parser("assign", help="hand it to another owner")
    assign.add_argument("exception_id", metavar="ID", type=int)
    assign.add_argument("owner", metavar="OWNER")
    online.add_connection_options(assign)
    assign.set_defaults(handler=assign_command)


def list_command(args: argparse.Namespace) -> int:
    return online.run(
        args,
        "exceptions.list",
        render_list,
        status=args.status,
        workflow=args.workflow,
        category=args.category,
        owner=args.owner,
        older_than_s=args.older_than,
        limit=args.limit,
    )


def render_list(records: list[dict[str, Any]]) -> str:
    if not records:
        return "no exceptions"
    return table(
        (
            (
                e["id"],
                e["workflow"],
                e["category"],
                e["owner"],
                _money(e),
                online.duration(e["age_s"]),
                e["status"],
                e["message"],
            )
            for e in records
        ),
        ("id", "workflow", "category", "owner", "amount", "age", "status", "message"),
        align_right=("amount",),
    )


def show_command(args: argparse.Namespace) -> int:
    return online.run(args, "exceptions.show", render_one, exception_id=args.exception_id)


def retry_command(args: argparse.Namespace) -> int:
    return online.run(
        args, "exceptions.retry", render_one, exception_id=args.exception_id, note=args.note
    )


def resolve_command(args: argparse.Namespace) -> int:
    return online.run(
        args,
        "exceptions.resolve",
        render_one,
        exception_id=args.exception_id,
        resolution=args.resolution,
    )


def assign_command(args: argparse.Namespace) -> int:
    return online.run(
        args, "exceptions.assign", render_one, exception_id=args.exception_id, owner=args.owner
    )


def render_one(e: dict[str, Any]) -> str:
    return key_values(
        [
            ("exception", e["id"]),
            ("status", e["status"]),
            ("workflow", e["workflow"]),
            ("run", e["run_id"]),
            ("category", e["category"]),
            ("owner", e["owner"]),
            ("amount at risk", _money(e)),
            ("opened", f"{when(e['opened_at'])} ({online.duration(e['age_s'])} ago)"),
            ("correlation id", e["correlation_id"]),
            ("message", e["message"]),
            ("detail", e.get("detail")),
            ("closed", when(e["resolved_at"])),
            ("closed by", e["resolved_by"]),
            ("resolution", e["resolution"]),
        ]
    )


def _money(e: dict[str, Any]) -> str | None:
    return None if e["amount"] is None else f"{e['amount']} {e['currency']}"
