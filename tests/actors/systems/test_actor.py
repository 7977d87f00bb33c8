"""The system actor: lane priority, errors as answers, pause, drain and status."""

from __future__ import annotations

from functools import partial

import pytest
import trio
from trio.testing import wait_all_tasks_blocked

from actors.errors import AskTimeout, MailboxClosed, PermanentError, RetryableError
from actors.messages import Money
from actors.systems import (
    ReceivablesNotOffered,
    SystemActor,
    SystemControl,
    execute,
    pause_system,
    query_receivables,
    query_totals,
    resume_system,
    system_status,
)

from .fakes import FakeAdapter, FakeErp, bulk, posting, totals_query

LONG = 10_000.0


async def start(nursery: trio.Nursery, adapter: FakeAdapter, **options) -> SystemActor:
    actor = SystemActor(adapter, control=SystemControl(adapter.system), **options)
    await nursery.start(actor.run)
    return actor


async def test_a_critical_posting_overtakes_queued_bulk(autojump_clock):
    adapter = FakeAdapter()
    adapter.hold = trio.Event()
    done: list[str] = []

    async def ask(command) -> None:
        await execute(actor.mailbox, command, timeout_s=LONG)
        done.append(command.idempotency_key)

    async with trio.open_nursery() as nursery:
        actor = await start(nursery, adapter, max_concurrency=1)
        async with trio.open_nursery() as askers:
            for number in range(500):
                askers.start_soon(ask, bulk(f"bulk-{number}"))
            await wait_all_tasks_blocked()
            assert actor.control.queued["master_data"] == 499  # one is in flight

            askers.start_soon(ask, posting("critical"))
            await wait_all_tasks_blocked()
            assert actor.control.queued == {"critical": 1, "master_data": 499, "analytics": 0}
            adapter.hold.set()
        actor.request_stop()

    assert len(done) == 501
    assert adapter.started[1] == "critical"  # right after the one already running
    assert adapter.started[0].startswith("bulk-")
    assert actor.control.executed == 501


async def test_concurrency_is_bounded_and_lanes_stay_fifo(autojump_clock):
    adapter = FakeAdapter()
    adapter.hold = trio.Event()
    async with trio.open_nursery() as nursery:
        actor = await start(nursery, adapter, max_concurrency=3)
        for number in range(6):
            nursery.start_soon(partial(execute, actor.mailbox, bulk(f"b{number}"), timeout_s=LONG))
            await wait_all_tasks_blocked()  # arrive one after another
        assert len(adapter.started) == 3
        assert actor.control.in_flight == 3
        adapter.hold.set()
        await adapter.changes.until(lambda: len(adapter.finished) == 6)
        actor.request_stop()
    # Tasks started in one pass may begin in any order; the passes are FIFO.
    assert set(adapter.started[:3]) == {"b0", "b1", "b2"}
    assert set(adapter.started[3:]) == {"b3", "b4", "b5"}


async def test_vendor_errors_go_back_to_the_asker_and_the_actor_carries_on(autojump_clock):
    adapter = FakeAdapter()
    adapter.failures["refused"] = PermanentError("invoice is void", system="billing", status=400)
    adapter.failures["buggy"] = KeyError("id")
    adapter.bad_lane.add("no-lane")
    async with trio.open_nursery() as nursery:
        actor = await start(nursery, adapter)
        with pytest.raises(PermanentError, match="invoice is void"):
            await execute(actor.mailbox, posting("refused"), timeout_s=LONG)
        with pytest.raises(KeyError):
            await execute(actor.mailbox, posting("buggy"), timeout_s=LONG)
        with pytest.raises(ValueError, match="no lane"):
            await execute(actor.mailbox, bulk("no-lane"), timeout_s=LONG)

        result = await execute(actor.mailbox, posting("fine"), timeout_s=LONG)
        assert result.ids == {"command": "fine"}
        assert result.created
        status = await system_status(actor.mailbox, timeout_s=LONG)
        actor.request_stop()
    assert (status.executed, status.failed) == (1, 3)


async def test_totals_queries_are_answered(autojump_clock):
    async with trio.open_nursery() as nursery:
        actor = await start(nursery, FakeAdapter())
        totals = await query_totals(actor.mailbox, totals_query(), timeout_s=LONG)
        actor.request_stop()
    assert (totals.project_id, totals.entries) == ("P-1", 3)


async def test_receivables_queries_travel_the_analytics_lane_and_are_answered(autojump_clock):
    adapter = FakeErp()
    async with trio.open_nursery() as nursery:
        actor = await start(nursery, adapter)
        actor.control.pause()  # hold the queue still to see which lane the request waits in
        answers = []
        answered = trio.Event()

        async def ask() -> None:
            answers.append(await query_receivables(actor.mailbox, totals_query(), timeout_s=LONG))
            answered.set()

        nursery.start_soon(ask)
        await wait_all_tasks_blocked()
        assert actor.control.queued == {"critical": 0, "master_data": 0, "analytics": 1}
        assert adapter.receivables_asked == []

        actor.control.resume()
        await answered.wait()
        actor.request_stop()
    [totals] = answers
    assert adapter.receivables_asked == [totals_query()]
    assert (totals.system, totals.project_id, totals.entries) == ("erp", "P-1", 2)
    assert totals.amount == Money.of("1250.00", "USD")
    assert (actor.control.executed, actor.control.failed) == (1, 0)


