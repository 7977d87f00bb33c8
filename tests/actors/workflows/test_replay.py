"""Replay: re-running history creates replay runs that repeat no vendor effect."""

from __future__ import annotations

import pytest
import trio

from actors.workflows import (
    Dispatcher,
    Enabled,
    ReplaySelection,
    WorkflowSettings,
    WorkflowSpec,
    plan_replay,
    replay,
)

from .harness import (
    EPOCH,
    FAST,
    POST_TIME,
    POST_TIME_BATCHED,
    Harness,
    append,
    time_approved,
    wall,
)


async def run_history(
    harness: Harness, spec: WorkflowSpec = POST_TIME, settings: WorkflowSettings = FAST
) -> None:
    """Dispatch everything and run until every run of ``spec`` is finished."""
    await Dispatcher(harness.journal, [Enabled(spec, settings)], now=wall).dispatch_once()
    runs = await harness.journal.list_runs(workflow=spec.name)
    total = sum(run.status == "pending" for run in runs)
    async with trio.open_nursery() as nursery:
        runner = harness.runner(spec, settings)
        await nursery.start(runner.run)
        await harness.wait_for(lambda: len(harness.outcomes_of("completed")) == total)
        runner.request_stop()
    harness.outcomes.clear()


async def seed(harness: Harness) -> list[int]:
    """Six entries over two projects, recorded one hour apart."""
    return await append(
        harness.journal,
        *(
            time_approved(f"T{i}", project=f"P-{i % 2}", recorded_at=EPOCH + 3600 * i)
            for i in range(6)
        ),
    )


async def test_replay_of_a_seq_range_repeats_calls_but_no_effects(
    harness: Harness, autojump_clock
) -> None:
    seqs = await seed(harness)
    await run_history(harness)
    effects = dict(harness.vendor.effects)
    first_keys = [call.idempotency_key for call in harness.vendor.calls]

    result = await replay(
        harness.journal,
        POST_TIME,
        ReplaySelection(from_seq=seqs[1], to_seq=seqs[3]),
        now=wall(),
    )
    await run_history(harness)

    assert result.events == 3
    assert len(result.run_ids) == 3
    runs = [await harness.journal.get_run(run_id) for run_id in result.run_ids]
    assert [(run.replay, run.status, run.trigger_seqs) for run in runs] == [
        (True, "completed", (seqs[1],)),
        (True, "completed", (seqs[2],)),
        (True, "completed", (seqs[3],)),
    ]
    replayed = harness.vendor.calls[len(first_keys) :]
    assert len(replayed) == 6  # post and mark of three runs: called again…
    assert not any(call.applied for call in replayed)  # …and recognised by the vendor
    assert {call.idempotency_key for call in replayed} <= set(first_keys)
    assert harness.vendor.effects == effects


async def test_replay_since_a_time_or_of_one_key(harness: Harness, autojump_clock) -> None:
    seqs = await seed(harness)
    await run_history(harness)

    since = await plan_replay(harness.journal, POST_TIME, ReplaySelection(since=EPOCH + 3600 * 4))
    by_key = await plan_replay(harness.journal, POST_TIME, ReplaySelection(key="project:P-1"))

    assert [run.trigger_seqs for run in since.runs] == [(seqs[4],), (seqs[5],)]
    assert [run.trigger_seqs for run in by_key.runs] == [(seqs[1],), (seqs[3],), (seqs[5],)]
    assert all(run.replay for run in by_key.runs)
    assert by_key.run_ids == ()  # a plan creates nothing
    assert len(await harness.journal.list_runs(workflow="post_time")) == 6

    effects = dict(harness.vendor.effects)
    calls = len(harness.vendor.calls)
    await replay(harness.journal, POST_TIME, ReplaySelection(key="project:P-1"), now=wall())
    await run_history(harness)
    assert len(harness.vendor.calls) == calls + 6
    assert harness.vendor.effects == effects


async def test_batched_replay_keeps_the_original_groups(harness: Harness, autojump_clock) -> None:
    seqs = await append(harness.journal, *(time_approved(f"T{i}") for i in range(5)))
    settings = WorkflowSettings(max_batch=3)
    await run_history(harness, POST_TIME_BATCHED, settings)
    effects = dict(harness.vendor.effects)

    # The range cuts the first group (seqs 1-3) in the middle.
    result = await replay(
        harness.journal,
        POST_TIME_BATCHED,
        ReplaySelection(from_seq=seqs[2], to_seq=seqs[3]),
        now=wall(),
        max_batch=settings.max_batch,
    )
    await run_history(harness, POST_TIME_BATCHED, settings)

    assert [run.trigger_seqs for run in result.runs] == [tuple(seqs[0:3]), tuple(seqs[3:5])]
    assert harness.vendor.effects == effects


async def test_replay_leaves_undispatched_events_to_the_dispatcher(
    harness: Harness, autojump_clock
) -> None:
    await seed(harness)
    await run_history(harness)
    late = await append(harness.journal, time_approved("T9"))

    plan = await plan_replay(harness.journal, POST_TIME, ReplaySelection(from_seq=1))

    assert plan.events == 6
    assert plan.up_to_seq == late[0] - 1


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"from_seq": 1, "key": "k"}, {"to_seq": 3}, {"from_seq": 5, "to_seq": 2}],
)
def test_a_selection_names_exactly_one_range(kwargs) -> None:
    with pytest.raises(ValueError, match=r"replay needs|to_seq|from_seq"):
        ReplaySelection(**kwargs)
