"""``pssync config check FILE``: decode and check a configuration without starting anything."""

from __future__ import annotations

import argparse
from typing import Any

from actors.errors import ConfigError
from adapters.mapping import load_mappings

from ..config import Config
from ..config_checks import check_adapters
from ..config_load import load_config
from ..errors import ConfigErrors, config_problems
from ..render import emit, key_values, table, to_json
from ..secrets import SecretResolver, resolve_all
from ..systems import check_mappings
from .common import ExitCode, add_json_flag, report_config_error


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("config", help="configuration files")
    commands = parser.add_subparsers(dest="config_command", metavar="COMMAND", required=True)
    check = commands.add_parser(
        "check",
        help="check a configuration file",
        description="Decode and check FILE; print a summary (exit 0) or every problem with "
        "its key path (exit 2).",
    )
    check.add_argument("file", metavar="FILE", help="the TOML configuration file")
    check.add_argument(
        "--resolve-secrets",
        action="store_true",
        help="also read every secret reference (files, credentials, environment)",
    )
    add_json_flag(check)
    check.set_defaults(handler=check_command)


def check_command(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.file)
        # A vendor the schema knows but no adapter speaks yet cannot run: say so here,
        # not at the service's first start.
        problems = check_adapters(config, source=args.file)
        if not problems and config.systems:
            # The field mappings the adapters will load at start (broken files raise).
            problems = check_mappings(config, load_mappings(config.mappings.directory))
        if problems:
            raise problems[0] if len(problems) == 1 else ConfigErrors(problems)
        if args.resolve_secrets:
            resolve_all(config, SecretResolver())
    except ConfigError as exc:
        if args.json:
            problems = [
                {"source": p.source, "path": p.path, "message": p.message}
                for p in config_problems(exc)
            ]
            emit(to_json({"ok": False, "file": args.file, "errors": problems}))
            return ExitCode.USAGE
        return report_config_error(exc)
    if args.json:
        emit(to_json({"ok": True, "file": args.file, "config": config}))
    else:
        emit(summary(args.file, config))
    return ExitCode.OK


def summary(file: str, config: Config) -> str:
    """A few lines an operator can check at a glance."""
    systems = table(
        (
            (
                name,
                system.kind,
                system.vendor,
                system.base_url,
                system.limits.rate_per_s,
                sorted(system.legal_entities),
            )
            for name, system in config.systems.items()
        ),
        ("system", "kind", "vendor", "base url", "rate/s", "legal entities"),
    )
    workflows = table(
        (
            (name, w.enabled, w.width, w.max_attempts, list(w.systems) or "all")
            for name, w in config.workflows.items()
        ),
        ("workflow", "enabled", "width", "attempts", "systems"),
    )
    paths = key_values(
        [
            ("journal", f"{config.journal.path} (synchronous={config.journal.synchronous})"),
            ("backups", config.journal.backup_dir),
            ("control socket", config.control.socket_path),
            ("metrics", config.metrics.listen if config.metrics.enabled else "disabled"),
            ("mappings", config.mappings.directory),
            ("log", f"{config.log.level}, {config.log.format}"),
        ]
    )
    enabled = sum(1 for w in config.workflows.values() if w.enabled)
    head = f"OK {file}: {len(config.systems)} systems, {enabled} workflows enabled"
    return "\n\n".join([head, systems, workflows, paths])
