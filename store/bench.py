"""Append throughput of the journal: N concurrent appenders, one event per await.

This is what group commit is for: each appender awaits one durable append at a time,
and the writer folds whatever is queued into one transaction. ``bench_append`` runs
every (synchronous, concurrency) pair ``repeats`` times on a fresh file and reports the
medians; ``format_table`` renders them for people (the CLI adds ``--json`` itself with
``msgspec.json.encode``). The benchmark reads the wall clock: it measures, it does not
decide anything.
"""

from __future__ import annotations

import hashlib
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from typing import Literal

import msgspec
import trio

from .connection import Synchronous
from .journal import open_journal
from .records import EventRecord

_BODY = msgspec.msgpack.encode({"type": "TimeApproved", "hours": "7.5", "project": "P-1"})


class BenchResult(msgspec.Struct, frozen=True, kw_only=True):
    """Median figures of one configuration over ``repeats`` runs."""

    synchronous: str
    concurrency: int
    events: int
    seconds: float
    events_per_s: float
    commits: int
    mean_batch: float
    repeats: int
    ids: str


IdLayout = Literal["streams", "ordered", "random"]
"""How envelope ids fall in the unique index, which decides how many index pages one
commit dirties: ``streams`` — each appender its own ascending range (a feed's object ids;
a batch of N appenders touches ~N index pages); ``ordered`` — ids ascend across
appenders (time-ordered ids such as ULIDs; a batch touches ~2 pages); ``random`` —
hash-like ids (a batch touches one page per event once the index is large)."""

_ID_LAYOUTS: dict[str, Callable[[int, int], str]] = {
    "streams": lambda index, n: f"psa:time_entry:{index:04d}{n:09d}:v1",
    "ordered": lambda index, n: f"psa:time_entry:{n:09d}{index:04d}:v1",
    "random": lambda index, n: hashlib.blake2b(f"{index}:{n}".encode(), digest_size=16).hexdigest(),
}


async def _one_run(
    directory: str,
    synchronous: Synchronous,
    concurrency: int,
    seconds: float,
    tag: str,
    ids: IdLayout,
) -> tuple[int, float, int, float]:
    path = os.path.join(directory, f"bench-{tag}.db")
    async with open_journal(path, synchronous=synchronous) as journal:
        counts = [0] * concurrency
        make_id = _ID_LAYOUTS[ids]

        async def appender(index: int, deadline: float) -> None:
            n = 0
            prefix = f"{tag}-{index}-"
            append = journal.append
            while time.perf_counter() < deadline:
                await append(
                    (
                        EventRecord(
                            id=make_id(index, n),
                            type="TimeApproved",
                            key=f"P-{index % 50}",
                            source="psa",
                            correlation_id=prefix,
                            occurred_at=0.0,
                            recorded_at=0.0,
                            body=_BODY,
                        ),
                    )
                )
                n += 1
            counts[index] = n

        before = journal.commit_stats()
        start = time.perf_counter()
        async with trio.open_nursery() as nursery:
            for index in range(concurrency):
                nursery.start_soon(appender, index, start + seconds)
        elapsed = time.perf_counter() - start
        after = journal.commit_stats()
    _remove(path)
    commits = after.commits - before.commits
    requests = after.requests - before.requests
    return sum(counts), elapsed, commits, requests / commits if commits else 0.0


def _remove(path: str) -> None:
    """Delete a finished run's files so repeats do not fill the disk."""
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.unlink(path + suffix)


async def bench_append(
    *,
    concurrency: Sequence[int] = (1, 10, 100),
    synchronous: Sequence[Synchronous] = ("FULL", "NORMAL"),
    seconds: float = 1.0,
    repeats: int = 3,
    directory: str | None = None,
    ids: IdLayout = "streams",
) -> list[BenchResult]:
    """Measure append throughput; one result (medians) per synchronous x concurrency.

    ``directory`` should be on the disk the journal will live on (fsync cost is the point
    of FULL); by default a temporary directory is used and removed. ``ids`` picks the
    envelope-id layout (see :data:`IdLayout`); it changes the cost of the unique index.
    """
    results: list[BenchResult] = []
    with tempfile.TemporaryDirectory(dir=directory, prefix="pssync-bench-") as tmp:
        for sync in synchronous:
            for width in concurrency:
                runs = [
                    await _one_run(tmp, sync, width, seconds, f"{sync}-{width}-{i}", ids)
                    for i in range(repeats)
                ]
                rates = [events / elapsed for events, elapsed, _, _ in runs]
                median_run = runs[rates.index(statistics.median_low(rates))]
                events, elapsed, commits, mean_batch = median_run
                results.append(
                    BenchResult(
                        synchronous=sync,
                        concurrency=width,
                        events=events,
                        seconds=round(elapsed, 3),
                        events_per_s=round(statistics.median(rates), 1),
                        commits=commits,
                        mean_batch=round(mean_batch, 2),
                        repeats=repeats,
                        ids=ids,
                    )
                )
    return results


def format_table(results: Sequence[BenchResult]) -> str:
    """A plain-text table of bench results, one line per configuration."""
    header = ("sync", "appenders", "events/s", "mean batch", "commits", "events", "seconds")
    rows = [
        (
            r.synchronous,
            str(r.concurrency),
            f"{r.events_per_s:,.0f}",
            f"{r.mean_batch:.1f}",
            str(r.commits),
            str(r.events),
            f"{r.seconds:.2f}",
        )
        for r in results
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(cell.rjust(width) for cell, width in zip(line, widths, strict=True))
        for line in [header, *rows]
    ]
    return "\n".join(lines)
