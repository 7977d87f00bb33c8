"""What a business workflow reaches through ``ctx.deps``: systems by role, ERP routing,
customer-master field ownership, the wall clock and the SLA recorder.

Workflows never hold an adapter: they send canonical commands to a system actor's
mailbox and get a :class:`~adapters.base.CommandResult` back (inside ``ctx.step``, so the
result is memoised). ERP routing is by legal entity, so a legacy and a cloud ERP can run
side by side during a migration.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Protocol

from actors.errors import PermanentError
from actors.mailbox import Mailbox
from actors.messages import AnyCommand, Envelope
from actors.systems import (
    SystemRequest,
    event_record,
    execute,
    query_receivables,
    query_totals,
)
from adapters.base import CommandResult, ProjectTotals, TotalsQuery
from store import Journal

__all__ = ["NoSla", "Roles", "SlaRecorder", "WorkflowDeps"]

Roles = Mapping[str, tuple[str, ...]]
"""System kind (``crm``, ``psa``, ``erp``, ``billing``) → configured system names."""


class SlaRecorder(Protocol):
    """The business SLAs a workflow reports (daemon.metrics.Metrics fits)."""

    def observe_activation(self, seconds: float) -> None:
        """Deal won → project active everywhere."""

    def observe_approval_to_posting(self, seconds: float) -> None:
        """Time or expense approved → posted to the ERP."""

    def observe_milestone_to_invoice(self, seconds: float) -> None:
        """Milestone completed → invoice issued."""


class NoSla:
    """An SLA recorder that records nothing (tools and tests without metrics)."""

    def observe_activation(self, seconds: float) -> None:
        """Nothing to record."""

    def observe_approval_to_posting(self, seconds: float) -> None:
        """Nothing to record."""

    def observe_milestone_to_invoice(self, seconds: float) -> None:
        """Nothing to record."""


class WorkflowDeps:
    """The systems and policies shared by every business workflow of one daemon.

    ``erp_routes`` maps a legal entity to the ERP system that books for it; with a
    single ERP and no routes, that ERP books for every entity. ``field_owners`` maps a
    canonical customer field to the system that owns it (customer_master).
    """

    def __init__(
        self,
        *,
        mailboxes: Mapping[str, Mailbox[SystemRequest]],
        roles: Roles,
        erp_routes: Mapping[str, str] | None = None,
        field_owners: Mapping[str, str] | None = None,
        command_timeout_s: float = 300.0,
        now: Callable[[], float] = time.time,
        sla: SlaRecorder | None = None,
    ) -> None:
        self.mailboxes = dict(mailboxes)
        self.roles = {kind: tuple(names) for kind, names in roles.items()}
        self.erp_routes = dict(erp_routes or {})
        self.field_owners = dict(field_owners or {})
        # A command waits behind the governor and the vendor's own retries; the bound is
        # there so a wedged system surfaces as a retryable step failure, not a hang.
        self.command_timeout_s = command_timeout_s
        self.now = now
        self.sla: SlaRecorder = sla or NoSla()

    def system(self, kind: str) -> str:
        """The one configured system of ``kind`` (``crm``, ``psa``, ``billing``)."""
        names = self.roles.get(kind, ())
        if len(names) != 1:
            found = ", ".join(names) or "none"
            raise PermanentError(f"expected exactly one {kind} system, found {found}")
        return names[0]

    def erp_for(self, legal_entity: str | None) -> str | None:
        """The ERP system that books for ``legal_entity``; None if no ERP does."""
        if legal_entity and legal_entity in self.erp_routes:
            return self.erp_routes[legal_entity]
        erps = self.roles.get("erp", ())
        if len(erps) == 1 and not self.erp_routes:
            return erps[0]
        return None

    async def execute(self, system: str, command: AnyCommand) -> CommandResult:
        """Have ``system`` apply ``command``; its AdapterError is raised here."""
        return await execute(self._mailbox(system), command, timeout_s=self.command_timeout_s)

    async def totals(self, system: str, query: TotalsQuery) -> ProjectTotals:
        """Reconciliation totals from ``system``."""
        return await query_totals(self._mailbox(system), query, timeout_s=self.command_timeout_s)

    async def receivables(self, system: str, query: TotalsQuery) -> ProjectTotals:
        """The receivables (invoices held) of ERP ``system`` for reconciliation; raises
        :class:`~actors.systems.ReceivablesNotOffered` if its adapter has no such read."""
        return await query_receivables(
            self._mailbox(system), query, timeout_s=self.command_timeout_s
        )

    async def publish(self, journal: Journal, envelope: Envelope) -> bool:
        """Append an event pssync itself raises (ProjectActivated); True if it was new."""
        result = await journal.append([event_record(envelope)])
        return result.new_count == 1

    def _mailbox(self, system: str) -> Mailbox[SystemRequest]:
        try:
            return self.mailboxes[system]
        except KeyError:
            raise PermanentError(f"no system named {system!r} is running") from None
