"""The supervisor's restart policy, one rule per test, on trio's mock clock."""

from __future__ import annotations

import pytest
import trio
import trio.testing
from structlog.testing import capture_logs

from actors import ActorFailed, ask
from actors.actor import Actor
from actors.supervisor import (
    ChildSpec,
    ChildState,
    ChildStatus,
    GetStatus,
    Restart,
    RestartPolicy,
    Strategy,
    Supervisor,
)

from .doubles import Scripted, Trace, crash, crash_after, return_now, scripted, serve

# No backoff and a wide window, unless a test is about them.
EAGER = RestartPolicy(max_restarts=10, period_s=100.0, backoff_min_s=0.0)


def status_of(supervisor: Supervisor, name: str) -> ChildStatus:
    (status,) = [child for child in supervisor.status() if child.name == name]
    return status


async def test_permanent_child_is_restarted_after_each_crash_and_counted(autojump_clock):
    trace = Trace()
    child = ChildSpec(name="worker", factory=scripted("worker", trace, crash, crash, serve))
    supervisor = Supervisor("root", [child], policy=EAGER)

    with capture_logs() as logs:
        async with trio.open_nursery() as nursery:
            await nursery.start(supervisor.run)
            await trace.wait_for(lambda: trace.starts("worker") == 3)
            await trio.testing.wait_all_tasks_blocked()
            status = status_of(supervisor, "worker")
            nursery.cancel_scope.cancel()

    assert status.state is ChildState.RUNNING
    assert status.restarts == 2
    assert status.last_error == "ValueError: worker crashed"
    assert status.started_at == trio.current_time()
    restarts = [entry for entry in logs if entry["event"] == "actor.restarting"]
    assert [(entry["supervisor"], entry["child"]) for entry in restarts] == [("root", "worker")] * 2
    assert restarts[0]["error"] == "ValueError: worker crashed"
    assert restarts[0]["log_level"] == "warning"


async def test_permanent_child_that_returns_is_restarted_and_counts_toward_intensity(
    autojump_clock,
):
    trace = Trace()
    child = ChildSpec(name="worker", factory=scripted("worker", trace, return_now))
    policy = RestartPolicy(max_restarts=2, period_s=10.0, backoff_min_s=0.0)
    supervisor = Supervisor("root", [child], policy=policy)

    with pytest.raises(ActorFailed, match="returned although permanent") as caught:
        await supervisor.run()

    assert trace.starts("worker") == 3
    assert caught.value.__cause__ is None
    assert status_of(supervisor, "worker").state is ChildState.FAILED


async def test_transient_child_is_restarted_after_a_crash_but_not_after_a_normal_exit(
    autojump_clock,
):
    trace = Trace()
    child = ChildSpec(
        name="job",
        factory=scripted("job", trace, crash, return_now),
        restart=Restart.TRANSIENT,
    )
    supervisor = Supervisor("root", [child], policy=EAGER)

    async with trio.open_nursery() as nursery:
        await nursery.start(supervisor.run)
        await trace.wait_for(lambda: trace.events.count(("exit", "job")) == 2)
        await trio.testing.wait_all_tasks_blocked()

        status = status_of(supervisor, "job")
        assert trace.starts("job") == 2
        assert status.state is ChildState.STOPPED
        assert status.restarts == 1
        nursery.cancel_scope.cancel()


async def test_temporary_children_are_never_restarted(autojump_clock):
    trace = Trace()
    children = [
        ChildSpec(name="crasher", factory=scripted("crasher", trace, crash), restart="temporary"),
        ChildSpec(
            name="quitter", factory=scripted("quitter", trace, return_now), restart="temporary"
        ),
    ]
    supervisor = Supervisor("root", children, policy=EAGER)

    async with trio.open_nursery() as nursery:
        await nursery.start(supervisor.run)
        await trace.wait_for(lambda: len(trace.events) == 4)
        await trio.testing.wait_all_tasks_blocked()

        assert trace.starts("crasher") == trace.starts("quitter") == 1
        assert status_of(supervisor, "crasher").state is ChildState.FAILED
        assert status_of(supervisor, "crasher").last_error == "ValueError: crasher crashed"
        assert status_of(supervisor, "quitter").state is ChildState.STOPPED
        assert [child.restarts for child in supervisor.status()] == [0, 0]
        nursery.cancel_scope.cancel()