async def test_a_receivables_read_that_hangs_answers_a_retryable_timeout(autojump_clock):
    adapter = FakeErp()
    adapter.hold = trio.Event()  # never set: the vendor hangs
    async with trio.open_nursery() as nursery:
        actor = await start(nursery, adapter, command_timeout_s=30)
        started = trio.current_time()
        with pytest.raises(RetryableError, match="receivables: no result within 30 s") as caught:
            await query_receivables(actor.mailbox, totals_query(), timeout_s=LONG)
        assert trio.current_time() - started == pytest.approx(30)
        actor.request_stop()
    assert caught.value.code == "TIMEOUT"


async def test_an_adapter_without_a_receivables_read_refuses_it_and_carries_on(autojump_clock):
    adapter = FakeAdapter("billing")  # totals, but no receivables
    async with trio.open_nursery() as nursery:
        actor = await start(nursery, adapter)
        with pytest.raises(ReceivablesNotOffered) as caught:
            await query_receivables(actor.mailbox, totals_query(), timeout_s=LONG)
        totals = await query_totals(actor.mailbox, totals_query(), timeout_s=LONG)
        actor.request_stop()
    refusal = caught.value
    assert isinstance(refusal, PermanentError)  # never retried; not an AttributeError
    assert (refusal.system, refusal.vendor, refusal.code) == (
        "billing",
        "FakeAdapter",  # no mappings to name the vendor: the adapter's class does
        "UNSUPPORTED_RECEIVABLES",
    )
    assert str(refusal) == (
        "billing: the FakeAdapter adapter offers no receivables read"
        " (the invoices an ERP holds per project and period)"
    )
    assert totals.entries == 3
    assert (actor.control.executed, actor.control.failed) == (1, 1)


async def test_pause_lets_in_flight_finish_and_starts_nothing_until_resumed(autojump_clock):
    adapter = FakeAdapter()
    adapter.hold = trio.Event()
    async with trio.open_nursery() as nursery:
        actor = await start(nursery, adapter)
        nursery.start_soon(partial(execute, actor.mailbox, posting("running"), timeout_s=LONG))
        await adapter.changes.until(lambda: adapter.started == ["running"])

        assert await pause_system(actor.mailbox, timeout_s=LONG) is True
        assert await pause_system(actor.mailbox, timeout_s=LONG) is False
        nursery.start_soon(partial(execute, actor.mailbox, posting("waiting"), timeout_s=LONG))
        adapter.hold.set()
        await adapter.changes.until(lambda: adapter.finished == ["running"])
        await trio.sleep(3_600)  # an hour later, still nothing new has started
        assert adapter.started == ["running"]
        assert actor.control.queued["critical"] == 1

        assert await resume_system(actor.mailbox, timeout_s=LONG) is True
        await adapter.changes.until(lambda: adapter.finished == ["running", "waiting"])
        actor.request_stop()


async def test_a_request_whose_asker_gave_up_is_not_executed(autojump_clock):
    adapter = FakeAdapter()
    async with trio.open_nursery() as nursery:
        actor = await start(nursery, adapter)
        actor.control.pause()
        with pytest.raises(AskTimeout):
            await execute(actor.mailbox, posting("late"), timeout_s=5)
        actor.control.resume()
        await execute(actor.mailbox, posting("on-time"), timeout_s=LONG)
        actor.request_stop()
    assert adapter.started == ["on-time"]
    assert actor.control.abandoned == 1


async def test_command_timeout_answers_a_retryable_error(autojump_clock):
    adapter = FakeAdapter()
    adapter.hold = trio.Event()  # never set: the vendor hangs
    async with trio.open_nursery() as nursery:
        actor = await start(nursery, adapter, command_timeout_s=30)
        started = trio.current_time()
        with pytest.raises(RetryableError) as caught:
            await execute(actor.mailbox, posting("hangs"), timeout_s=LONG)
        assert trio.current_time() - started == pytest.approx(30)
        actor.request_stop()
    assert caught.value.code == "TIMEOUT"


async def test_drain_finishes_accepted_work_then_returns(autojump_clock):
    adapter = FakeAdapter()
    adapter.hold = trio.Event()
    results: list[str] = []

    async def ask(key: str) -> None:
        results.append((await execute(actor.mailbox, bulk(key), timeout_s=LONG)).ids["command"])

    async with trio.open_nursery() as nursery:
        actor = await start(nursery, adapter, max_concurrency=1)
        for key in ("a", "b", "c"):
            nursery.start_soon(ask, key)
        await wait_all_tasks_blocked()
        actor.request_stop()
        with pytest.raises(MailboxClosed):
            await execute(actor.mailbox, bulk("refused"), timeout_s=LONG)
        adapter.hold.set()
    assert sorted(results) == ["a", "b", "c"]


async def test_queued_requests_are_answered_when_the_actor_is_cancelled(autojump_clock):
    adapter = FakeAdapter()
    adapter.hold = trio.Event()
    outcomes: list[str] = []

    async def ask(key: str) -> None:
        try:
            await execute(actor.mailbox, bulk(key), timeout_s=LONG)
        except MailboxClosed:
            outcomes.append(key)

    async with trio.open_nursery() as outer, trio.open_nursery() as nursery:
        actor = await start(nursery, adapter, max_concurrency=1)
        for key in ("in-flight", "queued"):
            outer.start_soon(ask, key)
            await wait_all_tasks_blocked()
        assert adapter.started == ["in-flight"]
        nursery.cancel_scope.cancel()
    assert sorted(outcomes) == ["in-flight", "queued"]
