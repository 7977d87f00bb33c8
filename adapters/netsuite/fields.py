"""The adapter's use of ``config/mappings/netsuite.toml``: record bodies out, rows in.

Writes: :meth:`FieldMaps.write` runs an entity's rules forwards and keeps decimals as
``Decimal`` (the mapping layer renders them as text; NetSuite gets exact JSON numbers).
Reads: :meth:`FieldMaps.read` maps a decoded SuiteQL row or record to canonical values and
converts them into one of the small Structs below; a value that does not fit is a
PayloadError naming vendor, entity, record and field.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, TypeVar

import msgspec

from actors.errors import PayloadError

from ..mapping import EntityMapping, LiveMappings
from .references import present

__all__ = [
    "MAPPED_ENTITIES",
    "FieldMaps",
    "InvoiceFacts",
    "InvoiceTotalRow",
    "JobRow",
    "TimebillTotalsRow",
]

T = TypeVar("T")

MAPPED_ENTITIES = (
    "customer",
    "job",
    "timebill",
    "journal_entry",
    "expense_line",
    "invoice",
    "invoice_line",
    "payment",
    "job_row",
    "timebill_totals",
    "receivable_totals",
    "invoice_record",
)


class JobRow(msgspec.Struct, frozen=True, kw_only=True):
    """A job found by external id: its internal id and currency internal id."""

    id: str
    currency: str | None = None


class TimebillTotalsRow(msgspec.Struct, frozen=True, kw_only=True):
    """Time bills of one job and period at one rate (no rate: non-billable)."""

    rate: Decimal | None = None
    hours: Decimal = Decimal(0)
    entries: int = 0


class InvoiceTotalRow(msgspec.Struct, frozen=True, kw_only=True):
    """One invoice of a job and period: internal id, currency (internal id) and total."""

    id: str
    currency: str
    total: Decimal = Decimal(0)


class InvoiceFacts(msgspec.Struct, frozen=True, kw_only=True):
    """What a void or write-off needs to know about an invoice."""

    id: str
    entity: str
    currency: str
    subsidiary: str | None = None
    unpaid: Decimal


class FieldMaps:
    """The mapping entities of one NetSuite system."""

    def __init__(self, mappings: LiveMappings) -> None:
        # Looked up at each use (a reload swaps them); LiveMappings checked that every
        # entity of MAPPED_ENTITIES is there, so a gap fails at start, not at a posting.
        self.mappings = mappings

    def write(self, entity: str, values: dict[str, Any]) -> dict[str, Any]:
        """Body fields from canonical ``values`` (unset and empty values are left out)."""
        mapping = self.mappings.entity(entity)
        out = mapping.to_vendor(present(values))
        for rule in mapping.fields.values():
            if rule.as_ == "decimal":
                _restore_decimal(out, rule.from_)
        return out

    def read(self, entity: str, row: dict[str, Any], kind: type[T], *, record_id: str = "") -> T:
        """A mapped row converted into ``kind``."""
        mapping: EntityMapping = self.mappings.entity(entity)
        values = mapping.to_canonical(row, record_id=record_id)
        try:
            return msgspec.convert(values, kind)
        except msgspec.ValidationError as exc:
            where = f"{mapping.vendor} {mapping.object}"
            if record_id:
                where += f" {record_id}"
            raise PayloadError(
                f"{exc} (mapping v{mapping.version}, {entity})", where=where
            ) from exc


def _restore_decimal(out: dict[str, Any], path: str) -> None:
    *parents, last = path.split(".")
    target: Any = out
    for part in parents:
        target = target.get(part) if isinstance(target, dict) else None
    if isinstance(target, dict) and isinstance(target.get(last), str):
        target[last] = Decimal(target[last])
