"""ask(): a request carries its own one-shot reply; deadlines on trio's clock."""

from __future__ import annotations

from dataclasses import dataclass
from typing import assert_never

import pytest
import trio
import trio.testing

from actors import AskTimeout, MailboxClosed, Reply, ask
from actors.actor import Actor
from actors.mailbox import Mailbox


@dataclass(frozen=True)
class Double:
    """Sent by tests: answer twice ``number``, after ``delay_s``."""

    number: int
    reply: Reply[int]
    delay_s: float = 0.0


@dataclass(frozen=True)
class Divide:
    """Sent by tests: answer ``1 / number`` or the ZeroDivisionError."""

    number: int
    reply: Reply[float]


@dataclass(frozen=True)
class Ignore:
    """Sent by tests: never answered."""

    reply: Reply[None]


Request = Double | Divide | Ignore


class Calculator(Actor[Request]):
    def __init__(self) -> None:
        super().__init__("calculator", mailbox_size=4)  # tests send a few at a time
        self.ignored: list[Reply[None]] = []
        self.handled = 0

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        async for request in self.messages():
            match request:
                case Double(number=number, reply=reply, delay_s=delay_s):
                    await trio.sleep(delay_s)
                    reply.send(2 * number)
                case Divide(number=number, reply=reply):
                    try:
                        reply.send(1 / number)
                    except ZeroDivisionError as exc:
                        reply.fail(exc)
                case Ignore(reply=reply):
                    self.ignored.append(reply)
                case _:
                    assert_never(request)
            self.handled += 1


async def test_ask_returns_the_reply(nursery):
    calculator = Calculator()
    await nursery.start(calculator.run)

    assert await ask(calculator.mailbox, lambda reply: Double(21, reply), timeout_s=1.0) == 42


async def test_ask_raises_the_error_the_responder_replied_with(nursery):
    calculator = Calculator()
    await nursery.start(calculator.run)

    with pytest.raises(ZeroDivisionError):
        await ask(calculator.mailbox, lambda reply: Divide(0, reply), timeout_s=1.0)
    assert await ask(calculator.mailbox, lambda reply: Divide(4, reply), timeout_s=1.0) == 0.25


async def test_ask_times_out_on_trio_clock_and_marks_the_reply_abandoned(autojump_clock, nursery):
    calculator = Calculator()
    await nursery.start(calculator.run)
    began = trio.current_time()

    with pytest.raises(AskTimeout, match=r"'calculator' within 2\.5 s"):
        await ask(calculator.mailbox, Ignore, timeout_s=2.5)

    assert trio.current_time() - began == 2.5
    (reply,) = calculator.ignored
    assert reply.abandoned


async def test_replying_to_an_asker_that_gave_up_does_not_harm_the_responder(
    autojump_clock, nursery
):
    calculator = Calculator()
    await nursery.start(calculator.run)

    with pytest.raises(AskTimeout):
        await ask(calculator.mailbox, lambda reply: Double(1, reply, delay_s=5.0), timeout_s=1.0)
    # The responder answers the gone asker at t=5 and goes on serving.
    assert await ask(calculator.mailbox, lambda reply: Double(2, reply), timeout_s=10.0) == 4
    assert calculator.handled == 2


async def test_ask_deadline_covers_waiting_for_room_in_a_full_mailbox(autojump_clock):
    mailbox: Mailbox[Ignore] = Mailbox("nobody-reads", 0)
    began = trio.current_time()

    with pytest.raises(AskTimeout):
        await ask(mailbox, Ignore, timeout_s=3.0)

    assert trio.current_time() - began == 3.0


async def test_asking_a_closed_mailbox_raises_mailbox_closed():
    mailbox: Mailbox[Ignore] = Mailbox("gone", 4)
    mailbox.close()

    with pytest.raises(MailboxClosed, match="'gone'"):
        await ask(mailbox, Ignore, timeout_s=1.0)


def test_a_reply_is_one_shot():
    reply: Reply[int] = Reply()
    reply.send(1)

    with pytest.raises(RuntimeError, match="already been answered"):
        reply.send(2)
    with pytest.raises(RuntimeError, match="already been answered"):
        reply.fail(ValueError("late"))


async def test_a_cancelled_asker_abandons_its_reply(autojump_clock, nursery):
    calculator = Calculator()
    await nursery.start(calculator.run)

    with trio.move_on_after(1.0):
        await ask(calculator.mailbox, Ignore, timeout_s=10.0)

    (reply,) = calculator.ignored
    assert reply.abandoned
    assert not reply.replied
