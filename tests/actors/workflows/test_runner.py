"""The runner: durable steps, crash recovery, ordering, width, failure policy, logs."""

from __future__ import annotations

import dataclasses
import itertools
from decimal import Decimal

import msgspec
import pytest
import structlog
import trio
import trio.lowlevel

from actors.errors import PayloadError, PermanentError, RetryableError, ThrottledError
from actors.messages import Money
from actors.workflows import (
    BackoffPolicy,
    Dispatcher,
    Enabled,
    RunContext,
    WorkflowSettings,
    WorkflowSpec,
    idempotency_key,
)
from store import Journal

from .harness import (
    EPOCH,
    FAST,
    POST_TIME,
    Harness,
    append,
    post_time,
    record,
    time_approved,
    wall,
)

EXACT = WorkflowSettings(
    width=4,
    max_attempts=3,
    lease_s=30.0,
    backoff=BackoffPolicy(initial_s=1.0, max_s=60.0, multiplier=2.0, jitter_fraction=0.0),
)


async def dispatch(journal: Journal, spec: WorkflowSpec = POST_TIME, settings=FAST) -> None:
    await Dispatcher(journal, [Enabled(spec, settings)], now=wall).dispatch_once()


async def test_runs_execute_steps_and_complete(harness: Harness, autojump_clock) -> None:
    await append(harness.journal, time_approved("T1", project="P-1"), time_approved("T2"))
    await dispatch(harness.journal)

    async with trio.open_nursery() as nursery:
        runner = harness.runner()
        await nursery.start(runner.run)
        await harness.wait_for(lambda: len(harness.outcomes_of("completed")) == 2)
        runner.request_stop()

    runs = await harness.journal.list_runs(workflow="post_time")
    assert [run.status for run in runs] == ["completed", "completed"]
    assert [call.op for call in harness.vendor.calls] == ["post", "mark", "post", "mark"]
    first = harness.vendor.calls[0]
    # The vendor gets the originating event's correlation id and a key derived from the
    # workflow, the trigger event ids and the step name.
    envelope = time_approved("T1")
    assert first.correlation_id == envelope.correlation_id
    assert first.idempotency_key == idempotency_key("post_time", (envelope.id,), "post")
    steps = await harness.journal.get_steps(runs[0].id)
    assert msgspec.msgpack.decode(steps["post"].result) == {"document": "POST-1", "hours": "2"}


async def test_one_key_in_order_and_keys_in_parallel_up_to_width(
    harness: Harness, autojump_clock
) -> None:
    harness.vendor.call_duration_s = 1.0
    keys = [f"P-{k}" for k in range(6)]
    events = [
        time_approved(f"T{k}-{i}", project=key) for i in range(3) for k, key in enumerate(keys)
    ]
    await append(harness.journal, *events)
    await dispatch(harness.journal)

    async with trio.open_nursery() as nursery:
        runner = harness.runner(settings=WorkflowSettings(width=3))
        await nursery.start(runner.run)
        await harness.wait_for(lambda: len(harness.outcomes_of("completed")) == 18)
        runner.request_stop()

    assert harness.vendor.max_running == 3
    posts = harness.vendor.calls_of("post")
    for key in keys:
        mine = [call for call in posts if call.key == f"project:{key}"]
        # In event order, and each run starts after the previous one's two 1 s calls.
        assert [call.payload[0] for call in mine] == [f"T{key[2:]}-{i}" for i in range(3)]
        assert all(b.at - a.at >= 2.0 for a, b in itertools.pairwise(mine))


