"""Operator commands over the control socket: ``status``, ``actors``, ``pause``,
``resume``, ``drain``, ``reload``, ``limits``, ``reconcile``, ``close-period``,
``replay`` (which also works offline on a journal file: :mod:`daemon.cli.replay_cmd`).

Exit status: 0 ok, 1 the operation failed or its object was not found, 2 usage, 3 no
daemon behind the socket, 4 permission denied.
"""

from __future__ import annotations

import argparse
from typing import Any

import msgspec

from actors.errors import ControlError

from ..control.client import ControlClient
from ..render import emit, key_values, table, to_json
from . import online
from .common import ExitCode, error
from .replay_cmd import offline_replay, parse_time


def register(subparsers: Any) -> None:
    status = subparsers.add_parser(
        "status", help="the running daemon: uptime, systems, workflows, backlog, exceptions"
    )
    online.add_connection_options(status)
    status.set_defaults(handler=status_command)

    actors = subparsers.add_parser("actors", help="every actor: state, restarts, last heartbeat")
    online.add_connection_options(actors)
    actors.set_defaults(handler=actors_command)

    for verb, text in (
        ("pause", "stop a system's polling or a workflow's new runs (in-flight work finishes)"),
        ("resume", "undo pause"),
    ):
        parser = subparsers.add_parser(verb, help=text, description=text)
        parser.add_argument("name", metavar="SYSTEM|WORKFLOW")
        parser.add_argument(
            "--kind",
            choices=("system", "workflow"),
            help="needed only when a system and a workflow share the name",
        )
        online.add_connection_options(parser)
        parser.set_defaults(handler=pause_command, verb=verb)

    drain = subparsers.add_parser(
        "drain",
        help="stop polling, finish in-flight work, stop the daemon (exit 0)",
        description="Pause every system and workflow, let work in flight finish, and stop "
        "the daemon. Waits until it has stopped (up to --timeout) unless --no-wait.",
    )
    drain.add_argument("--no-wait", action="store_true", help="return once the drain has begun")
    online.add_connection_options(drain, timeout_s=120.0)
    drain.set_defaults(handler=drain_command)

    reload = subparsers.add_parser(
        "reload",
        help="re-read the configuration and mapping files (systemd ExecReload=)",
        description="Re-read and check the daemon's configuration file and its field "
        "mappings. Anything invalid refuses the reload and the running settings stay (exit "
        "1). Rate limits, mappings, poll intervals and the reconcile schedule apply at once; "
        "the answer lists what changed, what was applied and what needs a restart.",
    )
    online.add_connection_options(reload)
    reload.set_defaults(handler=reload_command)

    limits = subparsers.add_parser(
        "limits", help="each governor: rate, tokens, in-flight, quota used, pauses"
    )
    limits.add_argument("system", metavar="SYSTEM", nargs="?", help="only this system")
    online.add_connection_options(limits)
    limits.set_defaults(handler=limits_command)

    reconcile = subparsers.add_parser(
        "reconcile", help="run the reconciliation of PSA, ERP and billing totals now"
    )
    reconcile.add_argument("--key", help="one project")
    reconcile.add_argument("--period", help="one period, e.g. 2026-10")
    online.add_connection_options(reconcile, timeout_s=300.0)
    reconcile.set_defaults(handler=reconcile_command)

    close_period = subparsers.add_parser(
        "close-period",
        help="run the month-end close of T&M invoices now (finalize the month's drafts)",
        description="Request the close of one month's time-and-materials invoices now, "
        "as its schedule would: the month's draft invoices in billing are finalized. "
        "Default: the newest month past its close (workflows.tm_close.close_after_days). "
        "A month that has not ended yet is refused (exit 2).",
    )
    close_period.add_argument(
        "period", metavar="YYYY-MM", nargs="?", help="the month, e.g. 2026-10"
    )
    online.add_connection_options(close_period, timeout_s=300.0)
    close_period.set_defaults(handler=close_period_command)

    replay = subparsers.add_parser(
        "replay",
        help="re-run a workflow over a seq range, a time range or one key",
        description="Online, the running daemon creates the replay runs and runs them. "
        "Offline (--journal PATH), the runs are created in the journal file and the "
        "daemon executes them on its next start.",
    )
    replay.add_argument("workflow", metavar="WORKFLOW", nargs="?")
    replay.add_argument(
        "--workflow", dest="workflow_option", metavar="WORKFLOW", help="same as WORKFLOW"
    )
    replay.add_argument(
        "--journal", metavar="PATH", help="offline: create the runs in this journal file"
    )
    replay.add_argument("--from-seq", type=int, metavar="SEQ")
    replay.add_argument("--to-seq", type=int, metavar="SEQ")
    replay.add_argument(
        "--since", type=parse_time, metavar="TIME", help="epoch seconds or ISO 8601 (UTC)"
    )
    replay.add_argument("--until", type=parse_time, metavar="TIME", help="online only")
    replay.add_argument("--key")
    replay.add_argument("--dry-run", action="store_true", help="only list what would re-run")
    online.add_connection_options(replay, timeout_s=300.0)
    replay.set_defaults(handler=replay_command)


