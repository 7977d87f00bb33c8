"""The Kantata OX adapter: the PSA spoken in canonical messages.

Commands: ``UpsertCustomer`` (a client), ``UpsertProject`` and
``CreateProjectFromTemplate`` (workspaces), ``MarkEntriesExported``. Feeds:
``approved_time``, ``approved_expenses``, ``completed_milestones``. Totals: approved
hours and billable amount of one workspace and period, for ``reconcile``.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

import msgspec

from actors.errors import PayloadError, PermanentError
from actors.messages import (
    AnyCommand,
    CreateProjectFromTemplate,
    MarkEntriesExported,
    Money,
    TimeEntry,
    UpsertCustomer,
    UpsertProject,
    command_tag,
)

from ..base import ChangeFeed, CommandResult, ProjectTotals, TotalsQuery
from ..governor import Lane
from ..http import SystemClient
from ..mapping import LiveMappings, MappingSet
from .api import Call, KantataApi
from .clients import Clients
from .exports import mark_entries_exported
from .feeds import build_feeds
from .options import KantataOptions
from .wire import Workspace, typed
from .workspaces import PROJECT_MODEL, Workspaces

__all__ = ["KantataAdapter", "create_adapter"]

VENDOR = "kantata"
MAPPED_ENTITIES = ("time_entry", "expense", "milestone", "account", "project")
"""The entities of ``config/mappings/kantata.toml`` this adapter uses."""


class KantataAdapter:
    """One configured Kantata OX system (a :class:`~adapters.base.VendorAdapter`)."""

    def __init__(
        self, *, system: str, client: SystemClient, mappings: MappingSet, options: KantataOptions
    ) -> None:
        self.system = system
        self.client = client
        self.options = options
        self.mappings = LiveMappings(mappings, vendor=VENDOR, required=MAPPED_ENTITIES)
        self._api = KantataApi(client, service_name=options.service_name, per_page=options.per_page)
        self._clients = Clients(api=self._api, mappings=self.mappings, system=system)
        self._workspaces = Workspaces(
            api=self._api,
            clients=self._clients,
            mappings=self.mappings,
            options=options,
            system=system,
        )
        self._feeds = build_feeds(
            api=self._api, mappings=self.mappings, system=system, options=options
        )

    def feeds(self) -> Sequence[ChangeFeed]:
        """``approved_time``, ``approved_expenses`` and ``completed_milestones``."""
        return self._feeds

    def lane_for(self, command: AnyCommand) -> Lane:
        """Marking entries exported closes a financial posting; the rest is master data."""
        if isinstance(command, MarkEntriesExported):
            return Lane.CRITICAL
        return Lane.MASTER_DATA

    async def execute(self, command: AnyCommand) -> CommandResult:
        """Apply one command idempotently (:mod:`.clients`, :mod:`.workspaces`, :mod:`.exports`)."""
        call = Call(self.lane_for(command), command.correlation_id)
        match command:
            case UpsertCustomer():
                return await self._clients.upsert_customer(command, call)
            case UpsertProject():
                return await self._workspaces.upsert_project(command, call)
            case CreateProjectFromTemplate():
                return await self._workspaces.create_project_from_template(command, call)
            case MarkEntriesExported():
                return await mark_entries_exported(self._api, command, call, system=self.system)
        raise PermanentError(
            f"{VENDOR} does not handle {command_tag(command)}",
            system=self.system,
            code="unsupported_command",
        )

    async def totals(self, query: TotalsQuery) -> ProjectTotals:
        """Approved hours and billable amount of the project's workspace in the period.

        Every approved entry dated in the period counts, exported or not: reconcile
        compares them with what the ERP holds.
        """
        call = Call(Lane.ANALYTICS)
        found = await self._api.find_by_reference(
            "workspaces", call, model=PROJECT_MODEL, ref=query.project_id
        )
        if found is None:
            raise PermanentError(
                f"no {VENDOR} workspace for project {query.project_id}",
                system=self.system,
                code="unknown_project",
            )
        workspace = typed(found[0], Workspace, plural="workspaces")
        currency = workspace.currency or "USD"
        hours, amount, entries = Decimal(0), Money.zero(currency), 0
        params = {
            "workspace_id": workspace.id,
            "date_performed_between": f"{query.period_start}:{query.period_end}",
            "approved": "true",
        }
        async for page in self._api.pages("time_entries", call, params):
            for record in page.records:
                entry = self._time_entry(record)
                entries += 1
                hours += entry.hours
                billed = entry.bill_amount()
                if billed is None:
                    continue
                if billed.currency != currency:
                    raise PayloadError(
                        f"entry in {billed.currency}, workspace in {currency}",
                        where=f"{VENDOR} time_entries {entry.id}",
                    )
                amount += billed
        return ProjectTotals(
            system=self.system,
            project_id=query.project_id,
            period_start=query.period_start,
            period_end=query.period_end,
            hours=hours,
            amount=amount,
            entries=entries,
        )

    def _time_entry(self, record: dict) -> TimeEntry:
        values = self.mappings.entity("time_entry").to_canonical(
            record, record_id=str(record.get("id", ""))
        )
        try:
            return msgspec.convert(values, TimeEntry)
        except msgspec.ValidationError as exc:
            raise PayloadError(str(exc), where=f"{VENDOR} time_entries {record.get('id')}") from exc

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self.client.aclose()


def create_adapter(
    *, system: str, client: SystemClient, mappings: MappingSet, options: KantataOptions
) -> KantataAdapter:
    """The adapter for one configured Kantata system."""
    return KantataAdapter(system=system, client=client, mappings=mappings, options=options)