async def test_completed_step_is_not_repeated_after_a_crash(
    harness: Harness, autojump_clock
) -> None:
    await append(harness.journal, time_approved("T1"))
    await dispatch(harness.journal)
    gate = harness.vendor.hold_after_effect["mark"] = trio.Event()

    async with trio.open_nursery() as nursery:  # process A: dies during "mark"
        await nursery.start(harness.runner(owner="host:1:a").run)
        await harness.wait_for(lambda: len(harness.vendor.calls_of("mark")) == 1)
        crashed_at = trio.current_time()
        nursery.cancel_scope.cancel()
    [run] = await harness.journal.list_runs(workflow="post_time")
    assert run.status == "running"
    assert set(await harness.journal.get_steps(run.id)) == {"post"}

    gate.set()
    async with trio.open_nursery() as nursery:  # process B: after A's lease expires
        runner = harness.runner(owner="host:2:b")
        await nursery.start(runner.run)
        await harness.wait_for(lambda: harness.outcomes_of("completed"))
        runner.request_stop()

    assert len(harness.vendor.calls_of("post")) == 1  # memoised
    marks = harness.vendor.calls_of("mark")
    assert len(marks) == 2
    assert marks[1].at >= crashed_at + FAST.lease_s - FAST.lease_s / 3
    assert marks[1].at >= run.lease_expires_at - EPOCH
    [done] = await harness.journal.list_runs(workflow="post_time")
    assert (done.status, done.attempts) == ("completed", 2)


async def test_crash_after_the_effect_before_the_record_is_deduplicated_by_the_vendor(
    harness: Harness, autojump_clock
) -> None:
    await append(harness.journal, time_approved("T1"))
    await dispatch(harness.journal)
    gate = harness.vendor.hold_after_effect["post"] = trio.Event()

    async with trio.open_nursery() as nursery:
        await nursery.start(harness.runner(owner="host:1:a").run)
        await harness.wait_for(lambda: harness.vendor.calls_of("post"))
        nursery.cancel_scope.cancel()  # the vendor applied it; we never recorded it
    gate.set()
    async with trio.open_nursery() as nursery:
        runner = harness.runner(owner="host:2:b")
        await nursery.start(runner.run)
        await harness.wait_for(lambda: harness.outcomes_of("completed"))
        runner.request_stop()

    first, second = harness.vendor.calls_of("post")
    assert first.idempotency_key == second.idempotency_key
    assert (first.applied, second.applied) == (True, False)
    assert len([key for key in harness.vendor.effects if key == first.idempotency_key]) == 1


async def test_retryable_failures_back_off_exactly_then_open_an_exception(
    harness: Harness, autojump_clock
) -> None:
    harness.vendor.fail["post"].extend(RetryableError("503", system="erp") for _ in range(3))
    await append(harness.journal, time_approved("T1", hours="3", rate="100.00"))
    await dispatch(harness.journal)

    async with trio.open_nursery() as nursery:
        runner = harness.runner(settings=EXACT)
        await nursery.start(runner.run)
        await harness.wait_for(lambda: harness.outcomes_of("parked"))
        runner.request_stop()

    times = [call.at for call in harness.vendor.calls_of("post")]
    assert [t - times[0] for t in times] == pytest.approx([0.0, 1.0, 3.0], abs=1e-6)
    assert [o.outcome for o in harness.outcomes] == ["retry", "retry", "parked"]
    [exception] = await harness.journal.list_exceptions()
    assert (exception.category, exception.owner) == ("time", "time-desk")
    assert (exception.amount, exception.currency) == (Decimal("300.00"), "USD")
    assert "gave up after 3 attempts" in exception.message
    assert "step 'post'" in exception.message
    assert "503" in exception.message
    [run] = await harness.journal.list_runs(workflow="post_time")
    assert run.status == "waiting"


async def test_throttling_waits_at_least_retry_after(harness: Harness, autojump_clock) -> None:
    harness.vendor.fail["post"].append(ThrottledError("429", retry_after_s=10.0))
    await append(harness.journal, time_approved("T1"))
    await dispatch(harness.journal)

    async with trio.open_nursery() as nursery:
        runner = harness.runner(settings=EXACT)
        await nursery.start(runner.run)
        await harness.wait_for(lambda: harness.outcomes_of("completed"))
        runner.request_stop()

    first, second = harness.vendor.calls_of("post")
    assert second.at - first.at == pytest.approx(10.0, abs=1e-6)


