"""Per-key ordering: one key's items in order, different keys in parallel up to a width.

A dispatcher or workflow actor hands each event to a :class:`KeyedExecutor` under the key
of the entity it concerns::

    async with open_keyed_executor(self.handle, width=8, max_pending=64) as keyed:
        async for event in self.messages():
            await keyed.submit(event.key, event)

- Order: each key with pending items has one task that handles them one after another,
  so two events of one project never overtake each other.
- Width: at most ``width`` handlers run at once, whatever the number of keys. A slot is
  taken per item and trio's Semaphore serves waiters in turn, so a key with a long queue
  goes to the back after each item and cannot starve the others.
- Backpressure: at most ``max_pending`` items are accepted and not yet finished;
  ``submit`` waits for room, so the caller (and its own mailbox) slows down instead of
  the executor growing in memory.
- Failure: a handler's exception ends the executor's nursery, and with it the actor that
  owns it; its supervisor decides what happens next.

Leaving the ``async with`` block waits until every accepted item has been handled.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Generic, TypeVar

import trio

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")


@dataclass(frozen=True, kw_only=True)
class KeyedStatistics:
    pending: int  # accepted and not yet finished (queued or running)
    running: int  # handlers running now (<= width)
    keys: int  # keys with pending items
    tasks_waiting_submit: int  # callers blocked by backpressure


class KeyedExecutor(Generic[K, T]):
    """Runs ``handler(item)`` for submitted items; make one with :func:`open_keyed_executor`."""

    def __init__(
        self,
        nursery: trio.Nursery,
        handler: Callable[[T], Awaitable[object]],
        *,
        width: int,
        max_pending: int,
    ) -> None:
        _check_limits(width, max_pending)
        self.width = width
        self.max_pending = max_pending
        self._nursery = nursery
        self._handler = handler
        self._queues: dict[K, deque[T]] = {}
        # trio's Semaphore wakes waiters in arrival order: fair between keys and callers.
        self._slots = trio.Semaphore(width)
        self._room = trio.Semaphore(max_pending)

    async def submit(self, key: K, item: T) -> None:
        """Accept ``item`` for ``key``, waiting while ``max_pending`` items are in hand."""
        await self._room.acquire()
        queue = self._queues.get(key)
        if queue is not None:
            queue.append(item)  # the key's task is still draining: it will get there
            return
        self._queues[key] = deque([item])
        self._nursery.start_soon(self._serve_key, key)

    def statistics(self) -> KeyedStatistics:
        return KeyedStatistics(
            pending=self.max_pending - self._room.value,
            running=self.width - self._slots.value,
            keys=len(self._queues),
            tasks_waiting_submit=self._room.statistics().tasks_waiting,
        )

    async def _serve_key(self, key: K) -> None:
        queue = self._queues[key]
        while queue:
            item = queue.popleft()
            try:
                async with self._slots:
                    await self._handler(item)
            finally:
                self._room.release()
        # No checkpoint since the queue was seen empty, so no submit slipped in between.
        del self._queues[key]


@asynccontextmanager
async def open_keyed_executor(
    handler: Callable[[T], Awaitable[object]],
    *,
    width: int,
    max_pending: int,
) -> AsyncIterator[KeyedExecutor[Hashable, T]]:
    """A :class:`KeyedExecutor` whose handlers run in a nursery scoped to the block."""
    _check_limits(width, max_pending)  # before the nursery, so the error is not grouped
    async with trio.open_nursery() as nursery:
        yield KeyedExecutor(nursery, handler, width=width, max_pending=max_pending)


def _check_limits(width: int, max_pending: int) -> None:
    if width < 1 or max_pending < 1:
        raise ValueError(f"need width >= 1 and max_pending >= 1, got {width} and {max_pending}")
