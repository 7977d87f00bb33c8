"""Bounded mailboxes: backpressure instead of memory growth; closing."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from actors import MailboxClosed
from actors.actor import Actor
from actors.mailbox import Mailbox


class SlowCounter(Actor[int]):
    """Takes one second per message and remembers the order it saw."""

    def __init__(self) -> None:
        super().__init__("slow", mailbox_size=4)  # small, so the test can fill it
        self.seen: list[int] = []

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        async for number in self.messages():
            await trio.sleep(1.0)
            self.seen.append(number)


async def test_a_fast_producer_blocks_on_a_full_mailbox_instead_of_growing_it(autojump_clock):
    actor = SlowCounter()
    sent: list[int] = []
    buffer_high_water = 0
    produced = trio.Event()

    async def produce() -> None:
        nonlocal buffer_high_water
        for number in range(20):
            await actor.mailbox.send(number)
            sent.append(number)
            used = actor.mailbox.statistics().current_buffer_used
            buffer_high_water = max(buffer_high_water, used)
        produced.set()

    async with trio.open_nursery() as nursery:
        await nursery.start(actor.run)
        began = trio.current_time()
        nursery.start_soon(produce)
        await trio.testing.wait_all_tasks_blocked()

        # Given a slow actor busy with message 0: four more wait in the mailbox, and the
        # producer is parked on the sixth send rather than piling messages up.
        stats = actor.mailbox.statistics()
        assert stats.current_buffer_used == stats.max_buffer_size == 4
        assert stats.tasks_waiting_send == 1
        assert sent == [0, 1, 2, 3, 4]
        assert trio.current_time() == began

        await trio.sleep(2.5)  # two messages handled: two more accepted, then blocked again
        assert sent == list(range(7))
        assert actor.mailbox.statistics().tasks_waiting_send == 1

        await produced.wait()
        actor.request_stop()  # the actor drains what is left, then ends

    assert buffer_high_water <= 4
    assert actor.seen == list(range(20))
    assert trio.current_time() - began == 20.0  # the slow actor set the pace throughout


async def test_send_nowait_sheds_load_when_full():
    mailbox: Mailbox[str] = Mailbox("tiny", 1)
    mailbox.send_nowait("first")

    with pytest.raises(trio.WouldBlock):
        mailbox.send_nowait("second")


async def test_a_closed_mailbox_refuses_senders_but_delivers_what_it_holds():
    mailbox: Mailbox[str] = Mailbox("closing", 4)
    await mailbox.send("kept")
    mailbox.close()

    assert mailbox.closed
    with pytest.raises(MailboxClosed):
        await mailbox.send("refused")
    with pytest.raises(MailboxClosed):
        mailbox.send_nowait("refused")
    assert await mailbox.receive() == "kept"
    with pytest.raises(trio.EndOfChannel):
        await mailbox.receive()


async def test_messages_ends_when_the_mailbox_is_closed_and_drained():
    class Collector(Actor[str]):
        async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
            task_status.started()
            self.got = [message async for message in self.messages()]

    collector = Collector("collector", mailbox_size=2)  # holds the two test messages
    await collector.mailbox.send("a")
    await collector.mailbox.send("b")
    collector.request_stop()

    await collector.run()

    assert collector.got == ["a", "b"]


def test_a_negative_size_is_refused():
    with pytest.raises(ValueError, match="size"):
        Mailbox("bad", -1)
