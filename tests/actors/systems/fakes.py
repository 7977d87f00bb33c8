"""Fakes of the vendor seam (``adapters.base``): an adapter and a change feed in memory.

They stand in for a vendor, not for the code under test: the system actor and the
pollers run for real, against a real journal.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from datetime import UTC, date, datetime

import trio

from actors.errors import PayloadError
from actors.messages import (
    AnyCommand,
    Envelope,
    FinalizeInvoice,
    InvoiceStatus,
    InvoiceStatusChanged,
    Money,
    UpdateAccountFields,
)
from adapters.base import CommandResult, FeedPage, ProjectTotals, TotalsQuery
from adapters.governor import Lane

T0 = datetime(2026, 11, 30, 17, 0, tzinfo=UTC)


def envelope(number: int, *, version: str = "v1", source: str = "billing") -> Envelope:
    """An invoice status change; the same number and version always give the same id."""
    return Envelope.new(
        InvoiceStatusChanged(invoice_id=f"in_{number}", status=InvoiceStatus.OPEN),
        source=source,
        object_id=f"in_{number}",
        version=version,
        occurred_at=T0,
        recorded_at=T0,
    )


def posting(key: str) -> FinalizeInvoice:
    """A financial posting: the adapter puts it in the critical lane."""
    return FinalizeInvoice(idempotency_key=key, invoice_id=f"in_{key}", correlation_id="c-1")


def bulk(key: str) -> UpdateAccountFields:
    """A master-data update: the adapter puts it in the master-data lane."""
    return UpdateAccountFields(idempotency_key=key, account_id=f"acc_{key}", changes=())


class Changes:
    """A condition variable on trio events: ``await changes.until(lambda: …)``."""

    def __init__(self) -> None:
        self._event = trio.Event()

    def notify(self) -> None:
        self._event.set()
        self._event = trio.Event()

    async def until(self, predicate: Callable[[], bool]) -> None:
        # A virtual deadline: a regression fails fast under the mock clock.
        with trio.fail_after(100_000):
            while not predicate():
                await self._event.wait()


class FakeAdapter:
    """A vendor that records what it was asked, optionally holding or failing commands."""

    def __init__(self, system: str = "billing", feeds: tuple[FakeFeed, ...] = ()) -> None:
        self.system = system
        self._feeds = feeds
        self.started: list[str] = []
        self.finished: list[str] = []
        self.hold: trio.Event | None = None
        """When set to an Event, every command waits for it after starting."""
        self.failures: dict[str, Exception] = {}
        self.bad_lane: set[str] = set()
        self.changes = Changes()
        self.closed = False

    def feeds(self) -> tuple[FakeFeed, ...]:
        return self._feeds

    def lane_for(self, command: AnyCommand) -> Lane:
        if command.idempotency_key in self.bad_lane:
            raise ValueError(f"no lane for {command.idempotency_key}")
        return Lane.CRITICAL if isinstance(command, FinalizeInvoice) else Lane.MASTER_DATA

    async def execute(self, command: AnyCommand) -> CommandResult:
        key = command.idempotency_key
        self.started.append(key)
        self.changes.notify()
        try:
            if self.hold is not None:
                await self.hold.wait()
            await trio.lowlevel.checkpoint()
            if key in self.failures:
                raise self.failures[key]
            return CommandResult(system=self.system, ids={"command": key}, created=True)
        finally:
            self.finished.append(key)
            self.changes.notify()

    async def totals(self, query: TotalsQuery) -> ProjectTotals:
        await trio.lowlevel.checkpoint()
        return ProjectTotals(
            system=self.system,
            project_id=query.project_id,
            period_start=query.period_start,
            period_end=query.period_end,
            entries=3,
        )

    async def aclose(self) -> None:
        self.closed = True


class FakeErp(FakeAdapter):
    """A vendor that also offers the optional receivables read (``adapters.base``)."""

    def __init__(self, system: str = "erp") -> None:
        super().__init__(system)
        self.receivables_asked: list[TotalsQuery] = []

    async def receivables(self, query: TotalsQuery) -> ProjectTotals:
        self.receivables_asked.append(query)
        self.changes.notify()
        if self.hold is not None:
            await self.hold.wait()
        await trio.lowlevel.checkpoint()
        return ProjectTotals(
            system=self.system,
            project_id=query.project_id,
            period_start=query.period_start,
            period_end=query.period_end,
            amount=Money.of("1250.00", "USD"),
            entries=2,
        )


class FakeFeed:
    """An in-memory change feed; the watermark is the index of the next record.

    ``errors`` are raised by the next polls, one each; a record whose index is in
    ``poison`` makes any page that contains it raise PayloadError, as an adapter does
    when one vendor record does not map.
    """

    def __init__(
        self,
        records: list[Envelope],
        *,
        name: str = "invoice_events",
        workflow: str = "invoice_feedback",
    ) -> None:
        self.name = name
        self.workflow = workflow
        self.records = records
        self.errors: deque[Exception] = deque()
        self.poison: set[int] = set()
        self.calls: list[tuple[str | None, int]] = []
        self.times: list[float] = []
        self.changes = Changes()
        self.hold: trio.Event | None = None
        """When set to an Event, every poll waits for it before answering."""

    async def poll(self, watermark: str | None, *, limit: int) -> FeedPage:
        self.calls.append((watermark, limit))
        self.times.append(trio.current_time())
        self.changes.notify()
        await trio.lowlevel.checkpoint()
        if self.hold is not None:
            await self.hold.wait()
        if self.errors:
            raise self.errors.popleft()
        start = int(watermark or 0)
        end = min(len(self.records), start + limit)
        for index in range(start, end):
            if index in self.poison:
                raise PayloadError(
                    "expected a decimal, got 'n/a'", where=f"billing/invoice in_{index}/amount"
                )
        return FeedPage(
            envelopes=tuple(self.records[start:end]),
            watermark=str(end) if end else watermark,
            more=end < len(self.records),
        )


def totals_query() -> TotalsQuery:
    return TotalsQuery(
        project_id="P-1", period_start=date(2026, 11, 1), period_end=date(2026, 11, 30)
    )
