"""What every command handler of one NetSuite system shares, and the look-before upsert."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..base import CommandResult
from ..governor import Lane
from .fields import FieldMaps
from .options import NetSuiteOptions
from .references import References
from .wire import RecordService

__all__ = ["Context", "Target"]


@dataclass(frozen=True, kw_only=True)
class Target:
    """Where a record type lives: its REST record type and its SuiteQL table (+ filter)."""

    record_type: str
    table: str
    condition: str = ""


@dataclass(frozen=True, kw_only=True)
class Context:
    """One system's services, options and mappings, handed to each command handler."""

    system: str
    options: NetSuiteOptions
    records: RecordService
    refs: References
    fields: FieldMaps
    today: Callable[[], dt.date] = field(default=lambda: dt.datetime.now(dt.UTC).date())
    """The posting date of documents the command gives none (a void's journal)."""

    def target(self, kind: str) -> Target:
        """``customer``, ``job``, ``timebill``, ``journal_entry``, ``invoice``, ``payment``."""
        types = self.options.record_types
        match kind:
            case "customer":
                return Target(record_type=types.customer, table="customer")
            case "job":
                return Target(record_type=types.job, table="job")
            case "timebill":
                return Target(record_type=types.timebill, table="timebill")
            case "journal_entry":
                return Target(
                    record_type=types.journal_entry,
                    table="transaction",
                    condition="type = 'Journal'",
                )
            case "invoice":
                return Target(
                    record_type=types.invoice, table="transaction", condition="type = 'CustInvc'"
                )
            case "payment":
                return Target(
                    record_type=types.customer_payment,
                    table="transaction",
                    condition="type = 'CustPymt'",
                )
        raise ValueError(f"unknown record kind {kind!r}")

    async def lookup(
        self, target: Target, external_ids: list[str], *, lane: Lane, correlation_id: str
    ) -> dict[str, str]:
        """External id → internal id of the records that exist already (SuiteQL)."""
        return await self.records.existing(
            target.table,
            external_ids,
            condition=target.condition,
            lane=lane,
            correlation_id=correlation_id,
            chunk_size=self.options.lookup_chunk_size,
        )

    async def upsert_record(
        self,
        kind: str,
        eid_kind: str,
        canonical_id: str,
        body: Mapping[str, Any],
        *,
        lane: Lane,
        correlation_id: str,
        update_existing: bool,
    ) -> CommandResult:
        """Upsert one record by the external id of ``canonical_id`` (see :meth:`upsert_one`);
        the command's result, mapping ``canonical_id`` to NetSuite's internal id."""
        external_id = self.refs.external_id(eid_kind, canonical_id)
        internal_id, created = await self.upsert_one(
            self.target(kind),
            external_id,
            body,
            lane=lane,
            correlation_id=correlation_id,
            update_existing=update_existing,
        )
        return CommandResult(
            system=self.system,
            ids={canonical_id: internal_id},
            created=created,
            details={"external_id": external_id},
        )

    async def upsert_one(
        self,
        target: Target,
        external_id: str,
        body: Mapping[str, Any],
        *,
        lane: Lane,
        correlation_id: str,
        update_existing: bool,
    ) -> tuple[str, bool]:
        """Look, then upsert: ``(internal id, created)``.

        The PUT upsert does not say whether it created the record, so one SuiteQL lookup
        comes first (2 calls per record). ``update_existing=False`` (financial postings)
        leaves a record that exists alone: a posting is written once, never re-posted.
        """
        found = await self.lookup(target, [external_id], lane=lane, correlation_id=correlation_id)
        if external_id in found and not update_existing:
            return found[external_id], False
        internal_id = await self.records.upsert(
            target.record_type, external_id, body, lane=lane, correlation_id=correlation_id
        )
        return internal_id, external_id not in found
