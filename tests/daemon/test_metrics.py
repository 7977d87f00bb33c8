"""Metrics: the families on a real loopback scrape, the facade, bounded labels, pulled state."""

from __future__ import annotations

import platform
from collections.abc import AsyncIterator
from decimal import Decimal
from functools import partial
from pathlib import Path

import httpx
import pytest
import trio
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from actors import Actor, ChildSpec, HealthView, Supervisor
from actors.errors import ConfigError
from adapters.governor import Governor, GovernorConfig
from daemon.config import MetricsConfig
from daemon.config_load import load_config
from daemon.metrics import OTHER, Metrics, sample_journal, status_class
from daemon.metrics_server import MetricsActor, metrics_child_spec, parse_listen, serve_metrics
from store import EventRecord, NewRun, open_journal

from .conftest import EXAMPLE

# Every family the daemon exports, by exposed name, with its type. Names carry their base
# unit (seconds, bytes) or what they count (requests, runs, events).
FAMILIES: dict[str, str] = {
    "pssync_build_info": "gauge",
    "pssync_events_appended": "counter",
    "pssync_runs": "counter",
    "pssync_backlog_runs": "gauge",
    "pssync_dispatch_lag_events": "gauge",
    "pssync_api_requests": "counter",
    "pssync_api_request_duration_seconds": "histogram",
    "pssync_api_throttled": "counter",
    "pssync_governor_quota_used_requests": "gauge",
    "pssync_governor_quota_limit_requests": "gauge",
    "pssync_governor_quota_reserve_requests": "gauge",
    "pssync_governor_tokens": "gauge",
    "pssync_governor_rate_requests_per_second": "gauge",
    "pssync_governor_in_flight_requests": "gauge",
    "pssync_governor_max_concurrency_requests": "gauge",
    "pssync_governor_queued_requests": "gauge",
    "pssync_governor_paused": "gauge",
    "pssync_exceptions_open": "gauge",
    "pssync_exceptions_oldest_age_seconds": "gauge",
    "pssync_exceptions_money_at_risk": "gauge",
    "pssync_actor_up": "gauge",
    "pssync_actor_restarts": "counter",
    "pssync_journal_size_bytes": "gauge",
    "pssync_journal_wal_size_bytes": "gauge",
    "pssync_journal_events": "gauge",
    "pssync_journal_sample_timestamp_seconds": "gauge",
    "pssync_journal_sample_errors": "counter",
    "pssync_journal_commits": "counter",
    "pssync_journal_failed_commits": "counter",
    "pssync_journal_write_requests": "counter",
    "pssync_journal_checkpoints": "counter",
    "pssync_journal_commit_batch_size": "histogram",
    "pssync_activation_cycle_time_seconds": "histogram",
    "pssync_approval_to_posting_delay_seconds": "histogram",
    "pssync_milestone_to_invoice_delay_seconds": "histogram",
    "pssync_config_last_reload_successful": "gauge",
    "pssync_config_last_reload_success_timestamp_seconds": "gauge",
}


def make_metrics() -> Metrics:
    return Metrics(
        systems=["crm", "erp"],
        workflows=["deal_to_project", "milestone_to_invoice"],
        currencies=["USD", "GBP"],
        version="1.2.3",
    )


