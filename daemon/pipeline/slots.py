"""The pipeline's long-lived handles: what survives a component's restarts and what the
control server steers.

- :class:`WorkflowSlot`: one workflow's spec, settings, current runner and pause switch
  (``registry.workflows[name]``); :class:`WorkflowHost` is the supervised child running
  the slot's runner, stopping it while paused.
- :class:`DispatcherSlot`: the dispatcher's incarnations share one wake-up flag; it
  answers the pollers' backlog questions.
- :class:`SystemPausable`: a system's SystemControl as ``registry.systems[name]``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import msgspec
import structlog
import trio

from actors.actor import Actor
from actors.systems.control import SystemControl
from actors.workflows import (
    Dispatcher,
    Enabled,
    RunOutcome,
    Wakeup,
    WorkflowDeps,
    WorkflowRunner,
    WorkflowSettings,
    WorkflowSpec,
    default_owner,
)
from store import Journal

__all__ = ["DispatcherSlot", "SystemPausable", "WorkflowHost", "WorkflowSlot"]

log = structlog.get_logger(__name__)

OnOutcome = Callable[[RunOutcome], None]


# ------------------------------------------------------------------------ workflows


class WorkflowSlot:
    """One enabled workflow across its runner's incarnations: the spec, its settings, the
    runner running now, and the operator's pause switch (a :class:`Pausable`).

    Pausing stops the runner (no new claims; runs in hand finish); resuming starts a new
    runner, which learns every due time from the journal. The switch lives here, not in a
    runner, so a paused workflow stays paused when its host is restarted.
    """

    def __init__(
        self,
        spec: WorkflowSpec,
        settings: WorkflowSettings,
        *,
        journal: Journal,
        owners: Mapping[str, str],
        deps: WorkflowDeps,
        now: Callable[[], float],
        on_outcome: OnOutcome,
        owner: Callable[[], str] = default_owner,
        poll_interval_s: float = 30.0,
    ) -> None:
        self.spec = spec
        self.settings = settings
        self.runner: WorkflowRunner | None = None
        self.incarnations = 0
        self._journal = journal
        self._owners = dict(owners)
        self._deps = deps
        self._now = now
        self._on_outcome = on_outcome
        self._owner = owner
        self._poll_interval_s = poll_interval_s
        self._paused = False
        self._changed = trio.Event()

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def paused(self) -> bool:
        return self._paused

    def new_runner(self) -> WorkflowRunner:
        """A fresh runner with a new lease owner (called by the host for each start)."""
        self.incarnations += 1
        self.runner = WorkflowRunner(
            self.spec,
            self._journal,
            self.settings,
            owners=self._owners,
            now=self._now,
            owner=self._owner(),
            deps=self._deps,
            on_outcome=self._on_outcome,
            poll_interval_s=self._poll_interval_s,
        )
        return self.runner

    def notify(self) -> None:
        """New or released runs may be due; never blocks."""
        if self.runner is not None:
            self.runner.notify()

    async def pause(self) -> None:
        """Stop claiming runs (the runner stops; runs in hand finish)."""
        if not self._paused:
            self._paused = True
            if self.runner is not None:
                self.runner.request_stop()
            self._touch()
            log.info("workflow paused", workflow=self.name)
        await trio.lowlevel.checkpoint()

    async def resume(self) -> None:
        """Start claiming again (a new runner)."""
        if self._paused:
            self._paused = False
            self._touch()
            log.info("workflow resumed", workflow=self.name)
        await trio.lowlevel.checkpoint()

    def snapshot(self) -> dict[str, Any]:
        """For ``pssync status``: state, paused, runs in hand, lease owner."""
        runner = self.runner
        if self._paused:
            state = "paused"
        elif runner is None:
            state = "starting"
        else:
            state = "running"
        return {
            "state": state,
            "paused": self._paused,
            "active": runner.active if runner is not None else 0,
            "owner": runner.owner if runner is not None else None,
            "width": self.settings.width,
        }

    async def wait_changed(self, timeout_s: float) -> None:
        """Until the switch moves (or ``timeout_s`` passes)."""
        with trio.move_on_after(timeout_s):
            await self._changed.wait()

    def _touch(self) -> None:
        self._changed.set()
        self._changed = trio.Event()


class WorkflowHost(Actor[None]):
    """Runs one workflow's runner as a supervised child, honouring the pause switch."""

    def __init__(self, slot: WorkflowSlot) -> None:
        super().__init__(f"workflow:{slot.name}", mailbox_size=0)  # no messages
        self.slot = slot
        self._stopping = False
        self._stop_requested = trio.Event()

    def request_stop(self) -> None:
        """Drain: the runner stops claiming, its runs in hand finish, then the host returns."""
        self._stopping = True
        if self.slot.runner is not None:
            self.slot.runner.request_stop()
        self._stop_requested.set()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        started = False
        while not self._stopping:
            self.heartbeat()
            if self.slot.paused:
                if not started:
                    task_status.started()
                    started = True
                await self._wait_switch(until_paused=False)
                continue
            runner = self.slot.new_runner()
            async with trio.open_nursery() as nursery:
                await nursery.start(runner.run)
                if not started:
                    task_status.started()
                    started = True
                await self._wait_switch(until_paused=True)
                runner.request_stop()
            # The nursery has waited for the runner, hence for its runs in hand.

    async def _wait_switch(self, *, until_paused: bool) -> None:
        """Heartbeat until stopping or the pause switch is ``until_paused``."""
        while not self._stopping and self.slot.paused != until_paused:
            self.heartbeat()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._cancel_on_stop, nursery.cancel_scope)
                await self.slot.wait_changed(self.heartbeat_interval_s)
                nursery.cancel_scope.cancel()

    async def _cancel_on_stop(self, scope: trio.CancelScope) -> None:
        await self._stop_requested.wait()
        scope.cancel()