async def test_exceeding_the_intensity_fails_the_supervisor_with_the_last_error(autojump_clock):
    trace = Trace()
    children = [
        ChildSpec(name="steady", factory=scripted("steady", trace, serve)),
        ChildSpec(name="flaky", factory=scripted("flaky", trace, crash)),
    ]
    policy = RestartPolicy(max_restarts=3, period_s=10.0, backoff_min_s=0.0)
    supervisor = Supervisor("root", children, policy=policy)

    with pytest.raises(ActorFailed, match=r"'flaky'.*3 restarts within 10\.0 s") as caught:
        await supervisor.run()

    assert trace.starts("flaky") == 4  # the first start and three restarts
    assert isinstance(caught.value.__cause__, ValueError)
    assert ("exit", "steady") in trace.events  # the siblings were stopped too
    assert status_of(supervisor, "flaky").state is ChildState.FAILED
    assert status_of(supervisor, "steady").state is ChildState.STOPPED


async def test_crashes_spread_wider_than_the_period_never_escalate(autojump_clock):
    trace = Trace()
    child = ChildSpec(name="worker", factory=scripted("worker", trace, crash_after(6.0)))
    policy = RestartPolicy(max_restarts=1, period_s=5.0, backoff_min_s=0.0)
    supervisor = Supervisor("root", [child], policy=policy)

    async with trio.open_nursery() as nursery:
        await nursery.start(supervisor.run)
        await trace.wait_for(lambda: trace.starts("worker") == 6)
        assert status_of(supervisor, "worker").restarts == 5
        nursery.cancel_scope.cancel()


async def test_a_failed_child_supervisor_escalates_to_its_parent(autojump_clock):
    trace = Trace()
    inner_policy = RestartPolicy(max_restarts=1, period_s=10.0, backoff_min_s=0.0)

    def make_inner() -> Supervisor:
        trace.record("start", "inner")
        worker = ChildSpec(name="worker", factory=scripted("worker", trace, crash))
        return Supervisor("inner", [worker], policy=inner_policy)

    outer_policy = RestartPolicy(max_restarts=1, period_s=10.0, backoff_min_s=0.0)
    outer = Supervisor("outer", [ChildSpec(name="inner", factory=make_inner)], policy=outer_policy)

    with pytest.raises(ActorFailed, match="'outer'") as caught:
        await outer.run()

    inner_failure = caught.value.__cause__
    assert isinstance(inner_failure, ActorFailed)
    assert "'inner'" in str(inner_failure)
    assert isinstance(inner_failure.__cause__, ValueError)
    assert trace.starts("inner") == 2
    assert trace.starts("worker") == 4  # two per inner incarnation


async def test_one_for_all_restarts_every_sibling_in_order(autojump_clock):
    trace = Trace()
    children = [
        ChildSpec(name="a", factory=scripted("a", trace, serve)),
        ChildSpec(name="b", factory=scripted("b", trace, crash_after(1.0), serve)),
        ChildSpec(name="c", factory=scripted("c", trace, serve)),
    ]
    policy = RestartPolicy(strategy=Strategy.ONE_FOR_ALL, backoff_min_s=0.0)
    supervisor = Supervisor("root", children, policy=policy)

    async with trio.open_nursery() as nursery:
        await nursery.start(supervisor.run)
        await trace.wait_for(lambda: trace.starts("c") == 2)
        await trio.testing.wait_all_tasks_blocked()

        assert trace.events == [
            ("start", "a"),
            ("start", "b"),
            ("start", "c"),
            ("exit", "b"),  # the crash
            ("exit", "c"),  # siblings cancelled in reverse start order
            ("exit", "a"),
            ("start", "a"),  # all started again in start order
            ("start", "b"),
            ("start", "c"),
        ]
        assert [child.restarts for child in supervisor.status()] == [1, 1, 1]
        assert {child.state for child in supervisor.status()} == {ChildState.RUNNING}
        nursery.cancel_scope.cancel()


async def test_one_for_all_leaves_temporary_siblings_down(autojump_clock):
    trace = Trace()
    children = [
        ChildSpec(name="once", factory=scripted("once", trace, serve), restart=Restart.TEMPORARY),
        ChildSpec(name="b", factory=scripted("b", trace, crash_after(1.0), serve)),
    ]
    policy = RestartPolicy(strategy=Strategy.ONE_FOR_ALL, backoff_min_s=0.0)
    supervisor = Supervisor("root", children, policy=policy)

    async with trio.open_nursery() as nursery:
        await nursery.start(supervisor.run)
        await trace.wait_for(lambda: trace.starts("b") == 2)
        await trio.testing.wait_all_tasks_blocked()

        assert trace.starts("once") == 1
        assert status_of(supervisor, "once").state is ChildState.STOPPED
        assert status_of(supervisor, "b").state is ChildState.RUNNING
        nursery.cancel_scope.cancel()