async def test_permanent_failure_opens_an_exception_at_once(
    harness: Harness, autojump_clock
) -> None:
    harness.vendor.fail["post"].append(PermanentError("invalid subsidiary", system="erp"))
    await append(harness.journal, time_approved("T1", hours="1.5", rate="200.00"))
    await dispatch(harness.journal)

    async with trio.open_nursery() as nursery:
        runner = harness.runner()
        await nursery.start(runner.run)
        await harness.wait_for(lambda: harness.outcomes_of("parked"))
        runner.request_stop()

    assert len(harness.vendor.calls_of("post")) == 1
    [exception] = await harness.journal.list_exceptions()
    assert (exception.category, exception.owner) == ("time", "time-desk")
    assert (exception.amount, exception.currency) == (Decimal("300.00"), "USD")
    assert exception.message == "step 'post': PermanentError: erp: invalid subsidiary"
    detail = msgspec.json.decode(exception.detail)
    assert detail["system"] == "erp"
    assert detail["step"] == "post"
    assert detail["trigger_ids"] == [time_approved("T1").id]


async def test_payload_errors_are_mapping_exceptions_and_bugs_do_not_stop_the_runner(
    harness: Harness, autojump_clock
) -> None:
    harness.vendor.fail["post"].extend(
        [PayloadError("unexpected null", where="erp at $.id"), ZeroDivisionError("bug")]
    )
    await append(
        harness.journal,
        time_approved("T1", project="P-1"),
        time_approved("T2", project="P-2"),
        time_approved("T3", project="P-3"),
    )
    await dispatch(harness.journal)

    async with trio.open_nursery() as nursery:
        runner = harness.runner(settings=WorkflowSettings(width=1))
        await nursery.start(runner.run)
        await harness.wait_for(lambda: len(harness.outcomes) == 3)
        runner.request_stop()

    assert [o.outcome for o in harness.outcomes] == ["parked", "parked", "completed"]
    mapping, bug = await harness.journal.list_exceptions()
    assert (mapping.category, mapping.owner) == ("mapping", "integration-team")
    assert (bug.category, bug.owner) == ("time", "time-desk")
    assert bug.message == "unexpected error in step 'post': ZeroDivisionError: bug"
    assert "ZeroDivisionError" in "".join(msgspec.json.decode(bug.detail)["traceback"])


async def test_business_failure_names_its_category_and_amount(
    harness: Harness, autojump_clock
) -> None:
    async def validate(ctx: RunContext) -> None:
        ctx.fail(
            "project",
            "project P-1 has no legal entity",
            amount=Money.of("1250.00", "EUR"),
            detail={"project": "P-1"},
        )

    spec = WorkflowSpec(name="validate", triggers=("time.approved",), run=validate, category="time")
    await append(harness.journal, time_approved("T1"))
    await dispatch(harness.journal, spec)

    async with trio.open_nursery() as nursery:
        runner = harness.runner(spec)
        await nursery.start(runner.run)
        await harness.wait_for(lambda: harness.outcomes_of("parked"))
        runner.request_stop()

    [exception] = await harness.journal.list_exceptions()
    assert (exception.category, exception.owner) == ("project", "pmo")
    assert (exception.amount, exception.currency) == (Decimal("1250.00"), "EUR")
    assert exception.message == "project P-1 has no legal entity"
    assert msgspec.json.decode(exception.detail)["detail"] == {"project": "P-1"}


async def test_retry_resumes_at_the_first_unfinished_step(harness: Harness, autojump_clock) -> None:
    harness.vendor.fail["mark"].extend(RetryableError("timeout") for _ in range(3))
    await append(harness.journal, time_approved("T1"))
    await dispatch(harness.journal)

    async with trio.open_nursery() as nursery:
        runner = harness.runner(settings=EXACT)
        await nursery.start(runner.run)
        await harness.wait_for(lambda: harness.outcomes_of("parked"))
        [exception] = await harness.journal.list_exceptions()

        harness.vendor.fail["mark"].append(RetryableError("timeout again"))
        await harness.journal.retry_exception(exception.id, "ops", "erp is back", wall())
        runner.notify()
        await harness.wait_for(lambda: harness.outcomes_of("completed"))
        runner.request_stop()

    assert len(harness.vendor.calls_of("post")) == 1  # never repeated
    assert len(harness.vendor.calls_of("mark")) == 5  # 3, then a fresh budget: fail + ok
    assert [o.outcome for o in harness.outcomes] == [
        "retry",
        "retry",
        "parked",
        "retry",
        "completed",
    ]
    assert [o.attempt for o in harness.outcomes] == [1, 2, 3, 1, 2]