class DispatcherSlot:
    """The dispatcher across incarnations: one wake-up flag survives restarts."""

    def __init__(
        self,
        journal: Journal,
        workflows: Sequence[Enabled],
        *,
        now: Callable[[], float],
        runs_created: Callable[[str], None],
        poll_interval_s: float,
    ) -> None:
        self.wakeup = Wakeup()
        self.workflows = list(workflows)
        self.dispatcher: Dispatcher | None = None
        self._journal = journal
        self._now = now
        self._runs_created = runs_created
        self._poll_interval_s = poll_interval_s
        # Backlog is a pure journal read: answered by an instance that never runs, so
        # pollers (started before the dispatcher) can ask from the first moment.
        self._counter = self._make()

    def _make(self) -> Dispatcher:
        return Dispatcher(
            self._journal,
            self.workflows,
            now=self._now,
            runs_created=self._runs_created,
            wakeup=self.wakeup,
            poll_interval_s=self._poll_interval_s,
        )

    def new_dispatcher(self) -> Dispatcher:
        self.dispatcher = self._make()
        return self.dispatcher

    def notify(self) -> None:
        self.wakeup.set()

    async def backlog(self, workflow: str) -> int:
        """The poller's view: a feed whose workflow is not enabled has no backlog (its
        events wait in the journal until the workflow is enabled)."""
        if workflow not in self._counter.workflows:
            await trio.lowlevel.checkpoint()
            return 0
        return await self._counter.backlog(workflow)


# ------------------------------------------------------------------------ systems


class SystemPausable:
    """A system as the control server steers it: pausing stops its polls and commands."""

    def __init__(self, control: SystemControl) -> None:
        self.control = control

    async def pause(self) -> None:
        self.control.pause()
        await trio.lowlevel.checkpoint()

    async def resume(self) -> None:
        self.control.resume()
        await trio.lowlevel.checkpoint()

    def snapshot(self) -> dict[str, Any]:
        status = msgspec.to_builtins(self.control.status())
        return {"state": "paused" if self.control.paused else "running", **status}