async def test_backoff_grows_exponentially_to_its_cap_and_resets_after_a_quiet_period(
    autojump_clock,
):
    trace = Trace()
    bodies = [crash] * 5 + [crash_after(50.0), crash, serve]
    child = ChildSpec(name="worker", factory=scripted("worker", trace, *bodies))
    policy = RestartPolicy(
        max_restarts=100, period_s=20.0, backoff_min_s=1.0, backoff_max_s=4.0, backoff_factor=2.0
    )
    supervisor = Supervisor("root", [child], policy=policy)
    began = trio.current_time()

    async with trio.open_nursery() as nursery:
        await nursery.start(supervisor.run)
        await trace.wait_for(lambda: trace.starts("worker") == 8)

        starts = [time - began for time in trace.start_times["worker"]]
        # 1, 2, 4, then capped at 4; after 50 quiet seconds the window is empty: 1, then 2.
        assert starts == [0.0, 1.0, 3.0, 7.0, 11.0, 15.0, 66.0, 68.0]
        nursery.cancel_scope.cancel()


async def test_one_for_one_restarts_only_the_child_that_crashed(autojump_clock):
    trace = Trace()
    children = [
        ChildSpec(name="a", factory=scripted("a", trace, serve)),
        ChildSpec(name="b", factory=scripted("b", trace, crash, serve)),
    ]
    supervisor = Supervisor("root", children, policy=EAGER)

    async with trio.open_nursery() as nursery:
        await nursery.start(supervisor.run)
        await trace.wait_for(lambda: trace.starts("b") == 2)
        await trio.testing.wait_all_tasks_blocked()

        assert trace.starts("a") == 1
        assert ("exit", "a") not in trace.events
        assert [child.restarts for child in supervisor.status()] == [0, 1]
        nursery.cancel_scope.cancel()


async def test_a_child_failing_with_an_exception_group_is_restarted(autojump_clock):
    async def two_failures(actor: Scripted) -> None:
        async def fail(message: str) -> None:
            raise KeyError(message)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(fail, "left")
            nursery.start_soon(fail, "right")

    trace = Trace()
    child = ChildSpec(name="worker", factory=scripted("worker", trace, two_failures, serve))
    supervisor = Supervisor("root", [child], policy=EAGER)

    async with trio.open_nursery() as nursery:
        await nursery.start(supervisor.run)
        await trace.wait_for(lambda: trace.starts("worker") == 2)

        last_error = status_of(supervisor, "worker").last_error
        assert last_error is not None
        assert "KeyError: 'left'" in last_error
        assert "KeyError: 'right'" in last_error
        nursery.cancel_scope.cancel()


class Fatal(BaseException):
    """Stands for KeyboardInterrupt and friends: not a failure a supervisor may handle."""


async def test_base_exceptions_are_not_swallowed(autojump_clock):
    async def fatal(actor: Scripted) -> None:
        raise Fatal

    trace = Trace()
    child = ChildSpec(name="worker", factory=scripted("worker", trace, fatal))
    supervisor = Supervisor("root", [child], policy=EAGER)

    with pytest.raises(BaseExceptionGroup) as caught:
        await supervisor.run()

    assert caught.group_contains(Fatal)
    assert trace.starts("worker") == 1


async def test_a_child_failing_before_it_is_ready_is_restarted(autojump_clock):
    attempts = []

    class FailsToStart(Actor[object]):
        async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
            attempts.append(trio.current_time())
            if len(attempts) < 3:
                raise OSError("port in use")
            task_status.started()
            await trio.sleep_forever()

    child = ChildSpec(name="server", factory=lambda: FailsToStart("server"))
    supervisor = Supervisor("root", [child], policy=EAGER)

    async with trio.open_nursery() as nursery:
        await nursery.start(supervisor.run)
        await trio.testing.wait_all_tasks_blocked()

        status = status_of(supervisor, "server")
        assert len(attempts) == 3
        assert status.state is ChildState.RUNNING
        assert status.last_error == "OSError: port in use"
        nursery.cancel_scope.cancel()


async def test_a_factory_that_raises_is_a_failed_start(autojump_clock):
    trace = Trace()
    build = scripted("worker", trace, serve)
    calls = []

    def factory() -> Scripted:
        calls.append(trio.current_time())
        if len(calls) == 1:
            raise LookupError("no such endpoint")
        return build()

    supervisor = Supervisor("root", [ChildSpec(name="worker", factory=factory)], policy=EAGER)

    async with trio.open_nursery() as nursery:
        await nursery.start(supervisor.run)
        await trace.wait_for(lambda: trace.starts("worker") == 1)

        status = status_of(supervisor, "worker")
        assert len(calls) == 2
        assert status.restarts == 1
        assert status.last_error == "LookupError: no such endpoint"
        nursery.cancel_scope.cancel()


