"""A fake vendor, a small time-posting workflow on top of it, and journal helpers.

The fake is of the vendor, not of the engine: it applies an effect once per idempotency
key (as Stripe's Idempotency-Key or an external-id upsert does) and records every call,
so a test can tell a repeated effect from a repeated but deduplicated call.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal

import msgspec
import structlog
import trio

from actors.messages import Envelope, Money, TimeApproved, TimeEntry, encode_envelope
from actors.workflows import (
    RunContext,
    RunOutcome,
    WorkflowRunner,
    WorkflowSettings,
    WorkflowSpec,
)
from store import EventRecord, Journal

EPOCH = 1_700_000_000.0
"""Wall-clock epoch of trio time 0: the store's ``now`` follows the mock clock."""

OWNERS = {
    "contract": "sales-ops",
    "project": "pmo",
    "time": "time-desk",
    "billing": "accounts-receivable",
    "master_data": "data-stewards",
    "mapping": "integration-team",
}

log = structlog.get_logger("tests.workflow")


def wall() -> float:
    return EPOCH + trio.current_time()


class Changes:
    """Something happened (a vendor call, a run outcome): wake whoever waits on it."""

    def __init__(self) -> None:
        self._event = trio.Event()

    def touch(self) -> None:
        self._event.set()
        self._event = trio.Event()

    async def wait_for(self, predicate: Callable[[], bool]) -> None:
        # A virtual deadline: under the mock clock a regression fails in milliseconds.
        with trio.fail_after(3_600):
            while not predicate():
                await self._event.wait()


@dataclass
class Call:
    at: float
    op: str
    idempotency_key: str
    correlation_id: str
    key: str
    payload: tuple[str, ...]
    applied: bool = False


@dataclass
class FakeVendor:
    """Applies each idempotency key's effect once; scripts failures and pauses per op."""

    changes: Changes
    call_duration_s: float = 0.0
    calls: list[Call] = field(default_factory=list)
    effects: dict[str, str] = field(default_factory=dict)
    fail: dict[str, deque[Exception]] = field(default_factory=lambda: defaultdict(deque))
    # op → gate: a call of that op waits for it after applying its effect.
    hold_after_effect: dict[str, trio.Event] = field(default_factory=dict)
    running: int = 0
    max_running: int = 0

    def calls_of(self, op: str) -> list[Call]:
        return [call for call in self.calls if call.op == op]

    async def call(
        self, op: str, idempotency_key: str, correlation_id: str, key: str, payload: tuple[str, ...]
    ) -> str:
        call = Call(trio.current_time(), op, idempotency_key, correlation_id, key, payload)
        self.calls.append(call)
        self.running += 1
        self.max_running = max(self.max_running, self.running)
        self.changes.touch()
        try:
            if self.call_duration_s:
                await trio.sleep(self.call_duration_s)
            if self.fail[op]:
                raise self.fail[op].popleft()
            if idempotency_key not in self.effects:
                self.effects[idempotency_key] = f"{op.upper()}-{len(self.effects) + 1}"
                call.applied = True
            gate = self.hold_after_effect.get(op)
            if gate is not None:
                self.changes.touch()
                await gate.wait()
            return self.effects[idempotency_key]
        finally:
            self.running -= 1
            self.changes.touch()


class Posted(msgspec.Struct, frozen=True, kw_only=True):
    document: str
    hours: Decimal


async def post_time(ctx: RunContext) -> None:
    """The proof workflow: post a key's approved hours, then mark them exported."""
    vendor: FakeVendor = ctx.deps
    entries = [envelope.body.entry for envelope in ctx.events]
    entry_ids = tuple(entry.id for entry in entries)
    log.info("posting time", entries=len(entries))

    async def post() -> Posted:
        key = ctx.idempotency_key("post")
        document = await vendor.call("post", key, ctx.correlation_id, ctx.key, entry_ids)
        return Posted(document=document, hours=sum((e.hours for e in entries), Decimal(0)))

    async def mark() -> str:
        key = ctx.idempotency_key("mark")
        return await vendor.call("mark", key, ctx.correlation_id, ctx.key, entry_ids)

    posted = await ctx.step("post", post, result_type=Posted)
    assert isinstance(posted.hours, Decimal)
    await ctx.step("mark", mark, result_type=str)


