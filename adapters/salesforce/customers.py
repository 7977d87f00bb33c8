"""Customer master data in the CRM: account upserts by external id, account field updates.

Both write only what they name: UpdateAccountFields the changed fields; an UpsertCustomer
restricted to some fields (``UpsertCustomer.fields``) only the Account fields those map
to, on an account that exists (found by our id, else by the external-id field). A PATCH,
by id or as an upsert by external id, changes only the fields in its body. An account
that does not exist is created from the whole account.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from actors.errors import PayloadError, PermanentError
from actors.messages import Account, Contact, UpdateAccountFields, UpsertCustomer

from ..base import CommandResult
from ..governor import Lane
from ..http import new_correlation_id
from ..mapping import LiveMappings
from .api import SalesforceApi
from .batches import write_in_collections
from .canonical import AccountEntities
from .options import SalesforceOptions
from .soql import string_literal
from .writes import mapping_values, parse_text, record_path, unmappable

__all__ = ["CustomerWriter"]


class CustomerWriter(AccountEntities):
    """UpsertCustomer (single and batched) and UpdateAccountFields."""

    def __init__(
        self, *, system: str, api: SalesforceApi, mappings: LiveMappings, options: SalesforceOptions
    ) -> None:
        self.system = system
        self.api = api
        self.options = options
        self.fields = options.fields
        self._mappings = mappings

    async def update_account_fields(self, command: UpdateAccountFields) -> CommandResult:
        """Set canonical account fields (text values from FieldChange) through the mapping."""
        body: dict[str, Any] = {}
        for change in command.changes:
            rule = self.account.fields.get(change.field)
            if rule is None or not rule.write:
                raise PermanentError(
                    f"account field {change.field!r} cannot be written to Salesforce"
                    + (" (not mapped)" if rule is None else " (read-only)"),
                    system=self.system,
                    code="UNWRITABLE_FIELD",
                )
            if change.new is None:
                body[rule.from_] = None  # clearing is a null; to_vendor skips None values
                continue
            try:
                body.update(self.account.to_vendor({change.field: parse_text(rule, change.new)}))
            except (PayloadError, ValueError) as exc:
                raise unmappable(exc, system=self.system, what=f"account {change.field}") from exc
        correlation_id = command.correlation_id or new_correlation_id()
        path = self._path("Account", command.account_id)
        if body:
            await self.api.patch(path, body, lane=Lane.MASTER_DATA, correlation_id=correlation_id)
        return CommandResult(
            system=self.system,
            ids={"account": command.account_id},
            details={"updated_fields": ",".join(sorted(body))},
        )

    # -- customers -----------------------------------------------------------------------

    def account_body(self, account: Account, only: UpsertCustomer | None = None) -> dict[str, Any]:
        """The Account fields for an upsert: mapped fields, address and other systems' ids;
        with ``only`` (a restricted command), just the fields it names."""
        values = mapping_values(self.account, account)
        if only is not None:
            values = {name: value for name, value in values.items() if only.writes(name)}
        try:
            body = self.account.to_vendor(values)
            if account.billing_address is not None and (
                only is None or only.writes("billing_address")
            ):
                address = mapping_values(self.address, account.billing_address)
                address["street"] = "\n".join(account.billing_address.lines) or None
                body.update(self.address.to_vendor(address))
        except PayloadError as exc:
            raise unmappable(exc, system=self.system, what=f"account {account.id}") from exc
        if only is not None:
            return body
        for ref in account.external_refs:
            field = self.fields.account_refs.get(ref.system)
            if field is not None and ref.system != self.system:
                body[field] = ref.id
        return body

    async def upsert_customer(self, command: UpsertCustomer) -> CommandResult:
        """Account upsert by the external-id field (``created`` only on the first call).

        An account that already names its id in this system (an external ref of ours) is
        updated by that id instead, so a customer that began in Salesforce is never copied.
        A restricted command updates an existing account with its named fields only.
        """
        correlation_id = command.correlation_id or new_correlation_id()
        account = command.account
        body = self.account_body(account)
        own = next((ref.id for ref in account.external_refs if ref.system == self.system), None)
        update = self.account_body(account, only=command) if command.restricted else None
        existing = None
        if update is not None:
            existing = own or await self._account_by_source(account.id, correlation_id)
        if update is not None and existing is not None:
            if update:
                path = self._path("Account", existing)
                await self.api.patch(
                    path, update, lane=Lane.MASTER_DATA, correlation_id=correlation_id
                )
            record_id, created = existing, False
        elif own is not None:
            path = self._path("Account", own)
            await self.api.patch(path, body, lane=Lane.MASTER_DATA, correlation_id=correlation_id)
            record_id, created = own, False
        else:
            result = await self.api.upsert(
                "Account",
                self.fields.customer_external_id,
                account.id,
                body,
                lane=Lane.MASTER_DATA,
                correlation_id=correlation_id,
            )
            record_id, created = str(result.id), result.created
        ids = {account.id: record_id}
        for contact in command.contacts:
            ids[contact.id] = await self._upsert_contact(contact, record_id, correlation_id)
        return CommandResult(system=self.system, ids=ids, created=created)

    async def _account_by_source(self, account_id: str, correlation_id: str) -> str | None:
        """The id of the Account whose external-id field holds ``account_id``, if any."""
        field = self.fields.customer_external_id
        rows = await self.api.query_all(
            f"SELECT Id FROM Account WHERE {field} = {string_literal(account_id)}",
            lane=Lane.MASTER_DATA,
            correlation_id=correlation_id,
        )
        if len(rows) > 1:
            raise PermanentError(
                f"Account.{field}={account_id}: several records match the external id;"
                " nothing was written",
                system=self.system,
                status=300,
                code="MULTIPLE_CHOICES",
            )
        return str(rows[0]["Id"]) if rows else None

    async def _upsert_contact(self, contact: Contact, account_id: str, correlation_id: str) -> str:
        try:
            body = self.contact.to_vendor(mapping_values(self.contact, contact))
        except PayloadError as exc:
            raise unmappable(exc, system=self.system, what=f"contact {contact.id}") from exc
        body["AccountId"] = account_id
        result = await self.api.upsert(
            "Contact",
            self.fields.contact_external_id,
            contact.id,
            body,
            lane=Lane.MASTER_DATA,
            correlation_id=correlation_id,
        )
        return str(result.id)

    async def upsert_customers(self, commands: Sequence[UpsertCustomer]) -> list[CommandResult]:
        """Many account upserts by external id through sObject Collections (200 a call).

        Contacts are not part of the batch (one object type per upsert call); commands
        with contacts, with an id of ours, or restricted to some fields go through
        :meth:`upsert_customer`.
        """
        if not commands:
            return []
        correlation_id = commands[0].correlation_id or new_correlation_id()
        field = self.fields.customer_external_id
        if any(c.contacts or c.restricted or _has_ref(c.account, self.system) for c in commands):
            raise ValueError("upsert_customers takes whole accounts without contacts or own ids")
        records = []
        for command in commands:
            body = self.account_body(command.account)
            body = {"attributes": {"type": "Account"}, field: command.account.id, **body}
            records.append((command.account.id, body))
        saved = await write_in_collections(
            self.api,
            f"/Account/{field}",
            records,
            size=self.options.collection_size,
            lane=Lane.MASTER_DATA,
            correlation_id=correlation_id,
            what="customer upsert",
        )
        return [
            CommandResult(
                system=self.system,
                ids={c.account.id: str(saved[c.account.id].id)},
                created=saved[c.account.id].created,
            )
            for c in commands
        ]

    def _path(self, sobject: str, record_id: str) -> str:
        return record_path(self.api, sobject, record_id, self.fields.customer_external_id)


def _has_ref(account: Account, system: str) -> bool:
    return any(ref.system == system for ref in account.external_refs)
