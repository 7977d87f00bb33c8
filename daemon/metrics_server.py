"""The Prometheus endpoint: prometheus_client's ASGI app served by hypercorn on trio.

It listens on ``[metrics] listen`` (``127.0.0.1:9464`` by default). Metrics describe the
firm's money flows (amounts at risk, backlog per workflow), so a non-loopback address is
refused with a :class:`ConfigError` unless the caller passes ``allow_non_loopback=True``
(for a scrape over a private interface; put TLS or a firewall in front of it). The
configuration has no switch for that yet: exposing metrics is a deliberate code change.

For the root supervisor, :func:`metrics_child_spec` wraps the server and the journal
sampler (:func:`daemon.metrics.sample_journal`) in one actor::

    metrics = Metrics.from_config(config)
    specs = [*children, metrics_child_spec(metrics, config.metrics, journal=journal)]
    root = Supervisor("root", specs, policy=ROOT_POLICY)
    metrics.watch_health(HealthView(root))

Scrapes run in the trio thread (hypercorn calls the ASGI app there), so the collectors
may read trio's clock, the actor tree and the governors without locks.
"""

from __future__ import annotations

import ipaddress
from functools import partial
from typing import Any

import structlog
import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve
from prometheus_client import make_asgi_app

from actors import Actor, ChildSpec, Restart
from actors.errors import ConfigError

from .config import MetricsConfig
from .metrics import JournalLike, Metrics, sample_journal

log = structlog.get_logger("daemon.metrics")

#: A port that cannot be bound (in use) is retried this often, while sync goes on.
BIND_RETRY_S = 30.0


def parse_listen(listen: str, *, allow_non_loopback: bool = False) -> tuple[str, int]:
    """``"127.0.0.1:9464"`` / ``"[::1]:9464"`` / ``"localhost:9464"`` → (host, port).

    ConfigError for a malformed value, or a non-loopback host unless allowed.
    """
    host, sep, port_text = listen.rpartition(":")
    if not sep or not host or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ConfigError(f"metrics.listen: expected HOST:PORT, got {listen!r}")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not allow_non_loopback and not _is_loopback(host):
        raise ConfigError(
            f"metrics.listen: {host!r} is not a loopback address; metrics are served on "
            "loopback only (127.0.0.1, ::1, localhost)"
        )
    return host, int(port_text)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _with_lifespan(app: Any) -> Any:
    """Answer ASGI lifespan events, which prometheus_client's app does not handle (hypercorn
    would log a warning at every start)."""

    async def wrapped(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "lifespan":
            await app(scope, receive, send)
            return
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    return wrapped


def _hypercorn_config(host: str, port: int) -> HypercornConfig:
    config = HypercornConfig()
    config.bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    config.accesslog = None  # one line per scrape would drown the journal
    config.loglevel = "WARNING"
    config.graceful_timeout = 1.0
    return config


async def serve_metrics(
    metrics: Metrics,
    listen: str = "127.0.0.1:9464",
    *,
    allow_non_loopback: bool = False,
    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``metrics.registry`` at ``http://LISTEN/metrics`` (any path) until cancelled.

    Reports the bound ``host:port`` (port 0 picks a free one). ConfigError for a bad or
    non-loopback ``listen``; an OSError (inside an ExceptionGroup, from hypercorn's
    nurseries) if the address cannot be bound.
    """
    host, port = parse_listen(listen, allow_non_loopback=allow_non_loopback)
    app = _with_lifespan(make_asgi_app(metrics.registry))
    async with trio.open_nursery() as nursery:
        binds: list[str] = await nursery.start(
            partial(serve, app, _hypercorn_config(host, port), mode="asgi")
        )
        # hypercorn reports "http://127.0.0.1:54321"; callers want what `listen` looks like.
        task_status.started(binds[0].removeprefix("http://"))


class MetricsActor(Actor[None]):
    """Runs the metrics endpoint and the journal sampler; heartbeats while they run.

    A port that cannot be bound is logged and retried every :data:`BIND_RETRY_S` seconds
    instead of failing: a busy metrics port must not stop the sync itself.
    """

    def __init__(
        self,
        metrics: Metrics,
        listen: str,
        *,
        journal: JournalLike | None = None,
        sample_interval_s: float = 15.0,
        allow_non_loopback: bool = False,
        name: str = "metrics",
    ) -> None:
        super().__init__(name)
        self.metrics = metrics
        self.listen = listen
        self.journal = journal
        self.sample_interval_s = sample_interval_s
        self.allow_non_loopback = allow_non_loopback
        #: The bound ``host:port`` once serving.
        self.address: str | None = None
        self._scope = trio.CancelScope()

    def request_stop(self) -> None:
        self._scope.cancel()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        with self._scope:
            async with trio.open_nursery() as nursery:
                if self.journal is not None:
                    await nursery.start(
                        partial(
                            sample_journal,
                            self.metrics,
                            self.journal,
                            interval_s=self.sample_interval_s,
                        )
                    )
                nursery.start_soon(self._serve_forever)
                self.heartbeat()
                task_status.started()
                while True:
                    self.heartbeat()
                    await trio.sleep(self.heartbeat_interval_s)

    async def _serve_forever(self) -> None:
        while True:
            failure: OSError | None = None
            try:
                async with trio.open_nursery() as nursery:
                    self.address = await nursery.start(
                        partial(
                            serve_metrics,
                            self.metrics,
                            self.listen,
                            allow_non_loopback=self.allow_non_loopback,
                        )
                    )
                    log.info("metrics.listening", address=self.address)
            except* OSError as group:  # hypercorn raises from inside its nurseries
                failure = group.exceptions[0]  # type: ignore[assignment]
            self.address = None
            if failure is not None:
                log.error("metrics.bind_failed", listen=self.listen, error=str(failure))
            await trio.sleep(BIND_RETRY_S)


def metrics_child_spec(
    metrics: Metrics,
    config: MetricsConfig,
    *,
    journal: JournalLike | None = None,
    sample_interval_s: float = 15.0,
    allow_non_loopback: bool = False,
) -> list[ChildSpec]:
    """The root supervisor's metrics child, or ``[]`` when ``[metrics] enabled = false``.

    ``listen`` is checked now, so a bad address is a configuration error (exit 2) before
    anything starts. The child is not ``required``: the watchdog follows the sync, not
    the metrics endpoint.
    """
    if not config.enabled:
        return []
    parse_listen(config.listen, allow_non_loopback=allow_non_loopback)

    def factory() -> MetricsActor:
        return MetricsActor(
            metrics,
            config.listen,
            journal=journal,
            sample_interval_s=sample_interval_s,
            allow_non_loopback=allow_non_loopback,
        )

    return [ChildSpec(name="metrics", factory=factory, restart=Restart.PERMANENT, required=False)]
