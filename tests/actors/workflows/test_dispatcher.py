"""The dispatcher: events → runs with the cursor, batching, wake-ups, backlog."""

from __future__ import annotations

import pytest
import trio

from actors.workflows import Dispatcher, Enabled, WorkflowSettings
from store import Journal, open_journal

from .harness import (
    FAST,
    POST_TIME,
    POST_TIME_BATCHED,
    append,
    other_event,
    time_approved,
    wall,
)


def dispatcher(journal: Journal, *workflows: Enabled, **kwargs) -> Dispatcher:
    return Dispatcher(journal, workflows or (Enabled(POST_TIME, FAST),), now=wall, **kwargs)


async def test_one_run_per_workflow_and_event_with_the_cursor(journal: Journal) -> None:
    seqs = await append(
        journal,
        time_approved("T1", project="P-1"),
        other_event("x1"),
        time_approved("T2", project="P-2"),
        other_event("x2"),
    )
    batched = Enabled(POST_TIME_BATCHED, FAST)

    created = await dispatcher(journal, Enabled(POST_TIME, FAST), batched).dispatch_once()

    runs = await journal.list_runs(workflow="post_time")
    assert [(run.key, run.trigger_seqs) for run in runs] == [
        ("project:P-1", (seqs[0],)),
        ("project:P-2", (seqs[2],)),
    ]
    # The run carries the correlation id of its triggering event.
    assert runs[0].correlation_id == time_approved("T1").correlation_id
    assert created == 4  # two here, two for the batching workflow (one per key)
    # Both cursors moved past the non-triggering event at the end.
    assert await journal.cursors() == {"post_time": seqs[3], "post_time_batched": seqs[3]}


async def test_redispatch_after_a_crash_creates_no_duplicates(tmp_path) -> None:
    path = tmp_path / "journal.db"
    async with open_journal(path, synchronous="NORMAL") as journal:
        await append(journal, time_approved("T1"), time_approved("T2"))
        assert await dispatcher(journal).dispatch_once() == 2
    # A new process (new dispatcher, reopened file) picks up at the committed cursor.
    async with open_journal(path, synchronous="NORMAL") as journal:
        assert await dispatcher(journal).dispatch_once() == 0
        seqs = await append(journal, time_approved("T3"))
        # Even a cursor set back by hand does not duplicate a run: one per trigger.
        await journal.set_cursor("post_time", 0, wall())
        assert await dispatcher(journal).dispatch_once() == 1
        runs = await journal.list_runs(workflow="post_time")
    assert [run.trigger_seqs for run in runs] == [(1,), (2,), (seqs[0],)]


async def test_pages_through_the_journal(journal: Journal) -> None:
    seqs = await append(journal, *(time_approved(f"T{i}", project=f"P-{i}") for i in range(10)))

    created = await dispatcher(journal, page_size=3).dispatch_once()

    assert created == 10
    assert await journal.get_cursor("post_time") == seqs[-1]


async def test_batching_groups_one_keys_events_up_to_max_batch(journal: Journal) -> None:
    # A: 7 events, B: 2, interleaved; max_batch 3.
    keys = ["A", "B", "A", "A", "A", "B", "A", "A", "A"]
    seqs = await append(
        journal, *(time_approved(f"T{i}", project=key) for i, key in enumerate(keys))
    )
    settings = WorkflowSettings(max_batch=3)

    await dispatcher(journal, Enabled(POST_TIME_BATCHED, settings)).dispatch_once()

    runs = await journal.list_runs(workflow="post_time_batched")
    a = [seq for seq, key in zip(seqs, keys, strict=True) if key == "A"]
    b = [seq for seq, key in zip(seqs, keys, strict=True) if key == "B"]
    assert [(run.key, run.trigger_seqs) for run in runs] == [
        ("project:A", tuple(a[0:3])),
        ("project:B", tuple(b)),
        ("project:A", tuple(a[3:6])),
        ("project:A", tuple(a[6:])),
    ]
    # The group's correlation id is its first event's.
    assert runs[0].correlation_id == time_approved("T0", project="A").correlation_id


async def test_wakes_on_notify_and_on_the_fallback_poll(journal: Journal, autojump_clock) -> None:
    created: list[str] = []
    woken = trio.Event()

    def runs_created(workflow: str) -> None:
        created.append(workflow)
        woken.set()

    actor = dispatcher(journal, runs_created=runs_created, poll_interval_s=60.0)
    async with trio.open_nursery() as nursery:
        await nursery.start(actor.run)
        await append(journal, time_approved("T1"))
        start = trio.current_time()
        actor.notify()
        await woken.wait()
        assert trio.current_time() - start < 60.0
        woken = trio.Event()

        # Virtual time only passes once every task is blocked: the dispatcher is idle.
        await trio.sleep(1.0)
        await append(journal, time_approved("T2"))  # nobody notifies
        appended = trio.current_time()
        await woken.wait()
        # Found by the fallback poll, at most one interval after the last dispatch.
        assert 5.0 < trio.current_time() - appended <= 60.0
        actor.request_stop()

    assert created == ["post_time", "post_time"]
    assert len(await journal.list_runs(workflow="post_time")) == 2


async def test_backlog_counts_undispatched_events_and_unfinished_runs(journal: Journal) -> None:
    actor = dispatcher(journal)
    await append(journal, *(time_approved(f"T{i}", project=f"P-{i}") for i in range(5)))
    await append(journal, other_event("x1"), other_event("x2"))
    assert await actor.backlog("post_time") == 5

    await actor.dispatch_once()
    assert await actor.backlog("post_time") == 5  # now as pending runs

    claimed = await journal.claim_runs("me", wall(), 30.0, 2, "post_time")
    for run in claimed:
        await journal.complete_run(run.id, "me", wall())
    await append(journal, time_approved("T9", project="P-9"))
    assert await actor.backlog("post_time") == 4  # 3 runs + 1 new event

    capped = Dispatcher(journal, [Enabled(POST_TIME, WorkflowSettings(high_water_mark=2))])
    assert await capped.backlog("post_time") == 2


def test_settings_refuse_nonsense() -> None:
    with pytest.raises(ValueError, match="positive"):
        WorkflowSettings(width=0)
