"""Request/response between actors: a request carries its own one-shot reply channel.

The asker builds the request around a fresh :class:`Reply`, sends it to the responder's
mailbox and waits for the answer, all under one deadline::

    balance = await ask(erp.mailbox, lambda reply: GetBalance(account, reply=reply), timeout_s=5)

The responder answers with ``reply.send(value)`` or ``reply.fail(error)``; the error is
raised in the asker. Neither ever blocks the responder, and answering an asker that has
given up is harmless (the answer is dropped; ``reply.abandoned`` lets a responder skip
work nobody waits for).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

import trio

from .errors import AskTimeout
from .mailbox import Mailbox

T = TypeVar("T")
M = TypeVar("M")


class Reply(Generic[T]):
    """A one-shot reply slot: exactly one ``send`` or ``fail``, read once by the asker."""

    __slots__ = ("_abandoned", "_done", "_error", "_value")

    def __init__(self) -> None:
        # An Event and a slot rather than a channel: one reply, and the responder must
        # never wait for (or fail because of) an asker who has gone.
        self._done = trio.Event()
        self._value: T | None = None
        self._error: Exception | None = None
        self._abandoned = False

    @property
    def replied(self) -> bool:
        return self._done.is_set()

    @property
    def abandoned(self) -> bool:
        """True once the asker stopped waiting (timeout or cancellation)."""
        return self._abandoned

    def send(self, value: T) -> None:
        """Answer with ``value``. A second answer is a bug and raises RuntimeError."""
        self._check_once()
        self._value = value
        self._done.set()

    def fail(self, error: Exception) -> None:
        """Answer with an error that the asker will raise."""
        self._check_once()
        self._error = error
        self._done.set()

    async def wait(self) -> T:
        """The answer (or its error, raised); used by :func:`ask`."""
        await self._done.wait()
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[return-value]

    def _check_once(self) -> None:
        if self._done.is_set():
            raise RuntimeError("this request has already been answered")


async def ask(
    mailbox: Mailbox[M],
    make_request: Callable[[Reply[T]], M],
    *,
    timeout_s: float,
) -> T:
    """Send ``make_request(reply)`` to ``mailbox`` and return the answer.

    The deadline covers both waiting for room in a full mailbox and waiting for the
    answer. Raises :class:`AskTimeout` when it passes, :class:`MailboxClosed` if the
    mailbox is closed, or the error the responder answered with.
    """
    reply: Reply[T] = Reply()
    request = make_request(reply)
    try:
        with trio.fail_after(timeout_s):
            await mailbox.send(request)
            return await reply.wait()
    except trio.TooSlowError as exc:
        raise AskTimeout(f"no reply from {mailbox.name!r} within {timeout_s} s") from exc
    finally:
        # Timed out, cancelled or refused: tell the responder nobody is listening.
        if not reply.replied:
            reply._abandoned = True
