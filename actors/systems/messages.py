"""What a system actor's mailbox takes, and the helpers that ask it.

Every request carries its own :class:`~actors.ask.Reply`; the actor answers each exactly
once, with the result or with the error (a vendor failure is an answer, not a crash)::

    result = await execute(systems.mailboxes["erp"], command, timeout_s=60)

Reconciliation reads (analytics lane): :func:`query_totals` from any system that keeps
totals, :func:`query_receivables` from an ERP whose adapter offers the optional
:class:`~adapters.base.ReceivablesReader` read. Asked of one that does not, the actor
answers :class:`ReceivablesNotOffered`.
"""

from __future__ import annotations

from dataclasses import dataclass

from actors.ask import Reply, ask
from actors.errors import PermanentError
from actors.mailbox import Mailbox
from actors.messages import AnyCommand
from adapters.base import CommandResult, ProjectTotals, TotalsQuery

from .control import SystemStatus

__all__ = [
    "ExecuteCommand",
    "GetSystemStatus",
    "PauseSystem",
    "QueryReceivables",
    "QueryTotals",
    "ReceivablesNotOffered",
    "ResumeSystem",
    "SystemRequest",
    "execute",
    "pause_system",
    "query_receivables",
    "query_totals",
    "resume_system",
    "system_status",
]


@dataclass(frozen=True, slots=True)
class ExecuteCommand:
    """Sent by a workflow step: apply ``command`` at this system's vendor."""

    command: AnyCommand
    reply: Reply[CommandResult]


@dataclass(frozen=True, slots=True)
class QueryTotals:
    """Sent by the reconcile workflow: this system's totals for a project and period."""

    query: TotalsQuery
    reply: Reply[ProjectTotals]


@dataclass(frozen=True, slots=True)
class QueryReceivables:
    """Sent by the reconcile workflow: this ERP's receivables (the invoices it holds) for a
    project and period, as :class:`ProjectTotals` (``amount`` invoiced, ``entries``)."""

    query: TotalsQuery
    reply: Reply[ProjectTotals]


class ReceivablesNotOffered(PermanentError):
    """The answer to :class:`QueryReceivables` when the system's adapter has no
    receivables read: a property of the vendor adapter, not of the project asked about."""

    CODE = "UNSUPPORTED_RECEIVABLES"

    def __init__(self, *, system: str, vendor: str) -> None:
        super().__init__(
            f"the {vendor} adapter offers no receivables read (the invoices an ERP holds"
            " per project and period)",
            system=system,
            code=self.CODE,
        )
        self.vendor = vendor


@dataclass(frozen=True, slots=True)
class PauseSystem:
    """Sent by the control server (``pssync pause SYSTEM``); answers whether it changed."""

    reply: Reply[bool]


@dataclass(frozen=True, slots=True)
class ResumeSystem:
    """Sent by the control server (``pssync resume SYSTEM``); answers whether it changed."""

    reply: Reply[bool]


@dataclass(frozen=True, slots=True)
class GetSystemStatus:
    """Sent by the control server: queues, counters and feeds of this system."""

    reply: Reply[SystemStatus]


SystemRequest = (
    ExecuteCommand | QueryTotals | QueryReceivables | PauseSystem | ResumeSystem | GetSystemStatus
)
"""The closed union a :class:`~actors.systems.actor.SystemActor` serves."""


async def execute(
    mailbox: Mailbox[SystemRequest], command: AnyCommand, *, timeout_s: float
) -> CommandResult:
    """Have the system behind ``mailbox`` execute ``command``; its error is raised here.

    Raises the adapter's AdapterError (or PayloadError), :class:`~actors.errors.AskTimeout`
    when ``timeout_s`` passes (queueing included), or MailboxClosed if the actor is gone.
    """
    return await ask(mailbox, lambda reply: ExecuteCommand(command, reply), timeout_s=timeout_s)


async def query_totals(
    mailbox: Mailbox[SystemRequest], query: TotalsQuery, *, timeout_s: float
) -> ProjectTotals:
    """Reconciliation totals from the system behind ``mailbox`` (analytics lane)."""
    return await ask(mailbox, lambda reply: QueryTotals(query, reply), timeout_s=timeout_s)


async def query_receivables(
    mailbox: Mailbox[SystemRequest], query: TotalsQuery, *, timeout_s: float
) -> ProjectTotals:
    """The ERP's receivables for a project and period (analytics lane).

    Raises :class:`ReceivablesNotOffered` when the system's adapter has no receivables
    read; otherwise as :func:`query_totals`.
    """
    return await ask(mailbox, lambda reply: QueryReceivables(query, reply), timeout_s=timeout_s)


async def pause_system(mailbox: Mailbox[SystemRequest], *, timeout_s: float) -> bool:
    """Pause the system; True if it was running."""
    return await ask(mailbox, PauseSystem, timeout_s=timeout_s)


async def resume_system(mailbox: Mailbox[SystemRequest], *, timeout_s: float) -> bool:
    """Resume the system; True if it was paused."""
    return await ask(mailbox, ResumeSystem, timeout_s=timeout_s)


async def system_status(mailbox: Mailbox[SystemRequest], *, timeout_s: float) -> SystemStatus:
    """The system's status snapshot."""
    return await ask(mailbox, GetSystemStatus, timeout_s=timeout_s)
