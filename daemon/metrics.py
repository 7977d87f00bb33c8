"""Every Prometheus object pssync exports, on one dedicated registry (STYLE: one module).

Names are ``pssync_*`` in base units (seconds, bytes), counters end in ``_total``, and
every label value comes from a bounded set: system and workflow names and currencies from
the configuration, event types from :data:`actors.messages.EVENT_TYPES`, actor paths from
the supervision tree, and small enums below. A value outside its set is counted as
``"other"``: a typo or a new vendor code never creates an unbounded series.

Two kinds of source:

- **Event-driven** counters and histograms, moved by the rest of the code through the
  :class:`Metrics` facade (``record_api_request``, ``record_run``, ``observe_activation``…).
- **Pulled state**, read when Prometheus scrapes by a custom collector: the actor tree
  (:class:`~actors.HealthView`), each system's :class:`~adapters.governor.Governor`
  snapshot and the journal's group-commit counters. Those reads are synchronous and cheap.
  The journal's sizes, backlog and open exceptions need SQL, which is async (a reader
  thread), and ``collect()`` is sync; so :func:`sample_journal` refreshes a cache from a
  trio task every ``interval_s`` and the collector reports the cache. Exception *ages* are
  computed at scrape time from the cached opening times, so they never go stale.

A :class:`Metrics` owns its own :class:`~prometheus_client.CollectorRegistry` (never the
global one), so each test builds a fresh one. The HTTP side is :mod:`daemon.metrics_server`.
"""

from __future__ import annotations

import platform
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from importlib import metadata
from typing import TYPE_CHECKING, Protocol

import structlog
import trio
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from actors.errors import PssyncError
from actors.messages import EVENT_TYPES

if TYPE_CHECKING:
    from actors import HealthView
    from adapters.governor import GovernorSnapshot
    from store.records import CommitStats

    from .config import Config

OTHER = "other"

#: How a workflow run ended (one attempt): ``retry`` = failed retryably and rescheduled,
#: ``parked`` = became an exception, ``lease_lost`` = another claimer took it over.
RUN_OUTCOMES = ("completed", "retry", "parked", "cancelled", "lease_lost")
#: ``error`` = no HTTP status at all (timeout, connection reset, TLS failure).
STATUS_CLASSES = ("1xx", "2xx", "3xx", "4xx", "5xx", "error")
HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
#: The exception categories of ``[governance.owners]``.
EXCEPTION_CATEGORIES = ("contract", "project", "time", "billing", "master_data", "mapping")
GOVERNOR_LANES = ("critical", "master_data", "analytics")
UNFINISHED_RUN_STATUSES = ("pending", "running", "retry_wait", "waiting")

API_LATENCY_BUCKETS_S = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
COMMIT_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
_MINUTE, _HOUR, _DAY = 60.0, 3600.0, 86400.0
#: Deal won → project active everywhere: minutes when all goes well, days when a person
#: has to fix a mapping. Buckets up to two weeks, with boundaries at the usual SLA targets.
ACTIVATION_BUCKETS_S = (
    5 * _MINUTE, 15 * _MINUTE, 30 * _MINUTE, _HOUR, 4 * _HOUR, 8 * _HOUR,
    _DAY, 2 * _DAY, 5 * _DAY, 7 * _DAY, 14 * _DAY,
)  # fmt: skip
#: Time/expense approved in the PSA → posted in the ERP (batched per project and period).
APPROVAL_TO_POSTING_BUCKETS_S = (
    _MINUTE, 5 * _MINUTE, 15 * _MINUTE, 30 * _MINUTE, _HOUR, 2 * _HOUR, 4 * _HOUR,
    8 * _HOUR, _DAY, 2 * _DAY, 5 * _DAY,
)  # fmt: skip
#: Milestone completed in the PSA → invoice issued in billing.
MILESTONE_TO_INVOICE_BUCKETS_S = (
    5 * _MINUTE, 15 * _MINUTE, _HOUR, 4 * _HOUR, 8 * _HOUR, _DAY, 2 * _DAY, 3 * _DAY,
    5 * _DAY, 7 * _DAY, 14 * _DAY,
)  # fmt: skip