# ---------------------------------------------------------------------------- handlers


def status_command(args: argparse.Namespace) -> int:
    return online.run(args, "status", render_status)


def _version(version: int | None) -> str:
    return "-" if version is None else f"v{version}"


def render_status(status: dict[str, Any]) -> str:
    backlog, journal = status["backlog"], status["journal"]
    head = key_values(
        [
            ("state", f"{status['state']} ({'healthy' if status['healthy'] else 'UNHEALTHY'})"),
            ("version", status["version"]),
            ("pid", str(status["pid"])),
            ("uptime", f"{online.duration(status['uptime_s'])} (since {status['started_at']})"),
            ("runs unfinished", backlog["runs_unfinished"]),
            ("undispatched", backlog["undispatched_events"]),
            ("exceptions open", status["exceptions_open"]),
            (
                "journal",
                f"{journal['path']} ({journal['bytes']:,} bytes, seq {journal['last_seq']:,})",
            ),
        ]
    )
    parts = [head]
    if status["systems"]:
        parts.append(
            table(
                (
                    (
                        s["name"],
                        s["kind"],
                        s["vendor"],
                        _version(s.get("mapping_version")),
                        s.get("state"),
                        s.get("paused"),
                    )
                    for s in status["systems"]
                ),
                ("system", "kind", "vendor", "mapping", "state", "paused"),
            )
        )
    if status["workflows"]:
        parts.append(
            table(
                (
                    (w["name"], w["enabled"], w.get("state"), w.get("paused"), w["undispatched"])
                    for w in status["workflows"]
                ),
                ("workflow", "enabled", "state", "paused", "undispatched"),
            )
        )
    return "\n\n".join(parts)


def actors_command(args: argparse.Namespace) -> int:
    return online.run(args, "actors", render_actors)


def render_actors(actors: list[dict[str, Any]]) -> str:
    return table(
        (
            (
                a["path"],
                a["state"],
                a["alive"],
                a["required"],
                a["restarts"],
                online.duration(a["heartbeat_age_s"]) + " ago"
                if a["heartbeat_age_s"] is not None
                else None,
                a["last_error"],
            )
            for a in actors
        ),
        ("actor", "state", "alive", "required", "restarts", "heartbeat", "last error"),
    )


def pause_command(args: argparse.Namespace) -> int:
    def render(result: dict[str, Any]) -> str:
        state = "paused" if args.verb == "pause" else "resumed"
        return f"{result['kind']} {result['name']} {state} (state: {result.get('state')})"

    return online.run(args, args.verb, render, name=args.name, kind=args.kind)


