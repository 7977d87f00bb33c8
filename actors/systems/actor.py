"""The system actor: one per configured system, executing commands at its vendor.

It owns the system's :class:`~adapters.base.VendorAdapter` (and through its
``SystemClient`` the governor) and serves :data:`~actors.systems.messages.SystemRequest`:

- **Priority.** An accepted command is parked in a :class:`LaneQueue` under the lane the
  adapter names (``adapter.lane_for``); a dispatcher starts the most urgent one whenever
  fewer than ``max_concurrency`` run. Reading the mailbox is quick (no vendor call), so
  requests reach the lane queue almost at once and a critical posting overtakes the bulk
  queued before it. Executing FIFO would defeat the governor's own lanes: only requests
  already waiting in the governor can be reordered by it.
- **Backpressure.** At most ``max_queued`` requests wait in the lane queue; past that the
  actor stops reading its mailbox, so askers wait in ``send`` (under their ask deadline).
- **Errors are answers.** A vendor failure (or any error of the adapter) goes back to the
  asker through its Reply; the actor carries on. Only a bug in the actor itself ends it.
- **Reconciliation reads.** Totals and receivables queries travel the ANALYTICS lane,
  under the same ``command_timeout_s``. Receivables are an optional read
  (:class:`~adapters.base.ReceivablesReader`): asked of an adapter without one, the actor
  answers :class:`~actors.systems.messages.ReceivablesNotOffered` at once.
- **Pause.** While the system's :class:`SystemControl` is paused no request starts;
  in-flight ones finish. Requests keep being accepted and queued.
- **Drain.** Closing the mailbox (``request_stop``) lets queued and in-flight work finish,
  then the actor returns. Anything still queued when the actor ends (a crash, or the
  supervisor's shutdown timeout) is answered with :class:`~actors.errors.MailboxClosed`,
  so no asker waits for a reply that cannot come.

The adapter outlives the actor's incarnations (a restart reuses it); whoever built it
closes it (see :meth:`~actors.systems.wiring.Systems.aclose`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, assert_never

import structlog
import trio

from actors.actor import Actor
from actors.ask import Reply
from actors.errors import AdapterError, MailboxClosed, RetryableError
from actors.mailbox import Mailbox
from actors.messages.commands import command_tag
from adapters.base import VendorAdapter, receivables_read
from adapters.governor import Lane

from .control import SystemControl
from .lanes import LaneQueue
from .messages import (
    ExecuteCommand,
    GetSystemStatus,
    PauseSystem,
    QueryReceivables,
    QueryTotals,
    ReceivablesNotOffered,
    ResumeSystem,
    SystemRequest,
)

log = structlog.get_logger(__name__)

# Workflows ask with a deadline, so the mailbox only has to absorb a burst of asks while
# the actor moves earlier ones into its lane queue (which is where requests wait).
SYSTEM_MAILBOX_SIZE = 64


@dataclass(eq=False, slots=True)
class _Job:
    lane: Lane
    what: str
    correlation_id: str
    work: Callable[[], Awaitable[Any]]
    reply: Reply[Any]


class SystemActor(Actor[SystemRequest]):
    """Executes one system's commands and reconciliation reads by lane priority."""

    def __init__(
        self,
        adapter: VendorAdapter,
        *,
        control: SystemControl,
        name: str | None = None,
        mailbox: Mailbox[SystemRequest] | None = None,
        max_concurrency: int = 4,
        max_queued: int = 1_000,
        command_timeout_s: float | None = None,
        **actor_options: float,
    ) -> None:
        if max_concurrency < 1 or max_queued < 1:
            raise ValueError("max_concurrency and max_queued must be >= 1")
        if command_timeout_s is not None and command_timeout_s <= 0:
            raise ValueError("command_timeout_s must be > 0")
        super().__init__(
            name or adapter.system,
            mailbox=mailbox,
            mailbox_size=SYSTEM_MAILBOX_SIZE,
            **actor_options,
        )
        self.adapter = adapter
        self.system = adapter.system
        self.control = control
        self.max_concurrency = max_concurrency
        self.max_queued = max_queued
        self.command_timeout_s = command_timeout_s
        self._queue: LaneQueue[_Job] = LaneQueue()
        self._in_flight = 0
        self._changed = trio.Event()
        self._nursery: trio.Nursery | None = None

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        unsubscribe = self.control.subscribe(self._wake)
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                nursery.start_soon(self._dispatch)
                task_status.started()
                async for request in self.messages():
                    await self._accept(request)
                # Mailbox closed and drained: finish what was accepted, then stop.
                while self._queue or self._in_flight:
                    self.heartbeat()
                    with trio.move_on_after(self.heartbeat_interval_s):
                        await self._changed_wait()
                nursery.cancel_scope.cancel()
        finally:
            unsubscribe()
            self._abandon_queue()

    # -- intake ------------------------------------------------------------------------

    async def _accept(self, request: SystemRequest) -> None:
        match request:
            case ExecuteCommand(command=command, reply=reply):
                what = command_tag(command)
                try:
                    lane = Lane(self.adapter.lane_for(command))
                except Exception as exc:  # the adapter's failure is the asker's answer
                    self._answer_error(reply, exc, what, command.correlation_id)
                    return
                work = partial(self.adapter.execute, command)
                await self._enqueue(_Job(lane, what, command.correlation_id, work, reply))
            case QueryTotals(query=query, reply=reply):
                work = partial(self.adapter.totals, query)
                await self._enqueue(_Job(Lane.ANALYTICS, "totals", "", work, reply))
            case QueryReceivables(query=query, reply=reply):
                read = receivables_read(self.adapter)
                if read is None:
                    error = ReceivablesNotOffered(system=self.system, vendor=self._vendor())
                    self._answer_error(reply, error, "receivables", "")
                    return
                work = partial(read, query)
                await self._enqueue(_Job(Lane.ANALYTICS, "receivables", "", work, reply))
            case PauseSystem(reply=reply):
                changed = self.control.pause()
                if changed:
                    log.info("system.paused", system=self.system)
                reply.send(changed)
            case ResumeSystem(reply=reply):
                changed = self.control.resume()
                if changed:
                    log.info("system.resumed", system=self.system)
                reply.send(changed)
            case GetSystemStatus(reply=reply):
                reply.send(self.control.status())
            case _:
                assert_never(request)

    async def _enqueue(self, job: _Job) -> None:
        # Full: stop reading the mailbox until a job starts (backpressure), heartbeating
        # meanwhile because waiting for the vendor is not being wedged.
        while len(self._queue) >= self.max_queued:
            self.heartbeat()
            with trio.move_on_after(self.heartbeat_interval_s):
                await self._changed_wait()
        self._queue.push(job.lane, job)
        self._publish()
        self._wake()

    # -- execution ---------------------------------------------------------------------

    async def _dispatch(self) -> None:
        assert self._nursery is not None
        while True:
            while not self.control.paused and self._in_flight < self.max_concurrency:
                job = self._queue.pop()
                if job is None:
                    break
                if job.reply.abandoned:  # its asker gave up; a retry will come if needed
                    self.control.abandoned += 1
                    continue
                self._in_flight += 1
                self.control.in_flight += 1
                self._nursery.start_soon(self._execute, job)
            self._publish()
            await self._changed_wait()

    async def _execute(self, job: _Job) -> None:
        try:
            deadline = (
                trio.fail_after(self.command_timeout_s)
                if self.command_timeout_s is not None
                else contextlib.nullcontext()
            )
            try:
                with deadline:
                    result = await job.work()
            except trio.TooSlowError as exc:
                error = RetryableError(
                    f"{job.what}: no result within {self.command_timeout_s:g} s",
                    system=self.system,
                    code="TIMEOUT",
                )
                error.__cause__ = exc
                self._answer_error(job.reply, error, job.what, job.correlation_id)
            except Exception as exc:  # vendor failures are answers, never the actor's end
                self._answer_error(job.reply, exc, job.what, job.correlation_id)
            else:
                self.control.executed += 1
                job.reply.send(result)
        finally:
            self._in_flight -= 1
            self.control.in_flight -= 1
            if not job.reply.replied:  # cancelled: the actor is going away
                job.reply.fail(MailboxClosed(f"system actor {self.name!r} stopped"))
            self._wake()

    def _answer_error(
        self, reply: Reply[Any], error: Exception, what: str, correlation: str
    ) -> None:
        self.control.failed += 1
        fields = {"system": self.system, "request": what, "correlation_id": correlation}
        if isinstance(error, AdapterError):
            log.warning("system.request_failed", error=str(error), **fields)
        else:
            # Not a classified vendor failure: an adapter bug or an undecodable payload.
            log.error("system.request_error", error=f"{type(error).__name__}: {error}", **fields)
        reply.fail(error)

    # -- bookkeeping -------------------------------------------------------------------

    def _vendor(self) -> str:
        """The adapter's vendor (its mappings say), else its class name."""
        vendor = getattr(getattr(self.adapter, "mappings", None), "vendor", None)
        return vendor if isinstance(vendor, str) and vendor else type(self.adapter).__name__

    def _wake(self) -> None:
        # Set and replace here, not in the waiter: every task waiting now holds the old
        # event and wakes; a task that waits later gets the new one. Nothing is missed.
        self._changed.set()
        self._changed = trio.Event()

    async def _changed_wait(self) -> None:
        await self._changed.wait()

    def _publish(self) -> None:
        self.control.queued = self._queue.counts()

    def _abandon_queue(self) -> None:
        for job in self._queue.clear():
            if not job.reply.replied:
                job.reply.fail(MailboxClosed(f"system actor {self.name!r} stopped"))
        self._publish()
