"""``pssync run``: the service process.

Order of events:

1. the configuration is loaded and checked, logging configured, secrets resolved
   (a problem here is a configuration error: exit 2, nothing started);
2. SIGTERM and SIGINT are taken over (``trio.open_signal_receiver``) *before* anything
   starts, so a stop request is never lost; SIGHUP is left alone until reload exists;
3. the journal is opened and the root supervisor started with the journal and its
   children; once it reports started, ``daemon.ready`` is logged and systemd told READY=1;
4. the first SIGTERM/SIGINT drains: STOPPING=1, the supervisor stops its children in
   reverse order, the journal finishes its queued writes and closes → exit 0. A second
   signal during the drain cancels what is left (still exit 0: it was asked for);
5. the root supervisor failing (a child past its restart intensity) is logged and the
   process exits 1, so systemd's ``Restart=on-failure`` restarts it.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import structlog
import trio

from actors import ActorFailed, ChildSpec, HealthView, RestartPolicy, Supervisor
from actors.errors import ConfigError, PssyncError, StoreError
from store import Journal, open_journal

from .config import Config
from .logging import configure_logging
from .secrets import Secret, SecretResolver, resolve_all
from .systemd import Notifier

# SIGHUP is deliberately absent: it is reserved for reload, which does not exist yet, and
# an unsubscribed SIGHUP keeps its default action rather than being silently swallowed.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_CONFIG = 2

# The root may restart a crashed child a few times; past that the process exits and
# systemd (Restart=on-failure, RestartSec=) takes over with a fresh process.
ROOT_POLICY = RestartPolicy(max_restarts=5, period_s=60.0, backoff_min_s=0.5, backoff_max_s=30.0)

# Builds the root's children from the configuration, the open journal and the secrets.
ChildrenFactory = Callable[[Config, Journal, Mapping[str, Secret]], Sequence[ChildSpec]]


def root_children(
    config: Config, journal: Journal, secrets: Mapping[str, Secret]
) -> list[ChildSpec]:
    """The root supervisor's children.

    Empty for now: the system actors (actors/systems), the dispatcher and workflow actors
    (actors/workflows), the control server and the metrics server join here as they land,
    each as a ``ChildSpec`` whose factory closes over ``config``, ``journal`` and
    ``secrets``.
    """
    return []


def run_service(
    config: Config,
    *,
    config_file: str = "",
    environ: Mapping[str, str] | None = None,
    children: ChildrenFactory = root_children,
    cache_loggers: bool = True,
) -> int:
    """Run the daemon with a loaded ``config`` until stopped; the process exit status.

    ``cache_loggers=False`` is for tests: cached loggers would outlive their output stream.
    """
    environ = os.environ if environ is None else environ
    configure_logging(config.log, cache_logger_on_first_use=cache_loggers)
    log = structlog.get_logger("daemon.service")
    try:
        secrets = resolve_all(config, SecretResolver(environ))
    except ConfigError as exc:
        log.error("daemon.config_invalid", error=str(exc), config=config_file)
        return EXIT_CONFIG
    try:
        return trio.run(serve, config, secrets, children, Notifier(environ))
    except PssyncError as exc:
        log.error("daemon.failed", error=str(exc), error_type=type(exc).__name__)
        return EXIT_FAILED
    except Exception:
        # A bug, not an expected failure: keep the traceback, as one structured log line
        # in the journal rather than loose text on stderr; systemd restarts us.
        log.exception("daemon.crashed")
        return EXIT_FAILED


async def serve(
    config: Config,
    secrets: Mapping[str, Secret],
    children: ChildrenFactory = root_children,
    notifier: Notifier | None = None,
    *,
    task_status: trio.TaskStatus[Supervisor] = trio.TASK_STATUS_IGNORED,
) -> int:
    """Open the journal, run the root supervisor, drain on SIGTERM/SIGINT; the exit status.

    ``task_status.started(root)`` once the daemon is ready (tests start it with
    ``nursery.start``). Raises StoreError if the journal cannot be opened.
    """
    log = structlog.get_logger("daemon.service")
    notifier = notifier or Notifier({})
    with trio.open_signal_receiver(*STOP_SIGNALS) as signals:
        _ensure_directory(Path(config.journal.path).parent)
        async with open_journal(
            config.journal.path,
            synchronous=config.journal.synchronous,
            busy_timeout_ms=config.journal.busy_timeout_ms,
        ) as journal:
            root = Supervisor("root", children(config, journal, secrets), policy=ROOT_POLICY)
            failure: BaseException | None = None
            try:
                await _run_root(root, signals, notifier, config, log, task_status)
            except* ActorFailed as group:
                failure = group.exceptions[0]
    if failure is not None:
        cause = failure.__cause__
        log.error(
            "daemon.root_failed",
            error=str(failure),
            cause=f"{type(cause).__name__}: {cause}" if cause is not None else None,
        )
        notifier.notify("STATUS=root supervisor failed", "ERRNO=1")
        return EXIT_FAILED
    log.info("daemon.stopped")
    return EXIT_OK


async def _run_root(
    root: Supervisor,
    signals: Any,
    notifier: Notifier,
    config: Config,
    log: Any,
    task_status: trio.TaskStatus[Supervisor],
) -> None:
    async with trio.open_nursery() as nursery:

        async def run_root(*, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED):
            await root.run(task_status=task_status)
            # The root returned: it drained. Nothing else in this nursery has work left.
            nursery.cancel_scope.cancel()

        await nursery.start(run_root)
        systems = sorted(config.systems)
        log.info(
            "daemon.ready",
            pid=os.getpid(),
            journal=config.journal.path,
            systems=systems,
            workflows=sorted(n for n, w in config.workflows.items() if w.enabled),
        )
        notifier.ready(f"running: {len(systems)} systems")
        if notifier.watchdog_interval_s is not None:
            nursery.start_soon(_feed_watchdog, root, notifier, notifier.watchdog_interval_s)
        task_status.started(root)

        stopping = False
        async for signum in signals:
            name = signal.Signals(signum).name
            if not stopping:
                stopping = True
                log.info("daemon.stopping", signal=name)
                notifier.stopping(f"draining after {name}")
                root.request_stop()
            else:
                log.warning("daemon.stop_forced", signal=name)
                nursery.cancel_scope.cancel()


async def _feed_watchdog(root: Supervisor, notifier: Notifier, interval_s: float) -> None:
    """WATCHDOG=1 every ``interval_s`` while every required actor is alive, and only then."""
    health = HealthView(root)
    while True:
        if health.all_required_alive():
            notifier.watchdog()
        else:
            unhealthy = ", ".join(actor.path for actor in health.unhealthy())
            notifier.notify(f"STATUS=unhealthy: {unhealthy}")
        await trio.sleep(interval_s)


def _ensure_directory(directory: Path) -> None:
    """Create the state directory outside systemd (StateDirectory= creates it under it)."""
    try:
        directory.mkdir(mode=0o750, parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot create {directory}: {exc.strerror or exc}") from None
