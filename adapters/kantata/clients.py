"""``UpsertCustomer``: the account as a Kantata client.

A client is a *workspace group* with ``company: true`` in the sandbox (systems.md does
not name Kantata's client object); a workspace names its client in
``workspace_group_ids``. Kantata has no idempotency key and no upsert: the client is found
by the external reference pssync writes on it right after creating it (``service_model``
``account``, ``service_model_ref`` the canonical account id), and, for the moment between
the create and the reference, by its exact name when no other account claims it.

An existing client is updated (``PUT``, which changes only the attributes it names) with
the mapped fields the command writes: all of them, or only those named in a restricted
command (``UpsertCustomer.fields``), so a field the command does not name is never
overwritten. A client not found is created from the whole account.
"""

from __future__ import annotations

from typing import Any

import structlog

from actors.messages import UpsertCustomer

from ..base import CommandResult
from ..mapping import LiveMappings
from .api import Call, KantataApi
from .wire import Page, WorkspaceGroup, as_typed, fields_of, references_of, same_text, typed

__all__ = ["ACCOUNT_MODEL", "Clients"]

_log = structlog.get_logger("pssync.adapters.kantata")

ACCOUNT_MODEL = "account"


class Clients:
    """Finds, creates and renames clients, idempotently."""

    def __init__(self, *, api: KantataApi, mappings: LiveMappings, system: str) -> None:
        self.api = api
        self.system = system
        self._mappings = mappings  # looked up at each use: a reload swaps it

    async def upsert_customer(self, command: UpsertCustomer, call: Call) -> CommandResult:
        """The account as a Kantata client: found by reference, then by name, else created."""
        account = command.account
        mapping = self._mappings.entity("account")
        canonical = fields_of(account)
        values = mapping.to_vendor(canonical)
        update = mapping.to_vendor(
            {name: value for name, value in canonical.items() if command.writes(name)}
        )
        group, created = await self._find_client_by_reference(account.id, call), False
        referenced = group is not None
        if group is None:
            group = await self._find_client_by_name(account.name, call)
        if group is None:
            record, created = await self.api.create_once(
                lambda: self.api.post(
                    "workspace_groups", "workspace_group", call, {**values, "company": True}
                ),
                lambda: self._find_client_by_name(account.name, call),
                what=f"client {account.id}",
            )
            group = as_typed(record, WorkspaceGroup, plural="workspace_groups")
        elif _stale(group, update):
            await self.api.put("workspace_groups", "workspace_group", group.id, call, update)
        if not referenced:
            await self.api.ensure_reference(
                "WorkspaceGroup", group.id, call, model=ACCOUNT_MODEL, ref=account.id
            )
        return CommandResult(
            system=self.system, ids={account.id: group.id, "client": group.id}, created=created
        )

    async def _find_client_by_reference(self, account_id: str, call: Call) -> WorkspaceGroup | None:
        found = await self.api.find_by_reference(
            "workspace_groups", call, model=ACCOUNT_MODEL, ref=account_id
        )
        return (
            None if found is None else as_typed(found[0], WorkspaceGroup, plural="workspace_groups")
        )

    async def _find_client_by_name(self, name: str, call: Call) -> WorkspaceGroup | None:
        # A client of that exact name that no other account claims is adopted: it is the
        # one a crashed attempt created, or one people made by hand before pssync.
        params = {"search": name, "include": "external_references"}
        async for page in self.api.pages("workspace_groups", call, params):
            for record in page.records:
                group = typed(record, WorkspaceGroup, plural="workspace_groups")
                if (
                    group.company
                    and same_text(group.name, name)
                    and not self._claimed(record, page)
                ):
                    return group
        return None

    def _claimed(self, record: dict[str, Any], page: Page) -> bool:
        refs = references_of(record, page, service_name=self.api.service_name)
        return any(ref.service_model == ACCOUNT_MODEL for ref in refs)

    async def client_id(self, account_id: str, call: Call) -> str | None:
        """The client of a canonical account, None if pssync has not created it."""
        group = await self._find_client_by_reference(account_id, call)
        if group is None:
            _log.warning("kantata.client_unknown", account=account_id)
            return None
        return group.id


def _stale(group: WorkspaceGroup, update: dict[str, Any]) -> bool:
    """Whether ``update`` would change the client: the name compared as Kantata shows it,
    any other mapped attribute (not read back) assumed to differ."""
    return any(key != "name" or not same_text(group.name, value) for key, value in update.items())
