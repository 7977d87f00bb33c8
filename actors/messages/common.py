"""Small shared types: aware timestamps, vendor references, field changes, tag registries."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from types import MappingProxyType
from typing import Annotated, Any, get_args

import msgspec
from msgspec import Meta, Struct

__all__ = ["AwareDatetime", "ExternalRef", "FieldChange", "NonEmptyStr", "tag_registry"]

AwareDatetime = Annotated[datetime, Meta(tz=True)]
"""A timezone-aware datetime; naive ones are refused because they are ambiguous."""

NonEmptyStr = Annotated[str, Meta(min_length=1)]
"""An identifier that must not be empty."""


class ExternalRef(Struct, frozen=True, kw_only=True):
    """The id of the same record in one vendor system (``erp`` / ``customer`` / ``1234``)."""

    system: NonEmptyStr
    """The configured system name (``crm``, ``psa``, ``erp``, ``billing``, …)."""
    id: NonEmptyStr
    object_type: str = ""
    """The vendor's record type where ids are only unique per type (``customer``, ``job``)."""


def _render(value: object) -> str | None:
    # One string form for every field type keeps FieldChange a plain, decodable struct
    # (a union of str, Decimal and date is not expressible in msgspec).
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | Decimal):
        return str(value)
    if isinstance(value, date | datetime):
        return value.isoformat()
    return msgspec.json.encode(value).decode()


class FieldChange(Struct, frozen=True, kw_only=True):
    """One changed field with its old and new value rendered as text (``None`` = unset)."""

    field: NonEmptyStr
    old: str | None = None
    new: str | None = None

    @classmethod
    def of(cls, field: str, old: object, new: object) -> FieldChange:
        """A change with values rendered canonically (Decimal as text, dates ISO, structs JSON)."""
        return cls(field=field, old=_render(old), new=_render(new))


def tag_registry(union: Any) -> Mapping[str, Any]:
    """Tag -> class for the members of a tagged union; refuses a tag used twice."""
    registry: dict[str, Any] = {}
    for cls in get_args(union):
        tag = cls.__struct_config__.tag
        if tag in registry:
            raise RuntimeError(f"tag {tag!r} is used by both {registry[tag]} and {cls}")
        registry[tag] = cls
    return MappingProxyType(registry)
