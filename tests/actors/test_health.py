"""The health view: required actors alive, wedged ones not; on trio's mock clock."""

from __future__ import annotations

import trio
import trio.testing

from actors import HealthView
from actors.supervisor import ChildSpec, ChildState, Restart, RestartPolicy, Supervisor

from .doubles import Trace, crash, scripted, serve, wedge

# The actor must beat every second and is wedged after three silent seconds.
BEATS = {"heartbeat_interval_s": 1.0, "heartbeat_timeout_s": 3.0}
POLICY = RestartPolicy(backoff_min_s=0.5)


def root(*children: ChildSpec) -> Supervisor:
    return Supervisor("root", children, policy=POLICY, **BEATS)


async def test_all_required_alive_while_every_actor_heartbeats(autojump_clock):
    trace = Trace()
    supervisor = root(ChildSpec(name="worker", factory=scripted("worker", trace, serve, **BEATS)))
    health = HealthView(supervisor)
    assert not health.all_required_alive()  # not started yet

    async with trio.open_nursery() as nursery:
        await nursery.start(supervisor.run)
        assert health.all_required_alive()

        await trio.sleep(60.0)  # idle for a minute: the mailbox wait keeps beating
        assert health.all_required_alive()
        assert [actor.path for actor in health.actors()] == ["root", "root/worker"]
        assert all(actor.heartbeat_age_s <= 1.0 for actor in health.actors())
        nursery.cancel_scope.cancel()


async def test_a_wedged_actor_makes_health_false_until_its_supervisor_restarts_it(
    autojump_clock,
):
    trace = Trace()
    child = ChildSpec(
        name="worker",
        factory=scripted("worker", trace, wedge, serve, **BEATS),
        restart_when_wedged=True,
    )
    supervisor = root(child)
    health = HealthView(supervisor)

    async with trio.open_nursery() as nursery:
        await nursery.start(supervisor.run)
        began = trio.current_time()
        assert health.all_required_alive()

        await trio.sleep(3.0)  # silent for exactly its allowance: still alive
        assert health.all_required_alive()
        await trio.sleep(0.5)  # past it: wedged
        (wedged,) = health.unhealthy()
        assert wedged.path == "root/worker"
        assert wedged.state is ChildState.RUNNING  # its task exists, it just makes no progress
        assert wedged.heartbeat_age_s == 3.5

        await trace.wait_for(lambda: trace.starts("worker") == 2)
        # The supervisor noticed at its beat at t=4 and restarted after the 0.5 s backoff.
        assert trio.current_time() - began == 4.5
        assert health.all_required_alive()
        (worker,) = supervisor.status()
        assert worker.restarts == 1
        assert "no heartbeat" in (worker.last_error or "")
        nursery.cancel_scope.cancel()


async def test_a_wedged_actor_stays_unhealthy_unless_restarting_it_is_asked_for(autojump_clock):
    trace = Trace()
    supervisor = root(ChildSpec(name="worker", factory=scripted("worker", trace, wedge, **BEATS)))
    health = HealthView(supervisor)

    async with trio.open_nursery() as nursery:
        await nursery.start(supervisor.run)
        await trio.sleep(30.0)

        assert not health.all_required_alive()
        assert trace.starts("worker") == 1  # left for the systemd watchdog to act on
        nursery.cancel_scope.cancel()


async def test_only_required_actors_count(autojump_clock):
    trace = Trace()
    supervisor = root(
        ChildSpec(name="core", factory=scripted("core", trace, serve, **BEATS)),
        ChildSpec(
            name="extras",
            required=False,
            factory=lambda: Supervisor(
                "extras",
                [ChildSpec(name="report", factory=scripted("report", trace, wedge, **BEATS))],
                **BEATS,
            ),
        ),
    )
    health = HealthView(supervisor)

    async with trio.open_nursery() as nursery:
        await nursery.start(supervisor.run)
        await trio.sleep(10.0)

        by_path = {actor.path: actor for actor in health.actors()}
        assert not by_path["root/extras/report"].alive
        assert not by_path["root/extras/report"].required  # its subtree is optional
        assert health.all_required_alive()
        nursery.cancel_scope.cancel()


async def test_a_required_actor_that_has_stopped_for_good_is_not_alive(autojump_clock):
    trace = Trace()
    supervisor = root(
        ChildSpec(name="once", factory=scripted("once", trace, crash), restart=Restart.TEMPORARY)
    )
    health = HealthView(supervisor)

    async with trio.open_nursery() as nursery:
        await nursery.start(supervisor.run)
        await trace.wait_for(lambda: ("exit", "once") in trace.events)
        await trio.testing.wait_all_tasks_blocked()

        (stopped,) = health.unhealthy()
        assert stopped.state is ChildState.FAILED
        assert stopped.last_error == "ValueError: once crashed"
        nursery.cancel_scope.cancel()


async def test_a_drained_tree_is_not_alive(autojump_clock):
    trace = Trace()
    supervisor = root(ChildSpec(name="worker", factory=scripted("worker", trace, serve, **BEATS)))
    health = HealthView(supervisor)

    async with trio.open_nursery() as nursery:
        await nursery.start(supervisor.run)
        supervisor.request_stop()

    assert [actor.path for actor in health.unhealthy()] == ["root", "root/worker"]
