"""`promtool check metrics` on a real scrape of the metrics server, started in process.

.ci/checks-ops.sh does the same against `pssync run` once the server is wired into the
service; this test proves the exposition today. Skipped only where promtool is missing
(Debian: apt-get install prometheus).
"""

from __future__ import annotations

import shutil
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
import trio

from actors import ChildSpec, HealthView, Supervisor
from adapters.governor import Governor, GovernorConfig
from daemon.metrics import Metrics
from daemon.metrics_server import MetricsActor
from store import open_journal

PROMTOOL = shutil.which("promtool")
pytestmark = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool not installed (Debian: prometheus)"
)


async def test_scrape_passes_promtool_check_metrics(tmp_path: Path) -> None:
    metrics = Metrics(systems=["crm", "erp"], workflows=["deal_to_project"], currencies=["USD"])
    metrics.watch_governor(
        "crm", Governor(GovernorConfig(rate_per_s=5, burst=10, max_concurrency=4, daily_quota=10))
    )
    metrics.record_api_request("crm", "GET", 429, 0.8)
    metrics.record_run("deal_to_project", "completed")
    metrics.observe_activation(5400)
    metrics.config_loaded(success=True)
    async with open_journal(tmp_path / "journal.sqlite3") as journal:
        await journal.open_exception(
            workflow="deal_to_project",
            category="contract",
            owner="deal-desk",
            message="m",
            correlation_id="c",
            now=1_700_000_000.0,
            amount=Decimal("10"),
            currency="USD",
        )
        actor = MetricsActor(metrics, "127.0.0.1:0", journal=journal)
        root = Supervisor("root", [ChildSpec(name="metrics", factory=lambda: actor)])
        metrics.watch_health(HealthView(root))
        async with trio.open_nursery() as nursery:
            await nursery.start(root.run)
            while actor.address is None:
                await trio.lowlevel.checkpoint()
            async with httpx.AsyncClient() as client:
                response = await client.get(f"http://{actor.address}/metrics")
            root.request_stop()
    assert response.status_code == 200

    with trio.fail_after(60):
        result = await trio.run_process(
            [PROMTOOL, "check", "metrics"],
            stdin=response.content,
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )

    assert result.returncode == 0, (result.stdout + result.stderr).decode()
    assert b'pssync_exceptions_money_at_risk{currency="USD"} 10.0' in response.content