async def test_resolve_cancels_the_run_and_releases_its_key(
    harness: Harness, autojump_clock
) -> None:
    harness.vendor.fail["post"].append(PermanentError("closed period"))
    await append(harness.journal, time_approved("T1"), time_approved("T2"))
    await dispatch(harness.journal)

    async with trio.open_nursery() as nursery:
        runner = harness.runner()
        await nursery.start(runner.run)
        await harness.wait_for(lambda: harness.outcomes_of("parked"))
        # The key's second run waits behind the parked one.
        assert len(harness.vendor.calls_of("post")) == 1
        [exception] = await harness.journal.list_exceptions()
        await harness.journal.resolve_exception(exception.id, "ops", "posted by hand", wall())
        runner.notify()
        await harness.wait_for(lambda: harness.outcomes_of("completed"))
        runner.request_stop()

    first, second = await harness.journal.list_runs(workflow="post_time")
    assert (first.status, second.status) == ("cancelled", "completed")


async def test_lost_lease_abandons_the_run_without_recording(
    harness: Harness, autojump_clock
) -> None:
    await append(harness.journal, time_approved("T1"))
    await dispatch(harness.journal)
    gate = harness.vendor.hold_after_effect["post"] = trio.Event()

    async with trio.open_nursery() as nursery:
        stalled = harness.runner(owner="host:1:a")
        await nursery.start(stalled.run)
        await harness.wait_for(lambda: harness.vendor.calls_of("post"))
        # Another process whose clock is past the lease takes the run over.
        thief = harness.runner(owner="host:2:b", now=lambda: wall() + 3600)
        await nursery.start(thief.run)
        await harness.wait_for(lambda: harness.outcomes_of("lease_lost"))
        gate.set()
        await harness.wait_for(lambda: harness.outcomes_of("completed"))
        stalled.request_stop()
        thief.request_stop()

    assert [o.outcome for o in harness.outcomes] == ["lease_lost", "completed"]
    [run] = await harness.journal.list_runs(workflow="post_time")
    assert (run.status, run.lease_owner) == ("completed", None)


async def test_correlation_id_is_in_every_log_line_of_a_run(
    harness: Harness, autojump_clock
) -> None:
    harness.vendor.fail["post"].append(PermanentError("nope"))
    envelope = time_approved("T1")
    await append(harness.journal, envelope)
    await dispatch(harness.journal)

    with structlog.testing.capture_logs(
        processors=[structlog.contextvars.merge_contextvars]
    ) as logs:
        async with trio.open_nursery() as nursery:
            runner = harness.runner()
            await nursery.start(runner.run)
            await harness.wait_for(lambda: harness.outcomes_of("parked"))
            [exception] = await harness.journal.list_exceptions()
            await harness.journal.retry_exception(exception.id, "ops", "", wall())
            runner.notify()
            await harness.wait_for(lambda: harness.outcomes_of("completed"))
            runner.request_stop()

    lifecycle = {"workflow runner started", "workflow runner stopped"}
    lines = [entry for entry in logs if entry["event"] not in lifecycle]
    assert {entry["event"] for entry in lines} >= {
        "run started",
        "posting time",
        "step completed",
        "run parked on an exception",
        "run completed",
    }
    assert all(entry.get("correlation_id") == envelope.correlation_id for entry in lines)
    assert exception.correlation_id == envelope.correlation_id
    assert msgspec.json.decode(exception.detail)["correlation_id"] == envelope.correlation_id


