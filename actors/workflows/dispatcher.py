"""The dispatcher: moves journal events to workflow runs (the durable inbox).

For every enabled workflow it reads the events past that workflow's cursor, in pages,
and turns those that trigger it into runs: one run per event, or for a batching
workflow one run per group of up to ``max_batch`` events of one key, taken in seq order
so a key's runs are created (and therefore executed) in the order of its events. The
runs and the new cursor are committed in one transaction (``create_runs_and_advance``),
so a crash at any instant neither loses an event nor creates a run twice: the restarted
dispatcher reads again from the committed cursor.

The cursor moves over every event it has seen, triggering or not. Events are read by
trigger type with the journal's highest seq taken *before* the read: every seq at or
below it is committed by then, so the cursor can move to it even where the page holds
no triggering event, and no event committed later is skipped.

It wakes on :meth:`notify` (pollers call it after an append) and otherwise every
``poll_interval_s`` of trio's clock; after creating runs it calls ``runs_created`` with
the workflow's name (the daemon wakes that workflow's runner).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import structlog
import trio

from actors.actor import Actor
from store import UNFINISHED_STATUSES, EventRecord, Journal, NewRun

from .spec import WorkflowSettings, WorkflowSpec
from .wakeup import Wakeup

log = structlog.get_logger(__name__)

DEFAULT_PAGE_SIZE = 1_000


@dataclass(frozen=True)
class Enabled:
    """A workflow the dispatcher feeds, with its settings."""

    spec: WorkflowSpec
    settings: WorkflowSettings


def group_runs(
    workflow: WorkflowSpec, events: Iterable[EventRecord], *, max_batch: int, replay: bool = False
) -> list[NewRun]:
    """The runs for ``events`` (in seq order, all triggering ``workflow``), in seq order of
    their first trigger: one per event, or per chunk of one key's events for batching."""
    if not workflow.batching:
        return [
            NewRun(
                workflow=workflow.name,
                key=event.key,
                trigger_seqs=(_seq(event),),
                correlation_id=event.correlation_id,
                replay=replay,
            )
            for event in events
        ]
    groups: list[list[EventRecord]] = []
    open_group: dict[str, list[EventRecord]] = {}
    for event in events:
        group = open_group.get(event.key)
        if group is None or len(group) >= max_batch:
            group = []
            groups.append(group)
            open_group[event.key] = group
        group.append(event)
    return [
        NewRun(
            workflow=workflow.name,
            key=group[0].key,
            trigger_seqs=tuple(_seq(event) for event in group),
            correlation_id=group[0].correlation_id,
            replay=replay,
        )
        for group in groups
    ]


class Dispatcher(Actor[None]):
    """Journal → runs for the enabled workflows; see the module docstring."""

    def __init__(
        self,
        journal: Journal,
        workflows: Sequence[Enabled],
        *,
        now: Callable[[], float] = time.time,
        runs_created: Callable[[str], None] = lambda workflow: None,
        wakeup: Wakeup | None = None,
        poll_interval_s: float = 5.0,
        page_size: int = DEFAULT_PAGE_SIZE,
        name: str = "dispatcher",
    ) -> None:
        super().__init__(name, mailbox_size=0)  # no messages: wake-ups and direct calls
        self.journal = journal
        self.workflows: Mapping[str, Enabled] = {
            enabled.spec.name: enabled for enabled in workflows if enabled.settings.enabled
        }
        self._now = now
        self._runs_created = runs_created
        self.wakeup = wakeup or Wakeup()
        self.poll_interval_s = poll_interval_s
        self.page_size = page_size
        self._stop = trio.Event()

    def notify(self) -> None:
        """There are new events (a poller appended); never blocks."""
        self.wakeup.set()

    def request_stop(self) -> None:
        self._stop.set()
        self.wakeup.set()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        log.info("dispatcher started", workflows=sorted(self.workflows))
        task_status.started()
        due = True
        next_poll = trio.current_time()
        while not self._stop.is_set():
            self.heartbeat()
            if due:
                await self.dispatch_once()
                next_poll = trio.current_time() + self.poll_interval_s
            # Wake at least every heartbeat interval to show we are alive.
            timeout = min(next_poll - trio.current_time(), self.heartbeat_interval_s)
            woken = await self.wakeup.wait(max(timeout, 0.0))
            due = woken or trio.current_time() >= next_poll
        log.info("dispatcher stopped")

    async def dispatch_once(self) -> int:
        """Dispatch until every enabled workflow's cursor has caught up with the journal;
        return how many runs were created."""
        created = 0
        for enabled in self.workflows.values():
            created += await self._dispatch_workflow(enabled)
        return created

    async def _dispatch_workflow(self, enabled: Enabled) -> int:
        workflow = enabled.spec
        types = sorted(workflow.trigger_types)
        created = 0
        while True:
            self.heartbeat()
            end = await self.journal.max_seq()
            cursor = await self.journal.get_cursor(workflow.name)
            if cursor >= end:
                return created
            page = await self.journal.read_events(cursor, self.page_size, types)
            page = [event for event in page if _seq(event) <= end]
            full = len(page) == self.page_size
            # A full page may stop short of ``end``: move only to its last event then.
            new_cursor = _seq(page[-1]) if full else end
            new_runs = group_runs(workflow, page, max_batch=enabled.settings.max_batch)
            ids = await self.journal.create_runs_and_advance(
                workflow.name, new_runs, new_cursor, self._now()
            )
            fresh = sum(run_id is not None for run_id in ids)
            created += fresh
            if fresh:
                log.info(
                    "runs created",
                    workflow=workflow.name,
                    runs=fresh,
                    events=len(page),
                    cursor=new_cursor,
                )
                self._runs_created(workflow.name)

    async def backlog(self, workflow: str) -> int:
        """Events past ``workflow``'s cursor that trigger it, plus its unfinished runs.

        Counted up to the workflow's ``high_water_mark`` (a poller needs to know whether
        it is over the mark, not by how much): at or above it, a lower bound.
        """
        enabled = self.workflows[workflow]
        cap = enabled.settings.high_water_mark
        count = 0
        for status in UNFINISHED_STATUSES:
            runs = await self.journal.list_runs(status=status, workflow=workflow, limit=cap)
            count += len(runs)
        types = sorted(enabled.spec.trigger_types)
        after = await self.journal.get_cursor(workflow)
        while count < cap:
            page = await self.journal.read_events(after, min(self.page_size, cap - count), types)
            count += len(page)
            if not page:
                break
            after = _seq(page[-1])
        return count


def _seq(event: EventRecord) -> int:
    assert event.seq is not None, "events read from the journal have a seq"
    return event.seq