async def test_drain_stops_children_in_reverse_start_order(autojump_clock):
    trace = Trace()
    children = [
        ChildSpec(name=name, factory=scripted(name, trace, serve)) for name in ("a", "b", "c")
    ]
    supervisor = Supervisor("root", children)

    async with trio.open_nursery() as nursery:
        await nursery.start(supervisor.run)
        supervisor.request_stop()

    assert trace.events[3:] == [("exit", "c"), ("exit", "b"), ("exit", "a")]
    assert {child.state for child in supervisor.status()} == {ChildState.STOPPED}
    assert not supervisor.running


async def ignore_stop_requests(actor: Scripted) -> None:
    while True:
        actor.heartbeat()
        await trio.sleep(1.0)


async def test_drain_cancels_each_child_that_overstays_its_shutdown_timeout(autojump_clock):
    trace = Trace()
    children = [
        ChildSpec(
            name=name,
            factory=scripted(name, trace, ignore_stop_requests),
            shutdown_timeout_s=3.0,
        )
        for name in ("a", "b")
    ]
    supervisor = Supervisor("root", children)

    async with trio.open_nursery() as nursery:
        await nursery.start(supervisor.run)
        asked_at = trio.current_time()
        supervisor.request_stop()

    # b is cancelled after its 3 s before a is asked to stop: reverse order holds.
    assert trace.events[2:] == [("exit", "b"), ("exit", "a")]
    assert trace.exit_times["b"] == [asked_at + 3.0]
    assert trace.exit_times["a"] == [asked_at + 6.0]


async def test_drain_drops_a_pending_restart(autojump_clock):
    trace = Trace()
    child = ChildSpec(name="worker", factory=scripted("worker", trace, crash))
    policy = RestartPolicy(backoff_min_s=30.0, backoff_max_s=30.0)
    supervisor = Supervisor("root", [child], policy=policy)

    async with trio.open_nursery() as nursery:
        await nursery.start(supervisor.run)
        await trace.wait_for(lambda: ("exit", "worker") in trace.events)
        await trio.testing.wait_all_tasks_blocked()
        assert status_of(supervisor, "worker").state is ChildState.RESTARTING
        asked_at = trio.current_time()
        supervisor.request_stop()

    assert trio.current_time() == asked_at
    assert trace.starts("worker") == 1
    assert status_of(supervisor, "worker").state is ChildState.STOPPED


async def test_a_pending_restart_does_not_fire_while_siblings_drain(autojump_clock):
    trace = Trace()
    children = [
        ChildSpec(name="flaky", factory=scripted("flaky", trace, crash)),
        ChildSpec(
            name="slow",
            factory=scripted("slow", trace, ignore_stop_requests),
            shutdown_timeout_s=5.0,
        ),
    ]
    policy = RestartPolicy(backoff_min_s=2.0)
    supervisor = Supervisor("root", children, policy=policy)

    async with trio.open_nursery() as nursery:
        await nursery.start(supervisor.run)
        await trace.wait_for(lambda: ("exit", "flaky") in trace.events)
        supervisor.request_stop()  # draining "slow" takes 5 s, past flaky's 2 s backoff

    assert trace.starts("flaky") == 1
    assert status_of(supervisor, "flaky").state is ChildState.STOPPED


async def test_status_is_served_to_an_ask_and_nests(autojump_clock):
    trace = Trace()
    inner = ChildSpec(
        name="inner",
        factory=lambda: Supervisor(
            "inner", [ChildSpec(name="leaf", factory=scripted("leaf", trace, serve))]
        ),
    )
    supervisor = Supervisor("root", [inner])

    async with trio.open_nursery() as nursery:
        await nursery.start(supervisor.run)
        (status,) = await ask(supervisor.mailbox, GetStatus, timeout_s=1.0)

        assert status.name == "inner"
        assert status.state is ChildState.RUNNING
        assert [leaf.name for leaf in status.children] == ["leaf"]
        assert status.children[0].alive
        nursery.cancel_scope.cancel()


def test_child_names_must_be_unique():
    trace = Trace()
    twice = [ChildSpec(name="x", factory=scripted("x", trace, serve))] * 2
    with pytest.raises(ValueError, match="unique"):
        Supervisor("root", twice)