#: Rows :func:`sample_journal` reads per unfinished status / for open exceptions. The
#: public journal API has no per-workflow COUNT, so past this the gauges saturate (the
#: alerts still fire); a store aggregate query would lift the cap.
SAMPLE_ROW_CAP = 10_000

log = structlog.get_logger("daemon.metrics")


class GovernorLike(Protocol):
    def snapshot(self) -> GovernorSnapshot: ...


class JournalLike(Protocol):
    """What the metrics read from :class:`store.Journal` (public API only)."""

    def commit_stats(self) -> CommitStats: ...

    async def stats(self) -> object: ...

    async def cursors(self) -> dict[str, int]: ...

    async def list_runs(
        self, *, status: str | None = None, workflow: str | None = None, limit: int = 1_000
    ) -> list: ...

    async def list_exceptions(self, *, status: str | None = "open", limit: int = 1_000) -> list: ...


@dataclass
class JournalSample:
    """What :func:`sample_journal` last read from the journal (reported by the collector)."""

    taken_at: float = 0.0  # epoch seconds; 0 = never
    file_bytes: int = 0
    wal_bytes: int = 0
    max_seq: int = 0
    backlog: dict[str, int] = field(default_factory=dict)  # workflow → unfinished runs
    lag: dict[str, int] = field(default_factory=dict)  # workflow → events not dispatched
    open_exceptions: dict[tuple[str, str], int] = field(default_factory=dict)
    oldest_opened_at: dict[str, float] = field(default_factory=dict)  # workflow → epoch s
    money_at_risk: dict[str, Decimal] = field(default_factory=dict)  # currency → amount


def status_class(status: int | None) -> str:
    """``2xx`` for 204; ``error`` when there was no response at all."""
    if status is None or not 100 <= status <= 599:
        return "error"
    return f"{status // 100}xx"


def pssync_version() -> str:
    try:
        return metadata.version("pssync")
    except metadata.PackageNotFoundError:
        return "unknown"


