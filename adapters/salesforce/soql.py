"""Building SOQL text: field lists from the mapping, and literals that cannot inject."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from ..mapping import EntityMapping

__all__ = ["datetime_literal", "fields_of", "id_list", "select", "string_literal"]

# SOQL string escapes (Salesforce's "Quoted String Escape Sequences").
_ESCAPES = {"\\": "\\\\", "'": "\\'", "\n": "\\n", "\r": "\\r", "\t": "\\t", '"': '\\"'}


def string_literal(value: str) -> str:
    """``'value'`` with SOQL's escapes, so a value can never end the literal early."""
    return "'" + "".join(_ESCAPES.get(char, char) for char in value) + "'"


def id_list(ids: Iterable[str]) -> str:
    """``('001…', '001…')`` for an ``IN`` filter."""
    return "(" + ", ".join(string_literal(record_id) for record_id in ids) + ")"


def datetime_literal(moment: datetime) -> str:
    """An unquoted UTC literal truncated to the second (``2026-01-01T09:30:00Z``).

    Truncating makes a ``>`` filter include the rest of that second, never exclude it.
    """
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def fields_of(mapping: EntityMapping, *, prefix: str = "") -> list[str]:
    """Every vendor path a mapping reads (currency beside money included), prefixed."""
    paths: list[str] = []
    for rule in mapping.fields.values():
        paths.append(rule.from_)
        if rule.currency_from:
            paths.append(rule.currency_from)
    return [prefix + path for path in paths]


def select(fields: Iterable[str], *, subqueries: Iterable[str] = ()) -> str:
    """``Id, Name, …`` without duplicates (case-insensitive, as SOQL compares), in order."""
    seen: set[str] = set()
    unique: list[str] = []
    for field in fields:
        if field.lower() not in seen:
            seen.add(field.lower())
            unique.append(field)
    return ", ".join([*unique, *(f"({query})" for query in subqueries)])
