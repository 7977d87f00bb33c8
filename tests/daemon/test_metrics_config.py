"""config/prometheus (promtool check/test rules) and config/grafana (the dashboard).

Every metric the alerts and dashboard query must be one the daemon exports, and every
dashboard expression must parse as PromQL (promtool checks it as a recording rule).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import trio

from adapters.governor import Governor, GovernorConfig
from daemon.metrics import Metrics

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = ROOT / "config" / "prometheus"
DASHBOARD = ROOT / "config" / "grafana" / "pssync.json"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed")

REQUIRED_ALERTS = {
    "PssyncBacklogStuck",
    "PssyncExceptionAging",
    "PssyncQuotaNearlySpent",
    "PssyncActorRestarting",
    "PssyncJournalWalGrowing",
    "PssyncJournalGrowing",
}


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run(
        [PROMTOOL, *args], capture_output=True, text=True, timeout=120, cwd=PROMETHEUS
    )


def exported_names() -> set[str]:
    """Every family and sample name a fresh registry exposes (``_total``, ``_bucket``…)."""
    metrics = Metrics(systems=["crm"], workflows=["deal_to_project"], currencies=["USD"])
    metrics.watch_governor(
        "crm", Governor(GovernorConfig(rate_per_s=1, burst=1, max_concurrency=1, daily_quota=5))
    )
    names: set[str] = set()

    async def collect() -> None:  # the governor reads trio's clock
        for family in metrics.registry.collect():
            names.add(family.name)
            if family.type == "counter":  # no actors here, so no samples to name it
                names.add(f"{family.name}_total")
            names.update(sample.name for sample in family.samples)

    trio.run(collect)
    return names


def referenced(text: str) -> set[str]:
    return set(re.findall(r"\bpssync_[a-z_]+\b", text))


@needs_promtool
def test_promtool_check_rules() -> None:
    result = promtool("check", "rules", "alerts.yml")
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_promtool_test_rules() -> None:
    result = promtool("test", "rules", "alerts_test.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_required_alert_exists_and_is_tested() -> None:
    rules = (PROMETHEUS / "alerts.yml").read_text()
    tests = (PROMETHEUS / "alerts_test.yml").read_text()
    alerts = set(re.findall(r"^\s*- alert: (\w+)", rules, re.MULTILINE))
    assert alerts >= REQUIRED_ALERTS
    tested = set(re.findall(r"alertname: (\w+)", tests))
    assert tested == alerts


def test_alerts_and_dashboard_only_query_exported_metrics() -> None:
    exported = exported_names()
    queries = [t["expr"] for p in dashboard()["panels"] for t in p.get("targets", [])]
    used = referenced((PROMETHEUS / "alerts.yml").read_text()) | referenced(" ".join(queries))
    assert used, "no pssync_ metric referenced"
    assert used <= exported, sorted(used - exported)


def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def test_dashboard_is_provisionable() -> None:
    dash = dashboard()
    assert dash["uid"] == "pssync-overview"
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    # No import-only ${DS_…} placeholders: they break file provisioning.
    assert "${DS_" not in DASHBOARD.read_text()
    assert "__inputs" not in dash
    for panel in dash["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}


def test_dashboard_panels_cover_the_operating_questions() -> None:
    queries = " ".join(
        target["expr"] for panel in dashboard()["panels"] for target in panel.get("targets", [])
    )
    for name in (
        "pssync_backlog_runs",
        "pssync_runs_total",
        "pssync_api_request_duration_seconds_bucket",
        "pssync_api_throttled_total",
        "pssync_governor_quota_used_requests",
        "pssync_exceptions_open",
        "pssync_exceptions_money_at_risk",
        "pssync_activation_cycle_time_seconds_bucket",
        "pssync_approval_to_posting_delay_seconds_bucket",
        "pssync_milestone_to_invoice_delay_seconds_bucket",
        "pssync_journal_size_bytes",
        "pssync_actor_restarts_total",
    ):
        assert name in queries, name


def test_dashboard_panels_do_not_overlap() -> None:
    taken: set[tuple[int, int]] = set()
    for panel in dashboard()["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        cells = {
            (grid["x"] + dx, grid["y"] + dy) for dx in range(grid["w"]) for dy in range(grid["h"])
        }
        assert not cells & taken, panel["title"]
        taken |= cells


@needs_promtool
def test_dashboard_queries_parse_as_promql(tmp_path: Path) -> None:
    rules = []
    for panel in dashboard()["panels"]:
        for target in panel.get("targets", []):
            expr = (
                target["expr"]
                .replace("$__rate_interval", "5m")
                .replace("$job", ".*")
                .replace("$instance", ".*")
            )
            rules.append(
                {"record": f"dashboard:panel_{panel['id']}:{target['refId']}", "expr": expr}
            )
    rules_file = tmp_path / "dashboard_rules.json"  # JSON is YAML
    rules_file.write_text(json.dumps({"groups": [{"name": "dashboard", "rules": rules}]}))

    result = promtool("check", "rules", str(rules_file))

    assert result.returncode == 0, result.stdout + result.stderr
