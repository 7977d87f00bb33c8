"""The governor bench: a real child process, real sockets, real time."""

from __future__ import annotations

import pytest

from adapters.governor_bench import GovernorBenchResult, bench_governor, format_governor_table


@pytest.mark.slow
async def test_a_governor_at_the_vendors_limit_gets_no_429():
    result = await bench_governor(rate_per_s=20, requests=60, concurrency=4)

    assert result.throttled == 0
    assert result.failed == 0
    assert result.achieved_per_s >= 0.9 * 20
    # The long-run pace is the limit itself, not more: the sandbox would have said 429.
    assert result.sustained_per_s == pytest.approx(20, rel=0.05)
    assert result.governor_burst < result.sandbox_burst
    assert 0 <= result.wait_p50_s <= result.wait_p99_s <= result.wait_max_s


def test_the_table_names_every_figure_and_the_verdict():
    result = GovernorBenchResult(
        rate_per_s=50,
        sandbox_burst=50,
        governor_burst=45,
        requests=1000,
        concurrency=8,
        elapsed_s=19.1,
        achieved_per_s=52.36,
        sustained_per_s=50.0,
        throttled=1,
        failed=0,
        wait_p50_s=0.16,
        wait_p99_s=0.17,
        wait_max_s=0.2,
    )
    table = format_governor_table(result)
    assert "52.36 req/s (104.7% of L)" in table
    assert "429 responses                 1" in table
    assert "160.0 ms" in table
    assert "170.0 ms" in table
    assert table.rstrip().endswith("NOT met")  # one 429 is a miss
