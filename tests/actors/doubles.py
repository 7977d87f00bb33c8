"""Test actors whose every incarnation follows a script and leaves a trace."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import trio

from actors.actor import Actor

Body = Callable[["Scripted"], Awaitable[None]]


@dataclass
class Trace:
    """What a family of scripted actors did, shared across their restarts."""

    events: list[tuple[str, str]] = field(default_factory=list)
    start_times: dict[str, list[float]] = field(default_factory=dict)
    exit_times: dict[str, list[float]] = field(default_factory=dict)
    changed: trio.Event = field(default_factory=trio.Event)

    def record(self, what: str, name: str) -> None:
        self.events.append((what, name))
        times = self.start_times if what == "start" else self.exit_times
        times.setdefault(name, []).append(trio.current_time())
        self.changed.set()
        self.changed = trio.Event()

    def starts(self, name: str) -> int:
        return len(self.start_times.get(name, []))

    async def wait_for(self, predicate: Callable[[], bool]) -> None:
        """Wait (on events, not time) until ``predicate()`` holds.

        The deadline is virtual: under the autojump clock a regression that never gets
        there fails in milliseconds instead of spinning the clock forever.
        """
        with trio.fail_after(10_000):
            while not predicate():
                await self.changed.wait()


class Scripted(Actor[object]):
    """Starts, then runs ``body``: the n-th incarnation of a name runs ``bodies[n]``."""

    def __init__(self, name: str, trace: Trace, body: Body, **kwargs: float) -> None:
        super().__init__(name, **kwargs)
        self.trace = trace
        self.body = body

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        self.trace.record("start", self.name)
        task_status.started()
        try:
            await self.body(self)
        finally:
            self.trace.record("exit", self.name)


def scripted(name: str, trace: Trace, *bodies: Body, **kwargs: float) -> Callable[[], Scripted]:
    """A child factory: incarnation n runs ``bodies[n]``, the last one from then on."""

    def factory() -> Scripted:
        index = min(trace.starts(name), len(bodies) - 1)
        return Scripted(name, trace, bodies[index], **kwargs)

    return factory


async def serve(actor: Scripted) -> None:
    """Drain the mailbox until it is closed (heartbeating while idle)."""
    async for _message in actor.messages():
        pass


async def crash(actor: Scripted) -> None:
    raise ValueError(f"{actor.name} crashed")


async def return_now(actor: Scripted) -> None:
    return None


async def wedge(actor: Scripted) -> None:
    """Stuck: never heartbeats again, but still cancellable."""
    await trio.sleep_forever()


def crash_after(seconds: float) -> Body:
    async def body(actor: Scripted) -> None:
        await trio.sleep(seconds)
        raise ValueError(f"{actor.name} crashed after {seconds} s")

    return body
