"""A resettable wake-up flag: "there may be new work", set by anyone, awaited by one loop."""

from __future__ import annotations

import math

import trio


class Wakeup:
    """``set()`` from any task (never blocks); ``wait(timeout_s)`` returns once set or after
    the timeout, and clears the flag so the next ``wait`` waits for a new ``set()``.

    A ``set()`` that arrives while nobody waits is kept, so none is lost between the
    loop's check for work and its next wait.
    """

    def __init__(self) -> None:
        self._event = trio.Event()

    def set(self) -> None:
        self._event.set()

    @property
    def is_set(self) -> bool:
        return self._event.is_set()

    async def wait(self, timeout_s: float = math.inf) -> bool:
        """True if woken, False on timeout (trio's clock)."""
        with trio.move_on_after(timeout_s):
            await self._event.wait()
        woken = self._event.is_set()
        if woken:
            self._event = trio.Event()
        return woken