async def scrape(address: str) -> str:
    async with httpx.AsyncClient() as client:
        response = await client.get(f"http://{address}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    found: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[sample.name, frozenset(sample.labels.items())] = sample.value
    return found


def value(text: str, name: str, **labels: str) -> float:
    return samples(text)[name, frozenset(labels.items())]


def local_samples(metrics: Metrics, name: str) -> list[Sample]:
    return [s for m in metrics.registry.collect() for s in m.samples if s.name == name]


@pytest.fixture
async def served() -> AsyncIterator[tuple[Metrics, str]]:
    metrics = make_metrics()
    async with trio.open_nursery() as nursery:
        address = await nursery.start(partial(serve_metrics, metrics, "127.0.0.1:0"))
        yield metrics, address
        nursery.cancel_scope.cancel()


async def test_every_family_is_served_over_loopback(served: tuple[Metrics, str]) -> None:
    _, address = served
    assert address.startswith("127.0.0.1:")

    text = await scrape(address)

    families = {f.name: f.type for f in text_string_to_metric_families(text)}
    exported = {name: kind for name, kind in families.items() if name.startswith("pssync_")}
    assert exported.keys() >= FAMILIES.keys(), sorted(FAMILIES.keys() - exported.keys())
    for name, kind in FAMILIES.items():
        assert exported[name] == kind, name
    unexpected = exported.keys() - FAMILIES.keys() - {f"{n}_created" for n in FAMILIES}
    assert not unexpected, f"add these to FAMILIES: {sorted(unexpected)}"
    # Base units only: no milliseconds, minutes, kilobytes…
    for name in exported:
        assert not any(unit in name for unit in ("_ms", "millis", "_minutes", "_kb", "_mb"))


async def test_build_info_names_version_and_python(served: tuple[Metrics, str]) -> None:
    _, address = served
    text = await scrape(address)
    labels = {"version": "1.2.3", "python": platform.python_version()}
    assert value(text, "pssync_build_info", **labels) == 1


async def test_known_label_sets_exist_before_the_first_event(
    served: tuple[Metrics, str],
) -> None:
    _, address = served
    text = await scrape(address)
    assert value(text, "pssync_runs_total", workflow="deal_to_project", outcome="parked") == 0
    assert value(text, "pssync_backlog_runs", workflow="milestone_to_invoice") == 0
    assert value(text, "pssync_events_appended_total", system="crm", type="deal.won") == 0
    assert value(text, "pssync_api_request_duration_seconds_count", system="erp") == 0
    ok = {"system": "crm", "method": "GET", "status_class": "2xx"}
    assert value(text, "pssync_api_requests_total", **ok) == 0
    assert value(text, "pssync_api_throttled_total", system="erp") == 0
    categories = {"workflow": "deal_to_project", "category": "mapping"}
    assert value(text, "pssync_exceptions_open", **categories) == 0
    assert value(text, "pssync_exceptions_oldest_age_seconds", workflow="deal_to_project") == 0
    assert value(text, "pssync_exceptions_money_at_risk", currency="GBP") == 0


async def test_facade_moves_the_right_series(served: tuple[Metrics, str]) -> None:
    metrics, address = served

    metrics.record_api_request("crm", "get", 200, 0.3)
    metrics.record_api_request("crm", "POST", 503, 12.0)
    metrics.record_api_request("erp", "GET", None, 30.0)
    metrics.record_run("deal_to_project", "completed")
    metrics.record_run("deal_to_project", "completed")
    metrics.record_run("milestone_to_invoice", "parked")
    metrics.record_events("crm", "deal.won", 3)
    metrics.set_backlog("deal_to_project", 42)
    metrics.observe_activation(2 * 3600)
    metrics.observe_approval_to_posting(600)
    metrics.observe_milestone_to_invoice(86_400)
    metrics.observe_commit_batch(7)
    metrics.config_loaded(success=True, now=1_700_000_000.0)
    text = await scrape(address)

    get_ok = {"system": "crm", "method": "GET", "status_class": "2xx"}
    assert value(text, "pssync_api_requests_total", **get_ok) == 1
    post_5xx = {"system": "crm", "method": "POST", "status_class": "5xx"}
    assert value(text, "pssync_api_requests_total", **post_5xx) == 1
    no_response = {"system": "erp", "method": "GET", "status_class": "error"}
    assert value(text, "pssync_api_requests_total", **no_response) == 1
    assert value(text, "pssync_api_request_duration_seconds_count", system="crm") == 2
    assert value(text, "pssync_api_request_duration_seconds_sum", system="crm") == 12.3
    assert value(text, "pssync_api_request_duration_seconds_bucket", system="crm", le="0.5") == 1
    done = {"workflow": "deal_to_project", "outcome": "completed"}
    assert value(text, "pssync_runs_total", **done) == 2
    parked = {"workflow": "milestone_to_invoice", "outcome": "parked"}
    assert value(text, "pssync_runs_total", **parked) == 1
    assert value(text, "pssync_events_appended_total", system="crm", type="deal.won") == 3
    assert value(text, "pssync_backlog_runs", workflow="deal_to_project") == 42
    assert value(text, "pssync_activation_cycle_time_seconds_bucket", le="14400.0") == 1
    assert value(text, "pssync_activation_cycle_time_seconds_bucket", le="3600.0") == 0
    assert value(text, "pssync_approval_to_posting_delay_seconds_sum") == 600
    assert value(text, "pssync_milestone_to_invoice_delay_seconds_count") == 1
    assert value(text, "pssync_journal_commit_batch_size_bucket", le="8.0") == 1
    assert value(text, "pssync_config_last_reload_successful") == 1
    stamp = value(text, "pssync_config_last_reload_success_timestamp_seconds")
    assert stamp == 1_700_000_000.0

    metrics.config_loaded(success=False)
    text = await scrape(address)
    assert value(text, "pssync_config_last_reload_successful") == 0
    assert value(text, "pssync_config_last_reload_success_timestamp_seconds") == stamp


def test_label_values_outside_the_configuration_become_other() -> None:
    metrics = make_metrics()

    metrics.record_api_request("crm-typo", "PROPFIND", 200, 0.1)
    metrics.record_run("nonexistent_workflow", "exploded")
    metrics.record_events("unknown-system", "unknown.type")
    metrics.watch_governor(
        "sneaky", Governor(GovernorConfig(rate_per_s=1, burst=1, max_concurrency=1))
    )

    requests = local_samples(metrics, "pssync_api_requests_total")
    labels = {(s.labels["system"], s.labels["method"]) for s in requests if s.value}
    assert labels == {(OTHER, OTHER)}
    runs = [s.labels for s in local_samples(metrics, "pssync_runs_total") if s.value]
    assert runs == [{"workflow": OTHER, "outcome": OTHER}]
    events = [s.labels for s in local_samples(metrics, "pssync_events_appended_total") if s.value]
    assert events == [{"system": OTHER, "type": OTHER}]
    systems = {
        s.labels["system"]
        for m in metrics.registry.collect()
        for s in m.samples
        if "system" in s.labels
    }
    assert systems == {"crm", "erp", OTHER}


def test_status_classes() -> None:
    assert [status_class(s) for s in (101, 204, 302, 429, 599, None, 0, 700)] == [
        "1xx",
        "2xx",
        "3xx",
        "4xx",
        "5xx",
        "error",
        "error",
        "error",
    ]


def test_each_metrics_has_its_own_registry() -> None:
    first, second = make_metrics(), make_metrics()
    first.record_run("deal_to_project", "completed")
    assert first.registry is not second.registry
    assert not any(s.value for s in local_samples(second, "pssync_runs_total"))


def test_from_config_takes_systems_workflows_and_currencies() -> None:
    config = load_config(EXAMPLE, environ={"STRIPE_API_KEY": "x"})

    metrics = Metrics.from_config(config)

    assert metrics.systems == ("billing", "crm", "erp", "psa")
    assert "deal_to_project" in metrics.workflows
    assert metrics.currencies == ("GBP", "USD")
    ok = local_samples(metrics, "pssync_config_last_reload_successful")
    assert [s.value for s in ok] == [1]


class FailsTwice(Actor[None]):
    """Fails on its first two starts, so its supervisor restarts it twice."""

    starts = 0

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        FailsTwice.starts += 1
        if FailsTwice.starts <= 2:
            raise RuntimeError("boom")
        async for _ in self.messages():
            pass


class Idle(Actor[None]):
    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        async for _ in self.messages():
            pass


async def test_actor_families_follow_the_supervision_tree(autojump_clock: trio.abc.Clock) -> None:
    FailsTwice.starts = 0
    metrics = make_metrics()
    children = [
        ChildSpec(name="idle", factory=lambda: Idle("idle")),
        ChildSpec(name="flaky", factory=lambda: FailsTwice("flaky"), required=False),
    ]
    root = Supervisor("root", children)
    metrics.watch_health(HealthView(root))
    async with trio.open_nursery() as nursery:
        await nursery.start(root.run)
        await trio.sleep(1.0)  # autojump: the flaky child fails and is restarted a few times

        up = {s.labels["actor"]: s.value for s in local_samples(metrics, "pssync_actor_up")}
        restarts = {
            s.labels["actor"]: s.value
            for s in local_samples(metrics, "pssync_actor_restarts_total")
        }
        root.request_stop()
    assert up["root"] == 1
    assert up["root/idle"] == 1
    assert restarts["root/idle"] == 0
    assert restarts["root/flaky"] == 2
    assert up["root/flaky"] == 1


async def test_governor_state_is_pulled_at_scrape_time(autojump_clock: trio.abc.Clock) -> None:
    metrics = make_metrics()
    config = GovernorConfig(
        rate_per_s=5, burst=10, max_concurrency=4, daily_quota=1000, quota_reserve=100
    )
    governor = Governor(config, name="crm")
    metrics.watch_governor("crm", governor)

    governor.observe_usage(950, 1000)
    governor.throttled()
    governor.pause_for(30)
    got = {
        name: {tuple(sorted(s.labels.items())): s.value for s in local_samples(metrics, name)}
        for name in (
            "pssync_governor_quota_used_requests",
            "pssync_governor_quota_limit_requests",
            "pssync_governor_quota_reserve_requests",
            "pssync_governor_paused",
            "pssync_api_throttled_total",
            "pssync_governor_max_concurrency_requests",
            "pssync_governor_queued_requests",
        )
    }
    crm = (("system", "crm"),)
    assert got["pssync_governor_quota_used_requests"][crm] == 950
    assert got["pssync_governor_quota_limit_requests"][crm] == 1000
    assert got["pssync_governor_quota_reserve_requests"][crm] == 100
    assert got["pssync_governor_paused"][crm] == 1
    assert got["pssync_api_throttled_total"][crm] == 1
    assert got["pssync_governor_max_concurrency_requests"][crm] == 4
    assert got["pssync_governor_queued_requests"][(("lane", "critical"), ("system", "crm"))] == 0
    # erp has no governor yet: zeros, no quota limit.
    assert got["pssync_governor_paused"][(("system", "erp"),)] == 0
    assert (("system", "erp"),) not in got["pssync_governor_quota_limit_requests"]


def event(event_id: str, seq_key: str = "D-1") -> EventRecord:
    return EventRecord(
        id=event_id,
        type="deal.won",
        key=seq_key,
        source="crm",
        correlation_id=f"corr-{event_id}",
        occurred_at=1_700_000_000.0,
        recorded_at=1_700_000_000.0,
    )


async def test_journal_sampler_reports_backlog_exceptions_and_sizes(tmp_path: Path) -> None:
    metrics = make_metrics()
    now = trio.current_time()
    async with open_journal(tmp_path / "journal.sqlite3") as journal:
        appended = await journal.append([event("e1"), event("e2", "D-2"), event("e3", "D-3")])
        await journal.create_runs(
            [
                NewRun(
                    workflow="deal_to_project",
                    key="D-1",
                    trigger_seqs=(appended.seqs[0],),
                    correlation_id="c1",
                ),
                NewRun(
                    workflow="deal_to_project",
                    key="D-2",
                    trigger_seqs=(appended.seqs[1],),
                    correlation_id="c2",
                ),
                NewRun(
                    workflow="reconcile",
                    key="D-3",
                    trigger_seqs=(appended.seqs[2],),
                    correlation_id="c3",
                ),
            ],
            now,
        )
        await journal.set_cursor("deal_to_project", appended.seqs[1], now)
        opened = 1_700_000_000.0
        for workflow, category, amount, currency in (
            ("milestone_to_invoice", "billing", Decimal("1200.50"), "USD"),
            ("milestone_to_invoice", "billing", Decimal("-300"), "USD"),
            ("deal_to_project", "mapping", Decimal("99"), "JPY"),
            ("deal_to_project", "no-such-category", None, None),
        ):
            await journal.open_exception(
                workflow=workflow,
                category=category,
                owner="billing-ops",
                message="m",
                correlation_id="c",
                now=opened,
                amount=amount,
                currency=currency,
            )
            opened += 60

        async with trio.open_nursery() as nursery:
            await nursery.start(partial(sample_journal, metrics, journal, interval_s=3600))
            nursery.cancel_scope.cancel()

        def one(name: str, **labels: str) -> float:
            [match] = [s.value for s in local_samples(metrics, name) if s.labels == labels]
            return match

        assert one("pssync_backlog_runs", workflow="deal_to_project") == 2
        assert one("pssync_backlog_runs", workflow=OTHER) == 1  # reconcile is not configured
        assert one("pssync_dispatch_lag_events", workflow="deal_to_project") == 1
        assert one("pssync_dispatch_lag_events", workflow="milestone_to_invoice") == 3
        assert (
            one("pssync_exceptions_open", workflow="milestone_to_invoice", category="billing") == 2
        )
        assert one("pssync_exceptions_open", workflow="deal_to_project", category="mapping") == 1
        assert one("pssync_exceptions_open", workflow="deal_to_project", category=OTHER) == 1
        assert one("pssync_exceptions_money_at_risk", currency="USD") == 1500.5
        assert one("pssync_exceptions_money_at_risk", currency=OTHER) == 99
        assert one("pssync_exceptions_money_at_risk", currency="GBP") == 0
        age = one("pssync_exceptions_oldest_age_seconds", workflow="milestone_to_invoice")
        assert age > 1_700_000_000.0 - 1_700_000_000.0 + 86_400  # opened in 2023: old
        assert one("pssync_journal_size_bytes") > 0
        assert one("pssync_journal_events") == 3
        assert one("pssync_journal_commits_total") >= 1
        assert one("pssync_journal_commit_batch_size_count") == one("pssync_journal_commits_total")
        assert one("pssync_journal_sample_timestamp_seconds") > 1_700_000_000.0
        assert one("pssync_journal_sample_errors_total") == 0


def test_listen_must_be_loopback_unless_allowed() -> None:
    assert parse_listen("127.0.0.1:9464") == ("127.0.0.1", 9464)
    assert parse_listen("[::1]:9464") == ("::1", 9464)
    assert parse_listen("localhost:0") == ("localhost", 0)
    with pytest.raises(ConfigError, match="not a loopback address"):
        parse_listen("0.0.0.0:9464")
    with pytest.raises(ConfigError, match="not a loopback address"):
        parse_listen("10.1.2.3:9464")
    assert parse_listen("10.1.2.3:9464", allow_non_loopback=True) == ("10.1.2.3", 9464)
    for bad in ("9464", ":9464", "127.0.0.1:", "127.0.0.1:http", "127.0.0.1:70000"):
        with pytest.raises(ConfigError, match="expected HOST:PORT"):
            parse_listen(bad)


def test_child_spec_checks_listen_now_and_honours_enabled() -> None:
    metrics = make_metrics()
    assert metrics_child_spec(metrics, MetricsConfig(enabled=False)) == []
    [spec] = metrics_child_spec(metrics, MetricsConfig(listen="127.0.0.1:9464"))
    assert spec.name == "metrics"
    assert spec.required is False
    assert isinstance(spec.factory(), MetricsActor)
    with pytest.raises(ConfigError):
        metrics_child_spec(metrics, MetricsConfig(listen="0.0.0.0:9464"))


async def test_metrics_actor_serves_under_a_supervisor(tmp_path: Path) -> None:
    metrics = make_metrics()
    async with open_journal(tmp_path / "journal.sqlite3") as journal:
        actor = MetricsActor(metrics, "127.0.0.1:0", journal=journal)
        root = Supervisor("root", [ChildSpec(name="metrics", factory=lambda: actor)])
        metrics.watch_health(HealthView(root))
        async with trio.open_nursery() as nursery:
            await nursery.start(root.run)
            while actor.address is None:  # bound right after started(); no sleeps
                await trio.lowlevel.checkpoint()
            text = await scrape(actor.address)
            root.request_stop()
    assert value(text, "pssync_actor_up", actor="root/metrics") == 1
    assert value(text, "pssync_journal_sample_timestamp_seconds") > 0


async def test_metrics_actor_survives_a_busy_port(autojump_clock: trio.abc.Clock) -> None:
    # The only I/O is a bind() that fails at once (the port is taken), never a wait, so the
    # mock clock can jump over the retry delay.
    with trio.socket.socket() as holder:
        await holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        actor = MetricsActor(make_metrics(), f"127.0.0.1:{port}")
        async with trio.open_nursery() as nursery:
            await nursery.start(actor.run)
            await trio.sleep(1)
            assert actor.address is None
            assert not actor.is_wedged()
            actor.request_stop()