def billable(events: tuple[Envelope, ...]) -> Money | None:
    amounts = [e.body.entry.bill_amount() for e in events if e.body.entry.bill_amount()]
    if not amounts:
        return None
    total = amounts[0]
    for amount in amounts[1:]:
        total = total + amount
    return total


POST_TIME = WorkflowSpec(
    name="post_time",
    triggers=(TimeApproved,),
    run=post_time,
    category="time",
    amount_at_risk=billable,
)
POST_TIME_BATCHED = WorkflowSpec(
    name="post_time_batched",
    triggers=("time.approved",),
    run=post_time,
    category="time",
    batching=True,
    amount_at_risk=billable,
)

FAST = WorkflowSettings(
    width=4,
    max_attempts=3,
    lease_s=30.0,
)


def time_approved(
    entry_id: str,
    *,
    project: str = "P-1",
    hours: str = "2",
    rate: str = "150.00",
    recorded_at: float = EPOCH,
) -> Envelope:
    entry = TimeEntry(
        id=entry_id,
        project_id=project,
        consultant_id="C-1",
        date_performed=date(2026, 3, 31),
        hours=Decimal(hours),
        approved=True,
        bill_rate=Money.of(rate, "USD"),
    )
    at = datetime.fromtimestamp(recorded_at, UTC)
    return Envelope.new(
        TimeApproved(entry=entry),
        source="psa",
        object_id=f"time_entry:{entry_id}",
        version=1,
        occurred_at=at,
        recorded_at=at,
    )


def record(envelope: Envelope) -> EventRecord:
    return EventRecord(
        id=envelope.id,
        type=envelope.type,
        key=envelope.key,
        source=envelope.source,
        correlation_id=envelope.correlation_id,
        causation_id=envelope.causation_id,
        occurred_at=envelope.occurred_at.timestamp(),
        recorded_at=envelope.recorded_at.timestamp(),
        schema_version=envelope.schema_version,
        body=encode_envelope(envelope),
    )


def other_event(event_id: str, *, key: str = "P-1") -> EventRecord:
    """An event no test workflow is triggered by (its body is never decoded)."""
    return EventRecord(
        id=event_id,
        type="account.changed",
        key=key,
        source="crm",
        correlation_id=f"corr-{event_id}",
        occurred_at=EPOCH,
        recorded_at=EPOCH,
        body=b"",
    )


async def append(journal: Journal, *envelopes: Envelope | EventRecord) -> list[int]:
    records = [e if isinstance(e, EventRecord) else record(e) for e in envelopes]
    result = await journal.append(records)
    return list(result.seqs)


@dataclass
class Harness:
    """The journal, the fake vendor and the outcomes runners reported, for one test."""

    journal: Journal
    changes: Changes = field(default_factory=Changes)
    outcomes: list[RunOutcome] = field(default_factory=list)
    vendor: FakeVendor = field(init=False)

    def __post_init__(self) -> None:
        self.vendor = FakeVendor(self.changes)

    def runner(
        self,
        spec: WorkflowSpec = POST_TIME,
        settings: WorkflowSettings = FAST,
        *,
        owner: str = "host:1:a",
        now: Callable[[], float] = wall,
        **kwargs,
    ) -> WorkflowRunner:
        return WorkflowRunner(
            spec,
            self.journal,
            settings,
            owners=OWNERS,
            now=now,
            owner=owner,
            deps=self.vendor,
            on_outcome=self._report,
            **kwargs,
        )

    def _report(self, outcome: RunOutcome) -> None:
        self.outcomes.append(outcome)
        self.changes.touch()

    def outcomes_of(self, kind: str) -> list[RunOutcome]:
        return [outcome for outcome in self.outcomes if outcome.outcome == kind]

    async def wait_for(self, predicate: Callable[[], bool]) -> None:
        await self.changes.wait_for(predicate)
