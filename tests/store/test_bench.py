"""The append benchmark returns structured results and renders a table."""

from __future__ import annotations

from store.bench import bench_append, format_table


async def test_bench_append_reports_each_configuration(tmp_path) -> None:
    results = await bench_append(
        concurrency=(1, 8),
        synchronous=("NORMAL",),
        seconds=0.05,
        repeats=1,
        directory=str(tmp_path),
    )

    assert [(r.synchronous, r.concurrency) for r in results] == [("NORMAL", 1), ("NORMAL", 8)]
    for result in results:
        assert result.events > 0
        assert result.commits > 0
        assert result.events_per_s > 0
        assert result.mean_batch >= 1
    assert results[0].mean_batch == 1.0  # one appender cannot share a commit
    table = format_table(results)
    assert table.splitlines()[0].split()[:3] == ["sync", "appenders", "events/s"]
    assert len(table.splitlines()) == 3
    assert list(tmp_path.iterdir()) == []  # its files are cleaned up
