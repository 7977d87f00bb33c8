"""The seam between system actors and vendor adapters.

A vendor adapter turns canonical commands into vendor calls and vendor change feeds into
canonical event envelopes; nothing past it sees vendor JSON. System actors (actors/systems)
know adapters only through :class:`VendorAdapter` and :class:`ChangeFeed`, so adding a vendor
never touches the runtime.

Every effect an adapter applies is idempotent at the vendor: an upsert by external id, the
command's ``idempotency_key`` where the vendor honours one, or a look before create. A
command executed twice (a step retried after a crash) therefore reports the same ids with
``created=False`` the second time.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import date
from decimal import Decimal
from typing import Protocol, runtime_checkable

from msgspec import Struct

from actors.messages import AnyCommand, Envelope, Money

from .governor import Lane
from .mapping import LiveMappings

__all__ = [
    "ChangeFeed",
    "CommandResult",
    "FeedPage",
    "ProjectTotals",
    "ReceivablesReader",
    "TotalsQuery",
    "VendorAdapter",
    "receivables_read",
]


class CommandResult(Struct, frozen=True, kw_only=True):
    """What a vendor did with one command; memoised as a workflow step's result.

    ``ids`` maps what the command named (a canonical id, or a role such as ``"invoice"``)
    to the id the vendor holds it under, for the journal's id map.
    """

    system: str
    ids: dict[str, str] = {}
    created: bool = False
    """True only when this call created the vendor object (not on an update or replay)."""
    details: dict[str, str] = {}
    """Vendor facts a later step may need (an invoice number, a hosted URL)."""


class FeedPage(Struct, frozen=True, kw_only=True):
    """One page of a change feed: events in feed order and the watermark after them.

    The poller appends ``envelopes`` first and stores ``watermark`` after, so a crash
    between the two re-reads that page, which the journal deduplicates by envelope id.
    """

    envelopes: tuple[Envelope, ...]
    watermark: str | None
    more: bool = False
    """True when the vendor has further changes beyond this page right now."""


class TotalsQuery(Struct, frozen=True, kw_only=True):
    """A reconciliation read: what a system holds for one project and period."""

    project_id: str
    """The canonical project id."""
    period_start: date
    period_end: date


class ProjectTotals(Struct, frozen=True, kw_only=True):
    """One system's totals for a project and period, as compared by ``reconcile``."""

    system: str
    project_id: str
    period_start: date
    period_end: date
    hours: Decimal = Decimal(0)
    amount: Money | None = None
    entries: int = 0


@runtime_checkable
class ChangeFeed(Protocol):
    """A vendor's stream of changes of one kind (won deals, approved time, invoice events)."""

    name: str
    """Stable name, the key of its watermark in the journal (``won_deals``)."""
    workflow: str
    """The workflow these events feed; its backlog pauses the poller past the high-water mark."""

    async def poll(self, watermark: str | None, *, limit: int) -> FeedPage:
        """Read up to ``limit`` changes after ``watermark`` (None: from the configured start)."""
        ...


@runtime_checkable
class VendorAdapter(Protocol):
    """One configured system's vendor API, spoken in canonical messages.

    An ERP's adapter may also offer the optional :class:`ReceivablesReader` read.
    """

    system: str
    """The configured system name (``crm``, ``erp_uk``)."""
    mappings: LiveMappings
    """The field mappings in use; ``pssync reload`` replaces them in place."""

    def feeds(self) -> Sequence[ChangeFeed]:
        """The change feeds this system offers, each polled by its own poller."""
        ...

    def lane_for(self, command: AnyCommand) -> Lane:
        """The governor lane a command travels in (financial postings first)."""
        ...

    async def execute(self, command: AnyCommand) -> CommandResult:
        """Apply one command idempotently; raises AdapterError subclasses on failure.

        A command this vendor does not handle is a PermanentError naming both.
        """
        ...

    async def totals(self, query: TotalsQuery) -> ProjectTotals:
        """Reconciliation totals for one project and period (PermanentError if not offered)."""
        ...

    async def aclose(self) -> None:
        """Release the HTTP client."""
        ...


class ReceivablesReader(Protocol):
    """An optional capability of a :class:`VendorAdapter`: an ERP's receivables.

    Not part of :class:`VendorAdapter`, because only an ERP holds receivables and an
    adapter should not have to declare a read it cannot make. An adapter that offers it
    defines this one method; the system actor finds it with :func:`receivables_read` and
    answers a receivables request to any other adapter with a PermanentError.
    """

    async def receivables(self, query: TotalsQuery) -> ProjectTotals:
        """The invoices held for one project and period: ``amount`` is their total (one
        currency), ``entries`` their count; a project the ERP does not know has zero."""
        ...


def receivables_read(
    adapter: object,
) -> Callable[[TotalsQuery], Awaitable[ProjectTotals]] | None:
    """``adapter.receivables`` (:class:`ReceivablesReader`) if it offers one, else None.

    An attribute look-up rather than ``isinstance`` with a runtime-checkable protocol:
    wrappers that delegate through ``__getattr__`` (the test stacks' watched adapters)
    still count, which ``isinstance`` stopped allowing in Python 3.12.
    """
    read = getattr(adapter, "receivables", None)
    return read if callable(read) else None