def drain_command(args: argparse.Namespace) -> int:
    try:
        with ControlClient(online.socket_path(args), timeout_s=args.timeout) as client:
            response = client.call("drain")
            if not response.ok:
                body = response.error or {}
                raise ControlError(body.get("code", "failed"), body.get("message", ""))
            if args.json:
                emit(to_json({"ok": True, "result": _decode(response.result)}))
            else:
                emit("draining: polling stopped, in-flight work finishing")
            if args.no_wait:
                return ExitCode.OK
            # The daemon keeps this connection open until it has stopped.
            if not client.wait_closed(args.timeout):
                return online.report(
                    args,
                    ControlError(
                        "failed", f"the daemon is still draining after {args.timeout:g} s"
                    ),
                )
    except ControlError as exc:
        return online.report(args, exc)
    if not args.json:
        emit("stopped")
    return ExitCode.OK


def reload_command(args: argparse.Namespace) -> int:
    return online.run(
        args,
        "reload",
        render_reload,
        exit_status=lambda result: ExitCode.FAILED if result["failed"] else ExitCode.OK,
    )


def render_reload(result: dict[str, Any]) -> str:
    changes = result["changed"]
    if not changes:
        return f"reloaded {result['file']}: no changes"
    parts = [
        f"reloaded {result['file']}: {len(changes)} changed",
        table(
            ((c["key"], _show(c.get("old")), _show(c.get("new"))) for c in changes),
            ("key", "old", "new"),
        ),
    ]
    if result["applied"]:
        parts.append(table(sorted(result["applied"].items()), ("applied", "result")))
    if result["failed"]:
        parts.append(table(sorted(result["failed"].items()), ("failed to apply", "error")))
    if result["restart_required"]:
        parts.append("needs a restart to take effect: " + ", ".join(result["restart_required"]))
    return "\n\n".join(parts)


def limits_command(args: argparse.Namespace) -> int:
    return online.run(args, "limits", render_limits, system=args.system)


def render_limits(governors: list[dict[str, Any]]) -> str:
    def quota(g: dict[str, Any]) -> str:
        limit = g.get("quota_limit")
        return f"{g.get('quota_used', 0):,}/{limit:,}" if limit else f"{g.get('quota_used', 0):,}"

    return table(
        (
            (
                g["system"],
                g.get("rate_per_s"),
                g.get("effective_rate_per_s"),
                g.get("tokens"),
                f"{g.get('in_flight', 0)}/{g.get('max_concurrency', '-')}",
                sum((g.get("queued") or {}).values()),
                quota(g),
                g.get("throttle_count"),
                "paused" if g.get("paused_until") is not None else "-",
            )
            for g in governors
        ),
        (
            "system",
            "rate/s",
            "effective/s",
            "tokens",
            "in flight",
            "queued",
            "quota used",
            "throttled",
            "pause",
        ),
    )


def reconcile_command(args: argparse.Namespace) -> int:
    return online.run(args, "reconcile", _generic, key=args.key, period=args.period)


def close_period_command(args: argparse.Namespace) -> int:
    return online.run(args, "close_period", _generic, period=args.period)


def replay_command(args: argparse.Namespace) -> int:
    if args.workflow and args.workflow_option and args.workflow != args.workflow_option:
        error("give the workflow once (WORKFLOW or --workflow)")
        return ExitCode.USAGE
    args.workflow = args.workflow or args.workflow_option
    if not args.workflow:
        error("the workflow is required (WORKFLOW or --workflow)")
        return ExitCode.USAGE
    if args.journal:
        return offline_replay(args)
    return online.run(
        args,
        "replay",
        _generic,
        workflow=args.workflow,
        from_seq=args.from_seq,
        to_seq=args.to_seq,
        since=args.since,
        until=args.until,
        key=args.key,
        dry_run=args.dry_run or None,
    )


def _generic(result: Any) -> str:
    if isinstance(result, dict):
        return key_values((key, _show(value)) for key, value in result.items())
    return to_json(result)


def _show(value: Any) -> str:
    if value is None:
        return "-"
    return value if isinstance(value, str) else msgspec.json.encode(value).decode()


def _decode(raw: Any) -> Any:
    return msgspec.json.decode(raw)
