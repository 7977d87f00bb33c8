"""``pssync journal stats|verify|backup``: journal maintenance, online or offline.

- ``--journal PATH``: offline; the SQLite file is opened read-only here, so it works with
  the daemon stopped;
- ``--socket PATH``: online, through the running daemon's control socket (a backup is
  then written by the daemon; DEST may be left out for ``[journal] backup_dir``);
- ``--config FILE``: online if a daemon answers on that configuration's socket, else
  offline on that configuration's journal file.

The output is the same either way.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

import msgspec
import trio

from actors.errors import ConfigError, ControlError, StoreError
from store import (
    BackupReport,
    JournalStats,
    VerifyReport,
    backup_journal,
    journal_stats,
    verify_journal,
)

from ..config_load import load_config
from ..render import emit, key_values, table, to_json
from . import online
from .common import ExitCode, add_json_flag, error, report_config_error


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("journal", help="journal maintenance (online or offline)")
    commands = parser.add_subparsers(dest="journal_command", metavar="COMMAND", required=True)

    stats = commands.add_parser("stats", help="counts and sizes")
    _add_source(stats)
    stats.set_defaults(handler=stats_command)

    verify = commands.add_parser(
        "verify", help="SQLite integrity check and journal invariants (exit 1 on a problem)"
    )
    _add_source(verify)
    verify.set_defaults(handler=verify_command)

    backup = commands.add_parser("backup", help="online backup to DEST (SQLite backup API)")
    _add_source(backup)
    backup.add_argument(
        "destination",
        metavar="DEST",
        nargs="?",
        help="file to create; must not exist (online: default in [journal] backup_dir)",
    )
    backup.set_defaults(handler=backup_command)


def _add_source(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--journal", metavar="PATH", help="the journal file (offline)")
    source.add_argument(
        "--config",
        metavar="FILE",
        default=argparse.SUPPRESS,
        help="the daemon of FILE if it runs, else FILE's journal file",
    )
    source.add_argument(
        "--socket",
        metavar="PATH",
        default=argparse.SUPPRESS,
        help="the running daemon's control socket (online)",
    )
    parser.add_argument(
        "--timeout",
        metavar="SECONDS",
        type=float,
        default=600.0,
        help="online: how long to wait for the daemon (default 600)",
    )
    add_json_flag(parser)


def journal_path(args: argparse.Namespace) -> str:
    """The journal file named by ``--journal`` or by the ``--config`` file."""
    if args.journal:
        return str(args.journal)
    return load_config(args.config).journal.path


def _run(args: argparse.Namespace, offline: Any, op: str, result_type: type, render: Any) -> int:
    """Online through the daemon, or ``offline(args, path)``; then ``render(args, result)``."""
    journal, config = getattr(args, "journal", None), getattr(args, "config", None)
    if not journal and not config and not getattr(args, "socket", None):
        error(
            "one of the arguments --journal --config is required (or --socket for a running daemon)"
        )
        return ExitCode.USAGE
    try:
        if not journal:
            try:
                result = _online(args, op, result_type)
            except ControlError as exc:
                if not (config and exc.code == "not_running"):
                    return online.report(args, exc)
            else:
                return render(args, result)  # type: ignore[no-any-return]
        if op == "journal.backup" and not args.destination:
            error("DEST is required when the daemon is not running")
            return ExitCode.USAGE
        path = journal_path(args)
        return render(args, trio.run(offline, args, path))  # type: ignore[no-any-return]
    except ConfigError as exc:
        return report_config_error(exc)
    except StoreError as exc:
        error(str(exc))
        return ExitCode.FAILED


def _online(args: argparse.Namespace, op: str, result_type: type) -> Any:
    arguments: dict[str, Any] = {}
    if op == "journal.backup" and args.destination:
        # The daemon resolves paths from its own working directory, not ours.
        arguments["destination"] = os.path.abspath(args.destination)
    raw = online.call(args, op, **arguments)
    return msgspec.convert(raw, result_type)


def stats_command(args: argparse.Namespace) -> int:
    return _run(args, _stats, "journal.stats", JournalStats, _render_stats)


def verify_command(args: argparse.Namespace) -> int:
    return _run(args, _verify, "journal.verify", VerifyReport, _render_verify)


def backup_command(args: argparse.Namespace) -> int:
    return _run(args, _backup, "journal.backup", BackupReport, _render_backup)


async def _stats(args: argparse.Namespace, path: str) -> JournalStats:
    return await journal_stats(path)


async def _verify(args: argparse.Namespace, path: str) -> VerifyReport:
    return await verify_journal(path)


async def _backup(args: argparse.Namespace, path: str) -> BackupReport:
    return await backup_journal(path, args.destination)


def _render_stats(args: argparse.Namespace, stats: JournalStats) -> int:
    if args.json:
        emit(to_json(stats))
        return ExitCode.OK
    emit(
        key_values(
            [
                ("journal", stats.path),
                ("schema version", stats.schema_version),
                ("file bytes", stats.file_bytes),
                ("wal bytes", stats.wal_bytes),
                ("pages", f"{stats.page_count:,} x {stats.page_size:,} B"),
                ("free pages", stats.freelist_count),
                ("last seq", stats.max_seq),
            ]
        )
    )
    emit("")
    emit(table(sorted(stats.tables.items()), ("table", "rows")))
    for title, counts in (
        ("event type", stats.events_by_type),
        ("run status", stats.runs_by_status),
        ("exception status", stats.exceptions_by_status),
    ):
        if counts:
            emit("")
            emit(table(sorted(counts.items()), (title, "count")))
    return ExitCode.OK


def _render_verify(args: argparse.Namespace, report: VerifyReport) -> int:
    if args.json:
        emit(to_json({"ok": report.ok, "report": report}))
    else:
        emit(f"{'OK' if report.ok else 'FAILED'} {report.path}")
        emit(key_values([("integrity", "; ".join(report.integrity)), ("checks", report.checks)]))
        if report.problems:
            emit("")
            emit(table(((p.check, p.detail) for p in report.problems), ("check", "problem")))
    return ExitCode.OK if report.ok else ExitCode.FAILED


def _render_backup(args: argparse.Namespace, report: BackupReport) -> int:
    if args.json:
        emit(to_json(report))
    else:
        emit(
            f"backed up {report.source} to {report.destination} "
            f"({report.bytes:,} bytes, {report.pages:,} pages)"
        )
    return ExitCode.OK
