"""SuiteQL's view of the sandbox's records: one row (column → value) per record.

Values are typed for comparison (``Decimal`` numbers and ids, ``date``/``datetime``,
``bool``, ``str``); :func:`.suiteql.render` turns them into the strings NetSuite returns.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from .errors import NetSuiteError
from .records import SPECS
from .state import NetSuiteState, to_decimal

_COMMON = ("id", "externalid", "datecreated", "lastmodifieddate")
_TRANSACTION_EXTRA = (
    "type",
    "entity",
    "foreigntotal",
    "foreignamountunpaid",
    "foreignamountpaid",
    "status",
    "tranid",
    "trandate",
    "memo",
    "currency",
    "subsidiary",
)
_TRANSACTION_TYPES = ("invoice", "customerpayment", "journalentry")
_TABLES = {
    "customer": ("customer",),
    "job": ("job",),
    "employee": ("employee",),
    "timebill": ("timebill",),
    "transaction": _TRANSACTION_TYPES,
    "invoice": ("invoice",),
    "customerpayment": ("customerpayment",),
    "journalentry": ("journalentry",),
    "subsidiary": ("subsidiary",),
    "department": ("department",),
    "classification": ("classification",),
    "location": ("location",),
    "currency": ("currency",),
    "account": ("account",),
    "item": ("serviceitem",),
}


def table(state: NetSuiteState, name: str) -> tuple[list[dict[str, Any]], set[str]]:
    """Rows and known columns of a SuiteQL table, or 400 for an unknown table."""
    types = _TABLES.get(name)
    if types is None:
        raise NetSuiteError(
            400,
            "INVALID_PARAMETER",
            "Invalid search query. Detailed unprocessed description follows. "
            f"Search error occurred: Record '{name}' was not found.",
        )
    columns: set[str] = set(_COMMON)
    rows = []
    for type_name in types:
        spec = SPECS[type_name]
        columns.update(
            field.lower()
            for field in (*spec.required, *spec.refs, *spec.numeric, *spec.dates, *spec.read_only)
            if field not in spec.sublists
        )
        if spec.transaction_type:
            columns.update(_TRANSACTION_EXTRA)
        for record in state.records[type_name].values():
            row = dict(_row(state, type_name, record))
            columns.update(row)
            rows.append(row)
    rows.sort(key=lambda row: row["id"])
    return rows, columns


def _row(state: NetSuiteState, type_name: str, record: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    spec = SPECS[type_name]
    for field, value in record.items():
        if field in spec.sublists or value is None or isinstance(value, list):
            continue
        column = field.lower()
        if field in ("dateCreated", "lastModifiedDate"):
            yield column, dt.datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ")
        elif field in spec.dates or field in ("tranDate", "dueDate"):
            yield column, dt.date.fromisoformat(value)
        elif isinstance(value, dict):
            if "id" in value:
                raw = str(value["id"])
                yield column, Decimal(raw) if raw.isdigit() else raw
        elif isinstance(value, bool | str):
            yield column, value
        elif isinstance(value, int | float):
            yield column, to_decimal(value)
    if type_name == "serviceitem":
        yield "itemtype", "Service"
    if spec.transaction_type is None:
        return
    yield "type", spec.transaction_type
    if type_name == "invoice":
        total = to_decimal(record["total"])
        remaining = to_decimal(record["amountRemaining"])
        yield "foreigntotal", total
        yield "foreignamountunpaid", remaining
        yield "foreignamountpaid", total - remaining
        yield "status", record["status"]["id"]
    elif type_name == "customerpayment":
        yield "entity", Decimal(record["customer"]["id"])
        yield "foreigntotal", to_decimal(record["payment"])
    else:
        yield "foreigntotal", to_decimal(record["total"])
