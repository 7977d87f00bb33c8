"""``pssync run``: the service process.

Order of events:

1. the configuration is loaded and checked, logging configured, secrets resolved
   (a problem here is a configuration error: exit 2, nothing started);
2. SIGTERM, SIGINT and SIGHUP are taken over (``trio.open_signal_receiver``) *before*
   anything starts, so a stop or reload request is never lost;
3. the control socket is bound (refusing to start if another daemon answers on it) and
   served; the journal is opened and the root supervisor started with its children; once
   it reports started, the control operations are attached, ``daemon.ready`` is logged
   and systemd told READY=1;
4. the first SIGTERM/SIGINT — or ``pssync drain`` over the socket — drains: STOPPING=1,
   the supervisor stops its children in reverse order, the journal finishes its queued
   writes and closes → exit 0. A second signal during the drain cancels what is left
   (still exit 0: it was asked for);
5. SIGHUP reloads the configuration through the same code path as ``pssync reload``
   (RELOADING=1 … READY=1 to systemd; an invalid file is refused and logged);
6. the root supervisor failing (a child past its restart intensity) is logged and the
   process exits 1, so systemd's ``Restart=on-failure`` restarts it.

The control server runs *beside* the root supervisor, not as one of its children: it
must answer while the root drains (``pssync status`` during a drain, the ``drain``
connection waiting for the end), it is not restartable state (a crashed handler is
contained per connection; the listener itself failing is a daemon failure), and it
outlives the journal so that a ``pssync drain`` connection closes only once the journal
has been closed — that close is how the CLI learns the daemon has gone.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import httpx
import structlog
import trio

from actors import ActorFailed, ChildSpec, HealthView, RestartPolicy, Supervisor
from actors.errors import ConfigError, ControlError, PssyncError, StoreError
from adapters.mapping import MappingSet
from store import Journal, open_journal

from .config import Config
from .control import (
    ControlRegistry,
    ControlServer,
    CredentialPolicy,
    DaemonControl,
    Reloader,
    Settings,
    open_control_socket,
)
from .control.peer import group_id
from .logging import configure_logging
from .metrics import Metrics
from .metrics_server import metrics_child_spec
from .pipeline import Pipeline, build_pipeline
from .secrets import Secret, SecretResolver, resolve_all
from .systemd import Notifier

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
RELOAD_SIGNAL = signal.SIGHUP

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_CONFIG = 2

# The root may restart a crashed child a few times; past that the process exits and
# systemd (Restart=on-failure, RestartSec=) takes over with a fresh process.
ROOT_POLICY = RestartPolicy(max_restarts=5, period_s=60.0, backoff_min_s=0.5, backoff_max_s=30.0)

# Builds the root's children from the configuration, the open journal and the secrets.
ChildrenFactory = Callable[[Config, Journal, Mapping[str, Secret]], Sequence[ChildSpec]]


def root_children(
    config: Config,
    journal: Journal,
    secrets: Mapping[str, Secret],
    registry: ControlRegistry | None = None,
    *,
    metrics: Metrics | None = None,
    transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
    mappings: Mapping[str, MappingSet] | None = None,
) -> Pipeline:
    """The root supervisor's children: the pipeline of :mod:`daemon.pipeline` (systems,
    dispatcher, one runner per enabled workflow, the reconcile schedule), registered in
    ``registry`` for the control server. Its ``children`` go to the root; its
    ``aclose()`` closes the adapters once the root has stopped.

    Empty (no children) for a configuration without systems or workflows.
    """
    return build_pipeline(
        config,
        secrets,
        journal,
        registry=registry if registry is not None else ControlRegistry(),
        metrics=metrics,
        transports=transports,
        mappings=mappings,
    )


def version() -> str:
    """The installed pssync version (``unknown`` when run from a bare checkout)."""
    try:
        return metadata.version("pssync")
    except metadata.PackageNotFoundError:
        return "unknown"


def run_service(
    config: Config,
    *,
    config_file: str = "",
    environ: Mapping[str, str] | None = None,
    children: ChildrenFactory | None = None,
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
        return trio.run(
            lambda: serve(
                config,
                secrets,
                children,
                Notifier(environ),
                config_file=config_file,
                environ=environ,
            )
        )
    except ConfigError as exc:
        log.error("daemon.config_invalid", error=str(exc), config=config_file)
        return EXIT_CONFIG
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
    children: ChildrenFactory | None = None,
    notifier: Notifier | None = None,
    *,
    config_file: str = "",
    environ: Mapping[str, str] | None = None,
    registry: ControlRegistry | None = None,
    policy: CredentialPolicy | None = None,
    transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
    task_status: trio.TaskStatus[Supervisor] = trio.TASK_STATUS_IGNORED,
) -> int:
    """Serve the control socket, open the journal, run the root supervisor until drained;
    the exit status.

    ``task_status.started(root)`` once the daemon is ready (tests start it with
    ``nursery.start``). ``children`` defaults to :func:`root_children` with ``registry``
    (and ``transports``: system name → httpx transport, e.g. the in-process sandbox);
    a custom factory that registers components closes over the ``registry`` it passes
    here. ``policy`` defaults to root, this process's uid/gid and
    ``[control] operator_group``. ``config_file`` is what ``reload`` re-reads.

    Raises ConfigError for an unusable control socket path or operator group,
    ControlError if another daemon answers on the socket, StoreError if the journal
    cannot be opened.
    """
    log = structlog.get_logger("daemon.service")
    notifier = notifier or Notifier({})
    environ = os.environ if environ is None else environ
    registry = registry if registry is not None else ControlRegistry()
    operator_gid = (
        group_id(config.control.operator_group) if config.control.operator_group else None
    )
    if policy is None:
        policy = CredentialPolicy.for_service(config.control.operator_group)
    with trio.open_signal_receiver(*STOP_SIGNALS, RELOAD_SIGNAL) as signals:
        _ensure_directory(Path(config.journal.path).parent)
        control_socket = await open_control_socket(config.control.socket_path, group=operator_gid)
        server = ControlServer(policy)
        failure: BaseException | None = None
        try:
            async with trio.open_nursery() as control_nursery:
                await control_nursery.start(server.serve, control_socket.listener)
                try:
                    failure = await _serve_journal(
                        config,
                        secrets,
                        children,
                        transports,
                        notifier,
                        server,
                        registry,
                        signals,
                        log,
                        config_file=config_file,
                        environ=environ,
                        task_status=task_status,
                    )
                finally:
                    server.detach("the daemon is stopping")
                # The journal is closed: the daemon has gone as far as a client can tell;
                # closing the connections (a `pssync drain` waits for that) says so.
                control_nursery.cancel_scope.cancel()
        except BaseExceptionGroup as group:
            error = _sole_error(group)
            if error is group:
                raise
            raise error from None
        finally:
            with trio.CancelScope(shield=True):
                await control_socket.close()
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


async def _serve_journal(
    config: Config,
    secrets: Mapping[str, Secret],
    children: ChildrenFactory | None,
    transports: Mapping[str, httpx.AsyncBaseTransport] | None,
    notifier: Notifier,
    server: ControlServer,
    registry: ControlRegistry,
    signals: Any,
    log: Any,
    *,
    config_file: str,
    environ: Mapping[str, str],
    task_status: trio.TaskStatus[Supervisor],
) -> ActorFailed | None:
    """Open the journal and run the root until it stops; its failure, if it failed."""
    async with open_journal(
        config.journal.path,
        synchronous=config.journal.synchronous,
        busy_timeout_ms=config.journal.busy_timeout_ms,
    ) as journal:
        metrics = Metrics.from_config(config)
        # Read once: the adapters and the reloader (which reports later edits) start from
        # the same mapping files.
        settings = Settings.load(config)
        pipeline: Pipeline | None = None
        if children is None:
            pipeline = root_children(
                config,
                journal,
                secrets,
                registry,
                metrics=metrics,
                transports=transports,
                mappings=settings.mappings,
            )
            own = list(pipeline.children)
        else:
            own = list(children(config, journal, secrets))
        specs = [*own, *metrics_child_spec(metrics, config.metrics, journal=journal)]
        root = Supervisor("root", specs, policy=ROOT_POLICY)
        metrics.watch_health(HealthView(root))
        lifecycle = _Lifecycle(root, notifier, log)
        reloader = Reloader(
            settings,
            config_file=config_file,
            environ=environ,
            registry=registry,
            notifier=notifier,
            status=lambda: lifecycle.status_line(reloader.config),
            on_result=lambda success: metrics.config_loaded(success=success),
        )
        control = _ControlAttachment(
            server,
            lambda: DaemonControl(
                root=root,
                journal=journal,
                reloader=reloader,
                registry=registry,
                version=version(),
                request_stop=lambda who: lifecycle.request_stop(f"on request of {who}"),
                stopping=lambda: lifecycle.stopping,
            ),
        )
        failures: list[ActorFailed] = []
        try:
            await _run_root(
                root, signals, lifecycle, reloader, control, notifier, config, log, task_status
            )
        except* ActorFailed as group:
            failures.extend(group.exceptions)  # type: ignore[arg-type]
        finally:
            # The root has stopped: nothing sends requests any more.
            if pipeline is not None:
                await pipeline.aclose()
    return failures[0] if failures else None


class _ControlAttachment:
    """Attaches the control operations once the root has started (uptime counts from
    there, and ``actors`` needs a running tree)."""

    def __init__(self, server: ControlServer, make: Callable[[], DaemonControl]) -> None:
        self._server = server
        self._make = make

    def attach(self) -> None:
        self._server.attach(self._make())


class _Lifecycle:
    """The one place a stop is requested, whether by a signal or by ``pssync drain``."""

    def __init__(self, root: Supervisor, notifier: Notifier, log: Any) -> None:
        self._root = root
        self._notifier = notifier
        self._log = log
        self.stopping = False

    def request_stop(self, reason: str, *, signal_name: str | None = None) -> None:
        if self.stopping:
            return
        self.stopping = True
        if signal_name is not None:
            self._log.info("daemon.stopping", signal=signal_name)
        else:
            self._log.info("daemon.stopping", reason=reason)
        self._notifier.stopping(f"draining {reason}")
        self._root.request_stop()

    @staticmethod
    def status_line(config: Config) -> str:
        return f"running: {len(config.systems)} systems"


async def _run_root(
    root: Supervisor,
    signals: Any,
    lifecycle: _Lifecycle,
    reloader: Reloader,
    control: _ControlAttachment,
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
        control.attach()
        systems = sorted(config.systems)
        log.info(
            "daemon.ready",
            pid=os.getpid(),
            journal=config.journal.path,
            control_socket=config.control.socket_path,
            systems=systems,
            workflows=sorted(n for n, w in config.workflows.items() if w.enabled),
        )
        notifier.ready(lifecycle.status_line(config))
        if notifier.watchdog_interval_s is not None:
            nursery.start_soon(_feed_watchdog, root, notifier, notifier.watchdog_interval_s)
        task_status.started(root)

        async for signum in signals:
            name = signal.Signals(signum).name
            if signum == RELOAD_SIGNAL:
                nursery.start_soon(_reload, reloader, log)
            elif not lifecycle.stopping:
                lifecycle.request_stop(f"after {name}", signal_name=name)
            else:
                log.warning("daemon.stop_forced", signal=name)
                nursery.cancel_scope.cancel()


async def _reload(reloader: Reloader, log: Any) -> None:
    """SIGHUP: the reload path of ``pssync reload``; the outcome is logged either way."""
    try:
        await reloader.reload("SIGHUP")
    except ControlError:
        pass  # refused: Reloader has logged daemon.reload_refused with every problem
    except Exception:
        log.exception("daemon.reload_crashed")


def _sole_error(group: BaseExceptionGroup) -> BaseException:
    """The one error inside nested groups (a startup failure, a wiring bug), else the group.

    The control server's nursery wraps whatever ends the daemon in an ExceptionGroup;
    unwrapping a lone error keeps run_service's handling (and its log lines) as they were.
    """
    leaves: list[BaseException] = []

    def walk(error: BaseException) -> None:
        if isinstance(error, BaseExceptionGroup):
            for inner in error.exceptions:
                walk(inner)
        else:
            leaves.append(error)

    walk(group)
    if len(leaves) == 1 and isinstance(leaves[0], Exception):
        return leaves[0]
    return group


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
