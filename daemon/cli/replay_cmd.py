"""``pssync replay``: re-run a workflow over part of its history.

Online (the default) the running daemon creates the replay runs and wakes the workflow
(the ``replay`` operation of the control socket). Offline, with ``--journal PATH``, this
command creates them in the journal file itself and the daemon executes them on its next
start (or within its runner's fallback poll, if it is running)::

    pssync replay --journal /var/lib/pssync/journal.sqlite3 --workflow deal_to_project \\
        --key account:001… --dry-run

Exactly one selection: ``--from-seq N [--to-seq M]``, ``--since TIME`` (epoch seconds or
ISO 8601; compared with the time pssync recorded each event) or ``--key K``.
``--dry-run`` lists what would re-run and writes nothing.
"""

from __future__ import annotations

import argparse
import os
from datetime import UTC, datetime
from typing import Any

import trio

from actors.errors import ConfigError, StoreError
from store import open_journal

from ..config_load import load_config
from ..render import emit, key_values, to_json
from .common import ExitCode, error, report_config_error

__all__ = ["offline_replay", "parse_time"]


def parse_time(text: str) -> float:
    """Epoch seconds from ``1767225600``, ``2026-01-01`` or ``2026-01-01T09:30:00Z``
    (UTC when no offset is given)."""
    try:
        return float(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is neither epoch seconds nor an ISO 8601 time"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def offline_replay(args: argparse.Namespace) -> int:
    """Create (or with ``--dry-run`` plan) replay runs in the journal file ``--journal``."""
    from actors.workflows import ReplaySelection, WorkflowSettings
    from actors.workflows.catalog import SPECS

    spec = SPECS.get(args.workflow)
    if spec is None:
        error(f"no workflow named {args.workflow!r}; known: {', '.join(sorted(SPECS))}")
        return ExitCode.USAGE
    if args.until is not None:
        error("--until is not supported: select with --since, --from-seq/--to-seq or --key")
        return ExitCode.USAGE
    try:
        selection = ReplaySelection(
            from_seq=args.from_seq, to_seq=args.to_seq, since=args.since, key=args.key
        )
    except ValueError as exc:
        error(f"{exc} (--from-seq [--to-seq], --since or --key)")
        return ExitCode.USAGE
    if not os.path.exists(args.journal):
        error(f"no journal at {args.journal}")
        return ExitCode.USAGE
    max_batch = WorkflowSettings().max_batch
    if getattr(args, "config", None):
        try:
            table = load_config(args.config).workflows.get(args.workflow)
        except ConfigError as exc:
            return report_config_error(exc)
        if table is not None:
            max_batch = table.max_batch
    try:
        result = trio.run(_replay, args.journal, spec, selection, max_batch, args.dry_run)
    except StoreError as exc:
        error(str(exc))
        return ExitCode.FAILED
    if args.json:
        emit(to_json(result))
    else:
        emit(render(result))
    return ExitCode.OK


async def _replay(
    path: str, spec: Any, selection: Any, max_batch: int, dry_run: bool
) -> dict[str, Any]:
    from actors.workflows import plan_replay, replay
    from daemon.pipeline import replay_summary

    async with open_journal(path) as journal:
        if dry_run:
            result = await plan_replay(journal, spec, selection, max_batch=max_batch)
        else:
            result = await replay(journal, spec, selection, now=_now(), max_batch=max_batch)
    return replay_summary(result, dry_run=dry_run)


def _now() -> float:
    return datetime.now(UTC).timestamp()


def render(result: dict[str, Any]) -> str:
    """The summary for people: what was (or would be) created, and when it runs."""
    runs = result["runs"]
    if result["dry_run"]:
        head = f"dry run: would create {runs} replay run(s) of {result['workflow']}"
    elif runs:
        head = (
            f"created {runs} replay run(s) of {result['workflow']}; the daemon executes "
            "them on its next start"
        )
    else:
        head = f"nothing to replay for {result['workflow']}"
    keys = result["keys"]
    shown = ", ".join(keys[:10]) + (f" … (+{len(keys) - 10})" if len(keys) > 10 else "")
    return "\n".join(
        [
            head,
            key_values(
                [
                    ("events", result["events"]),
                    ("runs", runs),
                    ("run ids", ", ".join(map(str, result["run_ids"])) or "-"),
                    ("keys", shown or "-"),
                    ("dispatched up to seq", result["up_to_seq"]),
                ]
            ),
        ]
    )
