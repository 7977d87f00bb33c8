"""What the commands that talk to a running daemon share: finding the socket, calling it,
mapping its answers to output and exit statuses.

The socket is ``--socket PATH``, else ``[control] socket_path`` of ``--config FILE``,
else ``$RUNTIME_DIRECTORY/control.sock``, else ``/run/pssync/control.sock``. ``--json``
prints the daemon's ``result`` as it sent it (indented); errors go to stderr, and with
``--json`` also to stdout as ``{"ok": false, "error": {...}}``.
"""

from __future__ import annotations

import argparse
import os
import tomllib
from collections.abc import Callable, Mapping
from typing import Any

import msgspec

from actors.errors import ConfigError, ControlError

from ..config_load import DEFAULT_RUNTIME_DIRECTORY, load_config
from ..control.client import ControlClient
from ..render import emit, to_json
from .common import ExitCode, error

# Daemon and client error codes → exit status (see daemon.control.protocol).
EXIT_FOR_CODE: dict[str, ExitCode] = {
    "not_running": ExitCode.NOT_RUNNING,
    "permission_denied": ExitCode.PERMISSION,
    "forbidden": ExitCode.PERMISSION,
    "bad_request": ExitCode.USAGE,
    "unknown_op": ExitCode.USAGE,
    "unsupported": ExitCode.USAGE,
    "too_long": ExitCode.USAGE,
}

DEFAULT_TIMEOUT_S = 30.0


def add_connection_options(
    parser: argparse.ArgumentParser, *, timeout_s: float = DEFAULT_TIMEOUT_S, json: bool = True
) -> None:
    """``--socket``, ``--config``, ``--timeout`` (and ``--json``) on a command."""
    where = parser.add_argument_group("daemon")
    # SUPPRESS: the same options before the command (`pssync --socket S status`) are
    # not overwritten by these when they are absent.
    where.add_argument(
        "--socket", metavar="PATH", default=argparse.SUPPRESS, help="the control socket"
    )
    where.add_argument(
        "--config",
        metavar="FILE",
        default=argparse.SUPPRESS,
        help="find the control socket in this configuration",
    )
    where.add_argument(
        "--timeout",
        metavar="SECONDS",
        type=float,
        default=timeout_s,
        help=f"how long to wait for the daemon (default {timeout_s:g})",
    )
    if json:
        where.add_argument(
            "--json", action="store_true", help="print the daemon's JSON result for scripts"
        )


def socket_path(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> str:
    """The control socket the options (or the defaults) name; ConfigError for a bad file."""
    environ = os.environ if environ is None else environ
    if getattr(args, "socket", None):
        return str(args.socket)
    if getattr(args, "config", None):
        try:
            return load_config(args.config, environ=environ).control.socket_path
        except ConfigError:
            # `pssync reload` after a bad edit must still reach the daemon, which then
            # refuses the file with every problem named; only unreadable TOML stops here.
            path = _socket_from_raw(args.config, environ)
            if path is None:
                raise
            return path
    return _default_socket(environ)


def _default_socket(environ: Mapping[str, str]) -> str:
    runtime = environ.get("RUNTIME_DIRECTORY") or DEFAULT_RUNTIME_DIRECTORY
    return os.path.join(runtime, "control.sock")


def _socket_from_raw(config_file: str, environ: Mapping[str, str]) -> str | None:
    """``[control] socket_path`` of a file that is valid TOML but not a valid config."""
    try:
        with open(config_file, "rb") as file:
            raw = tomllib.load(file)
    except (OSError, tomllib.TOMLDecodeError):
        return None
    control = raw.get("control", {})
    path = control.get("socket_path", "") if isinstance(control, dict) else None
    if not isinstance(path, str):
        return None
    if not path:
        return _default_socket(environ)
    return os.path.join(os.path.dirname(os.path.abspath(config_file)), path)


def call(args: argparse.Namespace, op: str, **arguments: Any) -> Any:
    """The result of ``op``; raises ControlError with the daemon's (or the client's) code."""
    with ControlClient(socket_path(args), timeout_s=args.timeout) as client:
        response = client.call(op, **arguments)
    if not response.ok:
        body = response.error or {}
        raise ControlError(body.get("code", "failed"), body.get("message", "no message"))
    return msgspec.json.decode(response.result)


def run(
    args: argparse.Namespace,
    op: str,
    render: Callable[[Any], str | None],
    *,
    exit_status: Callable[[Any], int] = lambda result: ExitCode.OK,
    **arguments: Any,
) -> int:
    """Call ``op``, print the result (``render`` for people, JSON with ``--json``)."""
    try:
        result = call(args, op, **arguments)
    except ControlError as exc:
        return report(args, exc)
    if getattr(args, "json", False):
        emit(to_json(result))
    else:
        text = render(result)
        if text:
            emit(text)
    return exit_status(result)


def report(args: argparse.Namespace, exc: ControlError) -> int:
    """Print a failed call; its exit status."""
    plain = exc.code in ("failed", "not_running", "permission_denied")
    error(exc.message if plain else f"{exc.code}: {exc.message}")
    if getattr(args, "json", False):
        emit(to_json({"ok": False, "error": {"code": exc.code, "message": exc.message}}))
    return EXIT_FOR_CODE.get(exc.code, ExitCode.FAILED)


def duration(seconds: float | None) -> str:
    """``3d 4h``, ``2h 5m``, ``4m 10s``, ``12.5s`` for people."""
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m {secs}s"


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def age(text: str) -> float:
    """argparse type for ``--older-than``: ``90``, ``90s``, ``30m``, ``12h``, ``3d``, ``2w``."""
    value, unit = (text[:-1], text[-1]) if text and text[-1] in _UNITS else (text, "s")
    try:
        seconds = float(value) * _UNITS[unit]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an age: {text!r} (e.g. 90s, 30m, 12h, 3d)") from None
    if seconds < 0:
        raise argparse.ArgumentTypeError(f"an age cannot be negative: {text!r}")
    return seconds
