"""Replay: run a workflow again over part of its history.

``pssync replay --workflow W (--from-seq N [--to-seq M] | --since TIME | --key K)`` calls
:func:`replay` on the journal, offline or in the running daemon. It creates runs flagged
``replay`` for the selected trigger events; the workflow's runner executes them like any
other run, after the key's earlier runs. Their steps are not memoised (new runs), but
their idempotency keys derive from workflow, trigger event ids and step name, so they
are the keys the first runs sent and the vendors recognise every repeated effect.

That holds for a batching workflow only if a replayed group has the same events as the
original run: so an event that already has a run is replayed with that run's whole
trigger group (which may reach outside the selected range), and only events that never
had one are grouped afresh. Only events the dispatcher has handled (at or below the
workflow's cursor) are replayed; later ones will get their first run from it.

``since`` compares with the time pssync recorded the event (``recorded_at``).
"""

from __future__ import annotations

from dataclasses import dataclass

from store import EventRecord, Journal, NewRun

from .dispatcher import DEFAULT_PAGE_SIZE, group_runs
from .spec import WorkflowSpec

_ALL_RUNS = 1_000_000  # list_runs needs a limit; one key never has this many runs


@dataclass(frozen=True, kw_only=True)
class ReplaySelection:
    """Which history to replay: a seq range, everything recorded since a time, or a key."""

    from_seq: int | None = None
    to_seq: int | None = None
    since: float | None = None
    key: str | None = None

    def __post_init__(self) -> None:
        chosen = [self.from_seq is not None, self.since is not None, self.key is not None]
        if sum(chosen) != 1:
            raise ValueError("replay needs exactly one of from_seq, since or key")
        if self.to_seq is not None and self.from_seq is None:
            raise ValueError("to_seq needs from_seq")
        if self.from_seq is not None and (
            self.from_seq < 1 or (self.to_seq is not None and self.to_seq < self.from_seq)
        ):
            raise ValueError("need 1 <= from_seq <= to_seq")

    def matches(self, event: EventRecord) -> bool:
        if self.since is not None and event.recorded_at < self.since:
            return False
        return self.key is None or event.key == self.key


@dataclass(frozen=True, kw_only=True)
class ReplayResult:
    """What a replay did (or, for a dry run, would do)."""

    workflow: str
    events: int
    """Selected trigger events."""
    runs: tuple[NewRun, ...]
    run_ids: tuple[int, ...]
    """Ids of the replay runs created; empty for a dry run."""
    up_to_seq: int
    """The workflow's cursor: later events were left to the dispatcher."""


async def select_events(
    journal: Journal,
    workflow: WorkflowSpec,
    selection: ReplaySelection,
    *,
    page_size: int = DEFAULT_PAGE_SIZE,
) -> tuple[list[EventRecord], int]:
    """The selected events that trigger ``workflow``, in seq order, and the cursor."""
    cursor = await journal.get_cursor(workflow.name)
    last = cursor if selection.to_seq is None else min(cursor, selection.to_seq)
    after = 0 if selection.from_seq is None else selection.from_seq - 1
    types = sorted(workflow.trigger_types)
    selected: list[EventRecord] = []
    while after < last:
        page = await journal.read_events(after, page_size, types)
        for event in page:
            assert event.seq is not None
            if event.seq > last:
                return selected, cursor
            if selection.matches(event):
                selected.append(event)
        if len(page) < page_size:
            break
        after = page[-1].seq or after
    return selected, cursor


async def plan_replay(
    journal: Journal,
    workflow: WorkflowSpec,
    selection: ReplaySelection,
    *,
    max_batch: int = 500,
    page_size: int = DEFAULT_PAGE_SIZE,
) -> ReplayResult:
    """The replay runs :func:`replay` would create, without creating them (dry run)."""
    events, cursor = await select_events(journal, workflow, selection, page_size=page_size)
    if not workflow.batching:
        runs = group_runs(workflow, events, max_batch=1, replay=True)
        return ReplayResult(
            workflow=workflow.name,
            events=len(events),
            runs=tuple(runs),
            run_ids=(),
            up_to_seq=cursor,
        )
    original: dict[int, NewRun] = {}
    for key in sorted({event.key for event in events}):
        for run in await journal.list_runs(workflow=workflow.name, key=key, limit=_ALL_RUNS):
            if run.replay:
                continue
            group = NewRun(
                workflow=run.workflow,
                key=run.key,
                trigger_seqs=run.trigger_seqs,
                correlation_id=run.correlation_id,
                replay=True,
            )
            for seq in run.trigger_seqs:
                original[seq] = group
    runs: dict[tuple[int, ...], NewRun] = {}
    fresh: list[EventRecord] = []
    for event in events:
        assert event.seq is not None
        group = original.get(event.seq)
        if group is None:
            fresh.append(event)
        else:
            runs[group.trigger_seqs] = group
    for run in group_runs(workflow, fresh, max_batch=max_batch, replay=True):
        runs[run.trigger_seqs] = run
    ordered = sorted(runs.values(), key=lambda run: min(run.trigger_seqs))
    return ReplayResult(
        workflow=workflow.name,
        events=len(events),
        runs=tuple(ordered),
        run_ids=(),
        up_to_seq=cursor,
    )


async def replay(
    journal: Journal,
    workflow: WorkflowSpec,
    selection: ReplaySelection,
    *,
    now: float,
    max_batch: int = 500,
    page_size: int = DEFAULT_PAGE_SIZE,
) -> ReplayResult:
    """Create replay runs for the selected history of ``workflow`` (durable on return).

    In a running daemon, wake the workflow's runner afterwards (``runner.notify()``).
    """
    plan = await plan_replay(journal, workflow, selection, max_batch=max_batch, page_size=page_size)
    ids = await journal.create_runs(plan.runs, now) if plan.runs else []
    return ReplayResult(
        workflow=plan.workflow,
        events=plan.events,
        runs=plan.runs,
        run_ids=tuple(run_id for run_id in ids if run_id is not None),
        up_to_seq=plan.up_to_seq,
    )
