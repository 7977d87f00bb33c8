"""The actor: a name, a bounded mailbox, heartbeats and ``run()``.

A subclass writes one ``run``: it prepares, calls ``task_status.started()``, then drains
its mailbox with an exhaustive ``match``::

    class Echo(Actor[EchoRequest]):
        async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
            task_status.started()
            async for request in self.messages():
                match request:
                    case EchoRequest(text=text, reply=reply):
                        reply.send(text)
                    case _:
                        assert_never(request)

``messages()`` heartbeats whenever a message arrives and every ``heartbeat_interval_s``
while the mailbox is idle, so an actor that waits on its mailbox is alive by construction
and one stuck inside a handler stops heartbeating: that is what "wedged" means to the
health view. An actor that loops on something else (a poller) calls ``heartbeat()`` in
its loop.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Generic, TypeVar

import trio

from .mailbox import Mailbox

M = TypeVar("M")

# Small on purpose: enough to absorb a burst while the actor is busy with one message,
# small enough that a stuck actor pushes back on its senders within a few messages.
DEFAULT_MAILBOX_SIZE = 16
# The systemd watchdog is typically 30 s and fed at half of it; an actor that has been
# silent for 20 s has missed four beats and is wedged, not merely busy.
DEFAULT_HEARTBEAT_INTERVAL_S = 5.0
DEFAULT_HEARTBEAT_TIMEOUT_S = 20.0


class Actor(ABC, Generic[M]):
    """Base of every actor. Subclasses implement :meth:`run`."""

    def __init__(
        self,
        name: str,
        *,
        mailbox: Mailbox[M] | None = None,
        mailbox_size: int = DEFAULT_MAILBOX_SIZE,
        heartbeat_interval_s: float = DEFAULT_HEARTBEAT_INTERVAL_S,
        heartbeat_timeout_s: float = DEFAULT_HEARTBEAT_TIMEOUT_S,
    ) -> None:
        if not 0 < heartbeat_interval_s < heartbeat_timeout_s:
            raise ValueError(
                f"actor {name!r}: need 0 < heartbeat_interval_s < heartbeat_timeout_s, got "
                f"{heartbeat_interval_s} and {heartbeat_timeout_s}"
            )
        self.name = name
        self.mailbox: Mailbox[M] = mailbox if mailbox is not None else Mailbox(name, mailbox_size)
        self.heartbeat_interval_s = heartbeat_interval_s
        self.heartbeat_timeout_s = heartbeat_timeout_s
        #: trio time of the last heartbeat; None until the actor has started.
        self.last_heartbeat: float | None = None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"

    @abstractmethod
    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Serve until the mailbox ends; call ``task_status.started()`` once ready."""

    def heartbeat(self) -> None:
        """Record that the actor is making progress (on trio's clock)."""
        self.last_heartbeat = trio.current_time()

    def is_wedged(self) -> bool:
        """True once the actor has started and then missed its heartbeat deadline."""
        if self.last_heartbeat is None:
            return False
        return trio.current_time() - self.last_heartbeat > self.heartbeat_timeout_s

    def request_stop(self) -> None:
        """Ask the actor to finish: close its mailbox so ``messages()`` ends after draining.

        Actors that do not read their mailbox override this to stop their own loop.
        """
        self.mailbox.close()

    async def receive(self) -> M:
        """The next message, heartbeating while waiting; EndOfChannel once drained."""
        while True:
            self.heartbeat()
            with trio.move_on_after(self.heartbeat_interval_s):
                message = await self.mailbox.receive()
                self.heartbeat()
                return message

    def messages(self) -> _Messages[M]:
        """``async for message in self.messages()``: ends when the mailbox is closed and empty."""
        return _Messages(self)


class _Messages(Generic[M]):
    # A class, not an async generator: a generator that yields inside a cancel scope
    # (receive()'s move_on_after) would corrupt trio's scope stack.
    def __init__(self, actor: Actor[M]) -> None:
        self._actor = actor

    def __aiter__(self) -> _Messages[M]:
        return self

    async def __anext__(self) -> M:
        try:
            return await self._actor.receive()
        except trio.EndOfChannel:
            raise StopAsyncIteration from None