class Metrics:
    """The facade: pssync's instruments on one fresh registry, label values bounded.

    ``systems``, ``workflows`` and ``currencies`` are the allowed label values (the
    configuration's); everything else is reported as ``"other"``. Known label sets are
    initialised to zero so every series exists before its first event.
    """

    def __init__(
        self,
        *,
        systems: Iterable[str] = (),
        workflows: Iterable[str] = (),
        currencies: Iterable[str] = (),
        version: str | None = None,
        python_version: str | None = None,
    ) -> None:
        self.registry = CollectorRegistry()
        self.systems = tuple(sorted(set(systems)))
        self.workflows = tuple(sorted(set(workflows)))
        self.currencies = tuple(sorted(set(currencies)))
        self.journal_sample = JournalSample()
        self._health: HealthView | None = None
        self._governors: dict[str, GovernorLike] = {}
        self._journal: JournalLike | None = None
        self._commits_seen = (0, 0)  # (commits, requests) already observed as batches
        r = self.registry

        self.build_info = Gauge(
            "pssync_build_info",
            "Always 1; the running pssync and Python versions as labels.",
            ["version", "python"],
            registry=r,
        )
        self.build_info.labels(
            version or pssync_version(), python_version or platform.python_version()
        ).set(1)

        self.events_appended = Counter(
            "pssync_events_appended_total",
            "Events newly appended to the journal (duplicates excluded), by source system.",
            ["system", "type"],
            registry=r,
        )
        self.runs = Counter(
            "pssync_runs_total",
            "Workflow run attempts by how they ended.",
            ["workflow", "outcome"],
            registry=r,
        )
        self.backlog = Gauge(
            "pssync_backlog_runs",
            "Unfinished workflow runs (pending, running, retry_wait, waiting).",
            ["workflow"],
            registry=r,
        )
        self.dispatch_lag = Gauge(
            "pssync_dispatch_lag_events",
            "Journal events not yet turned into runs by the dispatcher.",
            ["workflow"],
            registry=r,
        )
        self.api_requests = Counter(
            "pssync_api_requests_total",
            "HTTP requests to external systems, by status class (error = no response).",
            ["system", "method", "status_class"],
            registry=r,
        )
        self.api_latency = Histogram(
            "pssync_api_request_duration_seconds",
            "Latency of HTTP requests to external systems.",
            ["system"],
            buckets=API_LATENCY_BUCKETS_S,
            registry=r,
        )
        self.activation = Histogram(
            "pssync_activation_cycle_time_seconds",
            "SLA: deal won in the CRM until the project is active everywhere.",
            buckets=ACTIVATION_BUCKETS_S,
            registry=r,
        )
        self.approval_to_posting = Histogram(
            "pssync_approval_to_posting_delay_seconds",
            "SLA: time or expense approved in the PSA until posted in the ERP.",
            buckets=APPROVAL_TO_POSTING_BUCKETS_S,
            registry=r,
        )
        self.milestone_to_invoice = Histogram(
            "pssync_milestone_to_invoice_delay_seconds",
            "SLA: milestone completed in the PSA until its invoice is issued.",
            buckets=MILESTONE_TO_INVOICE_BUCKETS_S,
            registry=r,
        )
        self.commit_batch = Histogram(
            "pssync_journal_commit_batch_size",
            "Write requests per journal transaction (group commit).",
            buckets=COMMIT_BATCH_BUCKETS,
            registry=r,
        )
        self.journal_sample_errors = Counter(
            "pssync_journal_sample_errors_total",
            "Failed periodic reads of journal sizes, backlog and exceptions.",
            registry=r,
        )
        self.config_reload_ok = Gauge(
            "pssync_config_last_reload_successful",
            "1 if the last configuration load or reload succeeded, else 0.",
            registry=r,
        )
        self.config_reload_time = Gauge(
            "pssync_config_last_reload_success_timestamp_seconds",
            "When the configuration was last loaded or reloaded successfully (epoch).",
            registry=r,
        )
        self._init_series()
        r.register(_StateCollector(self))

    @classmethod
    def from_config(cls, config: Config, **kwargs: str) -> Metrics:
        """Label sets from ``config``: its systems, enabled workflows and ERP currencies."""
        currencies = {
            entity.currency
            for system in config.systems.values()
            for entity in system.legal_entities.values()
        }
        metrics = cls(
            systems=config.systems,
            workflows=[name for name, w in config.workflows.items() if w.enabled],
            currencies=currencies,
            **kwargs,
        )
        metrics.config_loaded(success=True)  # this config was just loaded
        return metrics

    def _init_series(self) -> None:
        for system in self.systems:
            self.api_latency.labels(system)
            for event_type in EVENT_TYPES:
                self.events_appended.labels(system, event_type)
            for method in ("GET", "POST"):
                for klass in ("2xx", "4xx", "5xx", "error"):
                    self.api_requests.labels(system, method, klass)
        for workflow in self.workflows:
            self.backlog.labels(workflow).set(0)
            self.dispatch_lag.labels(workflow).set(0)
            for outcome in RUN_OUTCOMES:
                self.runs.labels(workflow, outcome)

    # --- bounding ------------------------------------------------------------------

    def system(self, name: str) -> str:
        return name if name in self.systems else OTHER

    def workflow(self, name: str) -> str:
        return name if name in self.workflows else OTHER

    def currency(self, code: str | None) -> str:
        return code if code in self.currencies else OTHER

    # --- event-driven instruments ----------------------------------------------------

    def record_events(self, system: str, event_type: str, count: int = 1) -> None:
        """``count`` new events of ``event_type`` from ``system`` reached the journal."""
        if count > 0:
            kind = event_type if event_type in EVENT_TYPES else OTHER
            self.events_appended.labels(self.system(system), kind).inc(count)

    def record_run(self, workflow: str, outcome: str) -> None:
        """A run attempt of ``workflow`` ended with ``outcome`` (one of RUN_OUTCOMES)."""
        outcome = outcome if outcome in RUN_OUTCOMES else OTHER
        self.runs.labels(self.workflow(workflow), outcome).inc()

    def set_backlog(self, workflow: str, runs: int) -> None:
        """The dispatcher's own count of unfinished runs (the journal sampler also sets it)."""
        self.backlog.labels(self.workflow(workflow)).set(runs)

    def record_api_request(
        self, system: str, method: str, status: int | None, seconds: float
    ) -> None:
        """One HTTP request to ``system``; ``status=None`` when no response came back."""
        system = self.system(system)
        method = method.upper() if method.upper() in HTTP_METHODS else OTHER
        self.api_requests.labels(system, method, status_class(status)).inc()
        self.api_latency.labels(system).observe(seconds)

    def observe_activation(self, seconds: float) -> None:
        self.activation.observe(seconds)

    def observe_approval_to_posting(self, seconds: float) -> None:
        self.approval_to_posting.observe(seconds)

    def observe_milestone_to_invoice(self, seconds: float) -> None:
        self.milestone_to_invoice.observe(seconds)

    def observe_commit_batch(self, size: int) -> None:
        """One journal transaction carried ``size`` write requests."""
        self.commit_batch.observe(size)

    def config_loaded(self, *, success: bool, now: float | None = None) -> None:
        """Call after the startup load (success) and after every reload attempt."""
        self.config_reload_ok.set(1 if success else 0)
        if success:
            self.config_reload_time.set(time.time() if now is None else now)

    # --- pulled state ----------------------------------------------------------------

    def watch_health(self, health: HealthView) -> None:
        """Report ``pssync_actor_up`` and ``pssync_actor_restarts_total`` from ``health``."""
        self._health = health

    def watch_governor(self, system: str, governor: GovernorLike) -> None:
        """Report ``system``'s governor (quota, tokens, in-flight, pauses, throttling)."""
        self._governors[self.system(system)] = governor

    def watch_journal(self, journal: JournalLike) -> None:
        """Report the journal's commit counters (sync) at every scrape."""
        self._journal = journal

    async def refresh_journal(self, journal: JournalLike, *, now: float | None = None) -> None:
        """Read sizes, backlog, dispatch lag and open exceptions into the cache."""
        self.watch_journal(journal)
        stats = await journal.stats()
        cursors = await journal.cursors()
        backlog: dict[str, int] = dict.fromkeys(self.workflows, 0)
        for status in UNFINISHED_RUN_STATUSES:
            for run in await journal.list_runs(status=status, limit=SAMPLE_ROW_CAP):
                key = self.workflow(run.workflow)
                backlog[key] = backlog.get(key, 0) + 1
        exceptions = await journal.list_exceptions(status="open", limit=SAMPLE_ROW_CAP)
        open_counts: dict[tuple[str, str], int] = defaultdict(int)
        oldest: dict[str, float] = {}
        at_risk: dict[str, Decimal] = dict.fromkeys(self.currencies, Decimal(0))
        for exc in exceptions:  # oldest first
            workflow = self.workflow(exc.workflow)
            category = exc.category if exc.category in EXCEPTION_CATEGORIES else OTHER
            open_counts[workflow, category] += 1
            oldest.setdefault(workflow, exc.opened_at)
            if exc.amount is not None:
                currency = self.currency(exc.currency)
                at_risk[currency] = at_risk.get(currency, Decimal(0)) + abs(exc.amount)
        max_seq = int(getattr(stats, "max_seq", 0))
        self.journal_sample = JournalSample(
            taken_at=time.time() if now is None else now,
            file_bytes=int(getattr(stats, "file_bytes", 0)),
            wal_bytes=int(getattr(stats, "wal_bytes", 0)),
            max_seq=max_seq,
            backlog=backlog,
            lag={w: max(0, max_seq - cursors.get(w, 0)) for w in self.workflows},
            open_exceptions=dict(open_counts),
            oldest_opened_at=oldest,
            money_at_risk=at_risk,
        )
        for workflow, runs in backlog.items():
            self.backlog.labels(workflow).set(runs)
        for workflow, lag in self.journal_sample.lag.items():
            self.dispatch_lag.labels(workflow).set(lag)
        self._observe_commit_batches(journal.commit_stats())

    def _observe_commit_batches(self, stats: CommitStats) -> None:
        # The writer has no per-commit hook, so each sample observes the interval's mean
        # batch once per commit: _count and _sum are exact, the buckets approximate.
        commits, requests = self._commits_seen
        new_commits, new_requests = stats.commits - commits, stats.requests - requests
        if new_commits < 0:  # a reopened journal starts counting again
            new_commits, new_requests = stats.commits, stats.requests
        if new_commits > 0:
            mean = new_requests / new_commits
            for _ in range(min(new_commits, 10_000)):
                self.commit_batch.observe(mean)
        self._commits_seen = (stats.commits, stats.requests)


