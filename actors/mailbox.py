"""A bounded mailbox: the address of an actor.

A mailbox is one trio memory channel with both ends kept together. Its buffer is bounded,
so a sender to a busy actor waits in ``send()``: backpressure, not memory growth. A mailbox
may outlive the actor that reads it: a supervisor's factory can hand the same mailbox to
every incarnation of a child, so senders keep their address across restarts.

Closing a mailbox means "no more messages": senders get :class:`MailboxClosed` at once, and
the reader still receives what was already buffered, then the end of the mailbox.
"""

from __future__ import annotations

from typing import Generic, TypeVar

import trio

from .errors import MailboxClosed

M = TypeVar("M")


class Mailbox(Generic[M]):
    """The bounded message queue of one actor; ``size`` is the buffer, 0 is a rendezvous."""

    def __init__(self, name: str, size: int) -> None:
        if size < 0 or size != int(size):
            raise ValueError(f"mailbox {name!r}: size must be a whole number >= 0, got {size!r}")
        self.name = name
        self.size = size
        self._send, self._receive = trio.open_memory_channel[M](size)
        self._closed = False

    def __repr__(self) -> str:
        return f"<Mailbox {self.name!r} size={self.size}>"

    @property
    def closed(self) -> bool:
        return self._closed

    async def send(self, message: M) -> None:
        """Deliver ``message``, waiting while the buffer is full; MailboxClosed if closed."""
        try:
            await self._send.send(message)
        except (trio.ClosedResourceError, trio.BrokenResourceError) as exc:
            raise MailboxClosed(f"mailbox {self.name!r} is closed") from exc

    def send_nowait(self, message: M) -> None:
        """Deliver ``message`` or raise :class:`trio.WouldBlock` (a load-shedding path)."""
        try:
            self._send.send_nowait(message)
        except (trio.ClosedResourceError, trio.BrokenResourceError) as exc:
            raise MailboxClosed(f"mailbox {self.name!r} is closed") from exc

    async def receive(self) -> M:
        """The next message; :class:`trio.EndOfChannel` once closed and drained."""
        return await self._receive.receive()

    def close(self) -> None:
        """Refuse further messages; the reader still gets what is buffered. Idempotent."""
        self._closed = True
        self._send.close()

    def statistics(self) -> trio.MemoryChannelStatistics:
        """Buffer use and waiting tasks (``current_buffer_used``, ``tasks_waiting_send``…)."""
        return self._send.statistics()
