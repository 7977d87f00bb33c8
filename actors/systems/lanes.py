"""A queue per governor lane, drained strictly by priority.

The system actor parks accepted requests here rather than running them in arrival order,
so a financial posting that arrives behind five hundred queued master-data upserts is the
next thing to start. The priority is strict, as the governor's is: analytics waits while
anything more urgent is queued.
"""

from __future__ import annotations

from collections import deque
from typing import Generic, TypeVar

from adapters.governor import Lane

T = TypeVar("T")


class LaneQueue(Generic[T]):
    """FIFO within a lane, most urgent lane first."""

    def __init__(self) -> None:
        self._queues: dict[Lane, deque[T]] = {lane: deque() for lane in sorted(Lane)}
        self._length = 0

    def __len__(self) -> int:
        return self._length

    def push(self, lane: Lane, item: T) -> None:
        self._queues[lane].append(item)
        self._length += 1

    def pop(self) -> T | None:
        """The oldest item of the most urgent non-empty lane, or None."""
        for queue in self._queues.values():  # dict order is priority order
            if queue:
                self._length -= 1
                return queue.popleft()
        return None

    def counts(self) -> dict[str, int]:
        """Queued items per lane name (``critical``, ``master_data``, ``analytics``)."""
        return {lane.name.lower(): len(queue) for lane, queue in self._queues.items()}

    def clear(self) -> list[T]:
        """Remove and return everything, most urgent first."""
        items = [item for queue in self._queues.values() for item in queue]
        for queue in self._queues.values():
            queue.clear()
        self._length = 0
        return items
