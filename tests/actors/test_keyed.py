"""KeyedExecutor: per-key order, bounded parallelism, backpressure."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from actors import open_keyed_executor


class Recorder:
    """A handler that takes ``item[2]`` seconds and records order and concurrency."""

    def __init__(self) -> None:
        self.started: list[tuple[str, int]] = []
        self.finished: list[tuple[str, int]] = []
        self.running_keys: list[str] = []
        self.most_running = 0

    async def handle(self, item: tuple[str, int, float]) -> None:
        key, number, seconds = item
        assert key not in self.running_keys, f"two items of {key!r} ran at once"
        self.running_keys.append(key)
        self.started.append((key, number))
        self.most_running = max(self.most_running, len(self.running_keys))
        await trio.sleep(seconds)
        self.running_keys.remove(key)
        self.finished.append((key, number))


async def test_items_of_one_key_are_handled_in_order_even_when_later_ones_are_quicker(
    autojump_clock,
):
    recorder = Recorder()
    # Within each key the durations shrink, so anything but strict order would reorder.
    items = [("a", 1, 3.0), ("b", 1, 2.0), ("a", 2, 1.0), ("b", 2, 0.5), ("a", 3, 0.1)]

    async with open_keyed_executor(recorder.handle, width=4, max_pending=16) as keyed:
        for item in items:
            await keyed.submit(item[0], item)

    assert [number for key, number in recorder.finished if key == "a"] == [1, 2, 3]
    assert [number for key, number in recorder.finished if key == "b"] == [1, 2]
    assert recorder.most_running == 2  # a and b side by side, never two of a key


async def test_distinct_keys_run_in_parallel_up_to_the_width(autojump_clock):
    recorder = Recorder()
    began = trio.current_time()

    async with open_keyed_executor(recorder.handle, width=2, max_pending=16) as keyed:
        for key in "wxyz":
            await keyed.submit(key, (key, 1, 1.0))

    assert recorder.most_running == 2
    assert trio.current_time() - began == 2.0  # four one-second items, two at a time


async def test_one_key_never_runs_in_parallel_with_itself(autojump_clock):
    recorder = Recorder()
    began = trio.current_time()

    async with open_keyed_executor(recorder.handle, width=8, max_pending=16) as keyed:
        for number in range(3):
            await keyed.submit("only", ("only", number, 1.0))

    assert recorder.most_running == 1
    assert trio.current_time() - began == 3.0


async def test_submit_blocks_when_max_pending_items_are_in_hand():
    release = trio.Event()
    handled: list[int] = []

    async def handle(number: int) -> None:
        await release.wait()
        handled.append(number)

    submitted: list[int] = []
    async with open_keyed_executor(handle, width=2, max_pending=3) as keyed:

        async def produce() -> None:
            for number in range(10):
                await keyed.submit(number % 2, number)
                submitted.append(number)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(produce)
            await trio.testing.wait_all_tasks_blocked()

            stats = keyed.statistics()
            assert submitted == [0, 1, 2]
            assert stats.pending == 3
            assert stats.running == 2
            assert stats.keys == 2
            assert stats.tasks_waiting_submit == 1
            release.set()

    assert submitted == list(range(10))
    assert [number for number in handled if number % 2 == 0] == [0, 2, 4, 6, 8]
    assert keyed.statistics().pending == 0
    assert keyed.statistics().keys == 0


async def test_a_failing_handler_ends_the_executor():
    async def handle(number: int) -> None:
        raise RuntimeError(f"cannot handle {number}")

    with pytest.RaisesGroup(pytest.RaisesExc(RuntimeError, match="cannot handle 7")):
        async with open_keyed_executor(handle, width=1, max_pending=1) as keyed:
            await keyed.submit("k", 7)
            await trio.sleep_forever()  # cancelled by the failure


async def test_a_busy_key_goes_to_the_back_after_each_item(autojump_clock):
    recorder = Recorder()

    async with open_keyed_executor(recorder.handle, width=1, max_pending=16) as keyed:
        for number in range(3):
            await keyed.submit("busy", ("busy", number, 1.0))
        await trio.testing.wait_all_tasks_blocked()  # busy holds the one slot
        await keyed.submit("other", ("other", 0, 1.0))

    assert recorder.started == [("busy", 0), ("other", 0), ("busy", 1), ("busy", 2)]


async def test_width_and_max_pending_must_be_positive():
    with pytest.raises(ValueError, match="width >= 1"):
        async with open_keyed_executor(Recorder().handle, width=0, max_pending=1):
            pass
