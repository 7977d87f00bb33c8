"""``pssync journal stats|verify|backup``: offline journal maintenance.

These open the SQLite file read-only themselves, so they work with the daemon stopped. (The
same operations through a running daemon's control socket come with the control server.)
"""

from __future__ import annotations

import argparse
from typing import Any

import trio

from actors.errors import ConfigError, StoreError
from store import backup_journal, journal_stats, verify_journal

from ..config_load import load_config
from ..render import emit, key_values, table, to_json
from .common import ExitCode, add_json_flag, error, report_config_error


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("journal", help="journal maintenance (offline)")
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
    backup.add_argument("destination", metavar="DEST", help="file to create; must not exist")
    backup.set_defaults(handler=backup_command)


def _add_source(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--journal", metavar="PATH", help="the journal file")
    source.add_argument("--config", metavar="FILE", help="take the journal path from FILE")
    add_json_flag(parser)


def journal_path(args: argparse.Namespace) -> str:
    """The journal file named by ``--journal`` or by the ``--config`` file."""
    if args.journal:
        return str(args.journal)
    return load_config(args.config).journal.path


def _run(args: argparse.Namespace, operation: Any) -> int:
    try:
        path = journal_path(args)
        return trio.run(operation, args, path)  # type: ignore[no-any-return]
    except ConfigError as exc:
        return report_config_error(exc)
    except StoreError as exc:
        error(str(exc))
        return ExitCode.FAILED


def stats_command(args: argparse.Namespace) -> int:
    return _run(args, _stats)


def verify_command(args: argparse.Namespace) -> int:
    return _run(args, _verify)


def backup_command(args: argparse.Namespace) -> int:
    return _run(args, _backup)


async def _stats(args: argparse.Namespace, path: str) -> int:
    stats = await journal_stats(path)
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


async def _verify(args: argparse.Namespace, path: str) -> int:
    report = await verify_journal(path)
    if args.json:
        emit(to_json({"ok": report.ok, "report": report}))
    else:
        emit(f"{'OK' if report.ok else 'FAILED'} {report.path}")
        emit(key_values([("integrity", "; ".join(report.integrity)), ("checks", report.checks)]))
        if report.problems:
            emit("")
            emit(table(((p.check, p.detail) for p in report.problems), ("check", "problem")))
    return ExitCode.OK if report.ok else ExitCode.FAILED


async def _backup(args: argparse.Namespace, path: str) -> int:
    report = await backup_journal(path, args.destination)
    if args.json:
        emit(to_json(report))
    else:
        emit(
            f"backed up {report.source} to {report.destination} "
            f"({report.bytes:,} bytes, {report.pages:,} pages)"
        )
    return ExitCode.OK