async def test_undecodable_trigger_is_a_mapping_exception(harness: Harness, autojump_clock) -> None:
    good = time_approved("T1")
    bad = msgspec.structs.replace(record(good), id="broken", body=b"\xc1")
    await harness.journal.append([bad])
    await dispatch(harness.journal)

    async with trio.open_nursery() as nursery:
        runner = harness.runner()
        await nursery.start(runner.run)
        await harness.wait_for(lambda: harness.outcomes_of("parked"))
        runner.request_stop()

    [exception] = await harness.journal.list_exceptions()
    assert exception.category == "mapping"
    assert "journal seq 1" in exception.message
    assert harness.vendor.calls == []


async def test_step_names_must_be_unique_and_not_reserved(harness: Harness, autojump_clock) -> None:
    async def twice(ctx: RunContext) -> None:
        await post_time(ctx)
        await ctx.step("post", trio.lowlevel.checkpoint, result_type=type(None))

    spec = WorkflowSpec(name="twice", triggers=("time.approved",), run=twice, category="time")
    await append(harness.journal, time_approved("T1"))
    await dispatch(harness.journal, spec)

    async with trio.open_nursery() as nursery:
        runner = harness.runner(spec)
        await nursery.start(runner.run)
        await harness.wait_for(lambda: harness.outcomes_of("parked"))
        runner.request_stop()

    [exception] = await harness.journal.list_exceptions()
    assert "step 'post' is used twice" in exception.message


async def test_a_run_that_keeps_killing_its_process_is_parked(
    harness: Harness, autojump_clock
) -> None:
    await append(harness.journal, time_approved("T1"))
    await dispatch(harness.journal)
    # Three processes claimed it and died (their leases lapsed) without a word.
    for _ in range(FAST.max_attempts):
        await harness.journal.claim_runs("dead", wall(), 1.0, 1, "post_time")
        await trio.sleep(1.0)

    async with trio.open_nursery() as nursery:
        runner = harness.runner()
        await nursery.start(runner.run)
        await harness.wait_for(lambda: harness.outcomes_of("parked"))
        runner.request_stop()

    assert harness.vendor.calls == []
    [exception] = await harness.journal.list_exceptions()
    assert exception.message.startswith("claimed 4 times without finishing")


async def test_a_backoff_ending_while_every_slot_is_busy_waits_for_a_slot(
    harness: Harness, autojump_clock
) -> None:
    harness.vendor.call_duration_s = 5.0
    harness.vendor.fail["post"].append(RetryableError("503"))
    await append(harness.journal, time_approved("A", project="A"), time_approved("B", project="B"))
    await dispatch(harness.journal)

    async with trio.open_nursery() as nursery:
        runner = harness.runner(settings=dataclasses.replace(EXACT, width=1))
        await nursery.start(runner.run)
        await harness.wait_for(lambda: len(harness.outcomes_of("completed")) == 2)
        runner.request_stop()

    # A fails at 5 s (due again at 6 s) while B holds the only slot until 15 s.
    assert [(c.payload[0], c.at) for c in harness.vendor.calls_of("post")] == [
        ("A", pytest.approx(0.0, abs=1e-6)),
        ("B", pytest.approx(5.0, abs=1e-6)),
        ("A", pytest.approx(15.0, abs=1e-6)),
    ]


async def test_dispatcher_and_runner_wired_together(harness: Harness, autojump_clock) -> None:
    runner = harness.runner(poll_interval_s=3_600.0)
    dispatcher = Dispatcher(
        harness.journal,
        [Enabled(POST_TIME, FAST)],
        now=wall,
        runs_created=lambda workflow: runner.notify(),
        poll_interval_s=3_600.0,
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(runner.run)
        await nursery.start(dispatcher.run)
        start = trio.current_time()
        await append(harness.journal, time_approved("T1"), time_approved("T2", project="P-2"))
        dispatcher.notify()  # what a poller does after an append
        await harness.wait_for(lambda: len(harness.outcomes_of("completed")) == 2)
        # Woken, not polled: well within one heartbeat.
        assert trio.current_time() - start < 1.0
        dispatcher.request_stop()
        runner.request_stop()

    assert len(harness.vendor.effects) == 4