async def sample_journal(
    metrics: Metrics,
    journal: JournalLike,
    *,
    interval_s: float = 15.0,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Refresh ``metrics``' journal cache now and every ``interval_s`` until cancelled.

    A failed read is counted (``pssync_journal_sample_errors_total``) and logged; the
    previous sample stays, and its age shows in ``pssync_journal_sample_timestamp_seconds``.
    """
    started = False
    while True:
        try:
            await metrics.refresh_journal(journal)
        except PssyncError as exc:
            metrics.journal_sample_errors.inc()
            log.warning("metrics.journal_sample_failed", error=str(exc))
        if not started:
            started = True
            task_status.started()
        await trio.sleep(interval_s)


class _StateCollector(Collector):
    """Families read at scrape time from the actor tree, governors and the journal cache."""

    def __init__(self, metrics: Metrics) -> None:
        self._m = metrics

    def collect(self) -> Iterator[Metric]:
        yield from self._actors()
        yield from self._governors()
        yield from self._journal()
        yield from self._exceptions()

    def _actors(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "pssync_actor_up", "1 while the actor runs and heartbeats, else 0.", labels=["actor"]
        )
        restarts = CounterMetricFamily(
            "pssync_actor_restarts",
            "Restarts of the actor by its supervisor (resets when the supervisor restarts).",
            labels=["actor"],
        )
        health = self._m._health
        actors = []
        if health is not None:
            try:
                actors = health.actors()
            except RuntimeError:  # scraped outside the trio run (no clock): nothing to say
                actors = []
        for actor in actors:
            up.add_metric([actor.path], 1 if actor.alive else 0)
            restarts.add_metric([actor.path], actor.restarts)
        yield up
        yield restarts

    def _governors(self) -> Iterator[Metric]:
        m = self._m
        families = {
            "used": GaugeMetricFamily(
                "pssync_governor_quota_used_requests",
                "Requests counted against the rolling daily quota.",
                labels=["system"],
            ),
            "limit": GaugeMetricFamily(
                "pssync_governor_quota_limit_requests",
                "The rolling daily quota (absent when the vendor imposes none).",
                labels=["system"],
            ),
            "reserve": GaugeMetricFamily(
                "pssync_governor_quota_reserve_requests",
                "Quota kept for critical work (financial postings).",
                labels=["system"],
            ),
            "tokens": GaugeMetricFamily(
                "pssync_governor_tokens",
                "Rate-limit tokens available now (burst capacity left).",
                labels=["system"],
            ),
            "rate": GaugeMetricFamily(
                "pssync_governor_rate_requests_per_second",
                "The rate the governor currently allows (lowered while throttled).",
                labels=["system"],
            ),
            "in_flight": GaugeMetricFamily(
                "pssync_governor_in_flight_requests",
                "Requests in flight now.",
                labels=["system"],
            ),
            "max_concurrency": GaugeMetricFamily(
                "pssync_governor_max_concurrency_requests",
                "Requests allowed in flight at once.",
                labels=["system"],
            ),
            "queued": GaugeMetricFamily(
                "pssync_governor_queued_requests",
                "Requests waiting for a slot, by priority lane.",
                labels=["system", "lane"],
            ),
            "paused": GaugeMetricFamily(
                "pssync_governor_paused",
                "1 while the system is paused (vendor Retry-After or operator), else 0.",
                labels=["system"],
            ),
            "throttled": CounterMetricFamily(
                "pssync_api_throttled",
                "Throttling signals from the vendor (429, quota or concurrency errors).",
                labels=["system"],
            ),
        }
        for system in (*m.systems, *sorted(set(m._governors) - set(m.systems))):
            snap = _snapshot(m._governors.get(system))
            if snap is None:
                families["throttled"].add_metric([system], 0)
                families["paused"].add_metric([system], 0)
                families["in_flight"].add_metric([system], 0)
                continue
            families["used"].add_metric([system], snap.quota_used)
            if snap.quota_limit is not None:
                families["limit"].add_metric([system], snap.quota_limit)
            families["reserve"].add_metric([system], snap.quota_reserve)
            families["tokens"].add_metric([system], snap.tokens)
            families["rate"].add_metric([system], snap.effective_rate_per_s)
            families["in_flight"].add_metric([system], snap.in_flight)
            families["max_concurrency"].add_metric([system], snap.max_concurrency)
            for lane in GOVERNOR_LANES:
                families["queued"].add_metric([system, lane], snap.queued.get(lane, 0))
            families["paused"].add_metric([system], 1 if snap.paused_until is not None else 0)
            families["throttled"].add_metric([system], snap.throttle_count)
        yield from families.values()

    def _journal(self) -> Iterator[Metric]:
        m = self._m
        sample = m.journal_sample
        yield GaugeMetricFamily(
            "pssync_journal_size_bytes",
            "Size of the journal's main SQLite file.",
            value=sample.file_bytes,
        )
        yield GaugeMetricFamily(
            "pssync_journal_wal_size_bytes",
            "Size of the journal's write-ahead log.",
            value=sample.wal_bytes,
        )
        yield GaugeMetricFamily(
            "pssync_journal_events",
            "Events in the journal (highest sequence number).",
            value=sample.max_seq,
        )
        yield GaugeMetricFamily(
            "pssync_journal_sample_timestamp_seconds",
            "When the journal sizes, backlog and exceptions were last read (epoch; 0 = never).",
            value=sample.taken_at,
        )
        commits = m._journal.commit_stats() if m._journal is not None else None
        for name, help_text, attr in (
            ("pssync_journal_commits", "Journal transactions committed.", "commits"),
            (
                "pssync_journal_failed_commits",
                "Journal transactions that failed.",
                "failed_commits",
            ),
            ("pssync_journal_write_requests", "Write requests committed.", "requests"),
            ("pssync_journal_checkpoints", "WAL checkpoints run.", "checkpoints"),
        ):
            yield CounterMetricFamily(
                name, help_text, value=getattr(commits, attr) if commits is not None else 0
            )

    def _exceptions(self) -> Iterator[Metric]:
        m = self._m
        sample = m.journal_sample
        open_ = GaugeMetricFamily(
            "pssync_exceptions_open",
            "Open exceptions (work a person has to look at).",
            labels=["workflow", "category"],
        )
        counts = (
            dict.fromkeys(((w, c) for w in m.workflows for c in EXCEPTION_CATEGORIES), 0)
            | sample.open_exceptions
        )
        for (workflow, category), count in sorted(counts.items()):
            open_.add_metric([workflow, category], count)
        yield open_
        oldest = GaugeMetricFamily(
            "pssync_exceptions_oldest_age_seconds",
            "Age of the oldest open exception (0 when none is open).",
            labels=["workflow"],
        )
        now = time.time()
        ages = dict.fromkeys(m.workflows, 0.0) | {
            w: max(0.0, now - opened) for w, opened in sample.oldest_opened_at.items()
        }
        for workflow, age in sorted(ages.items()):
            oldest.add_metric([workflow], age)
        yield oldest
        money = GaugeMetricFamily(
            "pssync_exceptions_money_at_risk",
            "Sum of the absolute amounts of open exceptions, in units of the currency label.",
            labels=["currency"],
        )
        amounts: Mapping[str, Decimal] = (
            dict.fromkeys(m.currencies, Decimal(0)) | sample.money_at_risk
        )
        for currency, amount in sorted(amounts.items()):
            money.add_metric([currency], float(amount))
        yield money


def _snapshot(governor: GovernorLike | None) -> GovernorSnapshot | None:
    if governor is None:
        return None
    try:
        return governor.snapshot()
    except RuntimeError:  # scraped outside the trio run (no clock)
        return None
