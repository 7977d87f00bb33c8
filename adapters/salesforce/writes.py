"""What the write-back modules share: record paths, value comparison, mapping values."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import msgspec

from actors.errors import PayloadError, PermanentError
from actors.messages import Money

from ..mapping import EntityMapping, FieldRule
from .api import SalesforceApi

__all__ = [
    "changes",
    "is_salesforce_id",
    "mapping_values",
    "parse_text",
    "record_key",
    "record_path",
    "require_id",
    "unmappable",
]

_SALESFORCE_ID = re.compile(r"^[a-zA-Z0-9]{15}(?:[a-zA-Z0-9]{3})?$")


def is_salesforce_id(value: str) -> bool:
    """Whether ``value`` has the shape of a 15- or 18-character record id.

    Canonical ids from other systems carry separators (``CUST-0001``), so the shape tells
    them apart; a 15-character alphanumeric canonical id would be misread.
    """
    return bool(_SALESFORCE_ID.match(value))


def record_path(api: SalesforceApi, sobject: str, record_id: str, external_field: str) -> str:
    """By id when ``record_id`` is a Salesforce id, else by ``external_field``."""
    if is_salesforce_id(record_id):
        return api.record_path(sobject, record_id)
    return api.external_path(sobject, external_field, record_id)


def require_id(value: str, sobject: str, system: str) -> None:
    """A PermanentError unless ``value`` is a Salesforce id."""
    if not is_salesforce_id(value):
        raise PermanentError(
            f"{value!r} is not a Salesforce {sobject} id", system=system, code="MALFORMED_ID"
        )


def record_key(record_id: str) -> str:
    """The case-sensitive 15-character form; the 18-character form only adds a checksum."""
    return record_id[:15]


def changes(current: Mapping[str, Any], target: Mapping[str, Any]) -> dict[str, Any]:
    """The target values that differ from the record's (numbers compared as numbers)."""
    changed = {}
    for field, value in target.items():
        now = current.get(field)
        if (
            isinstance(value, Decimal)
            and isinstance(now, (int, Decimal))
            and not isinstance(now, bool)
        ):
            if Decimal(now) == value:
                continue
        elif now == value or (now in (None, "") and value in (None, "")):
            continue
        changed[field] = value
    return changed


def mapping_values(mapping: EntityMapping, struct: msgspec.Struct) -> dict[str, Any]:
    """A struct's fields as ``to_vendor`` takes them (enum values are the table's text)."""
    values = msgspec.structs.asdict(struct)
    for name, rule in mapping.fields.items():
        if rule.as_ == "enum" and values.get(name) is not None:
            values[name] = str(values[name])
    return values


def parse_text(rule: FieldRule, text: str) -> Any:
    """A FieldChange's text back into the value the rule's converter writes (ValueError)."""
    match rule.as_:
        case "int":
            return int(text)
        case "decimal" | "minutes_to_hours":
            return Decimal(text)
        case "bool":
            if text not in ("true", "false"):
                raise ValueError(f"expected true or false, got {text!r}")
            return text == "true"
        case "date":
            return date.fromisoformat(text)
        case "datetime":
            return datetime.fromisoformat(text)
        case "money" | "money_minor":
            try:
                return msgspec.json.decode(text, type=Money)
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                raise ValueError(str(exc)) from exc
        case _:
            return text


def unmappable(exc: PayloadError | ValueError, *, system: str, what: str) -> PermanentError:
    """A command value Salesforce cannot take: permanent, so it becomes an exception."""
    return PermanentError(f"{what}: {exc}", system=system, code="UNMAPPABLE_VALUE")
