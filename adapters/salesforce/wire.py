"""Salesforce REST response shapes, decoded with msgspec (systems.md §1).

Records stay ``dict[str, Any]`` here: which fields a record carries depends on the SOQL
and the org, and the field mapping (``config/mappings/salesforce.toml``) turns them into
canonical Structs. Everything around the records is typed.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, TypeVar

import httpx
import msgspec

from actors.errors import PayloadError, RetryableError

__all__ = [
    "QueryResult",
    "RecordError",
    "SaveResult",
    "decode_body",
]

T = TypeVar("T")

# Numbers with a fraction become Decimal at once: a currency field read as a float would
# already have lost the amount Salesforce sent.
_DECODER = msgspec.json.Decoder(float_hook=Decimal)


class QueryResult(msgspec.Struct, frozen=True):
    """One batch of ``/query`` (or a parent-child subquery's nested result)."""

    totalSize: int  # the vendor's field names
    done: bool
    records: list[dict[str, Any]]
    nextRecordsUrl: str | None = None


class RecordError(msgspec.Struct, frozen=True):
    """A per-record error of sObject Collections (``statusCode``, not ``errorCode``)."""

    statusCode: str = ""
    message: str = ""
    fields: list[str] = []


class SaveResult(msgspec.Struct, frozen=True):
    """The result of one record write (single upsert or one Collections entry)."""

    success: bool
    id: str | None = None
    errors: list[RecordError] = []
    created: bool = False

    def describe_errors(self) -> str:
        """``CODE: message [fields]; …`` for an exception message."""
        parts = []
        for error in self.errors:
            fields = f" [{', '.join(error.fields)}]" if error.fields else ""
            parts.append(f"{error.statusCode}: {error.message}{fields}")
        return "; ".join(parts) or "no error detail"


def decode_body(response: httpx.Response, kind: type[T], *, system: str, what: str) -> T:
    """Decode ``response`` as ``kind``.

    A body that is not JSON at all was cut or garbled on the way (the request itself
    succeeded): a RetryableError, since every call the adapter makes is safe to repeat.
    JSON of the wrong shape is the vendor telling us something we do not understand: a
    PayloadError naming the vendor, the request and msgspec's field path.
    """
    try:
        raw = _DECODER.decode(response.content)
    except msgspec.DecodeError as exc:
        raise RetryableError(
            f"{what}: the response body is not JSON ({exc})",
            system=system,
            status=response.status_code,
            code="MALFORMED_BODY",
        ) from exc
    try:
        return msgspec.convert(raw, kind)
    except msgspec.ValidationError as exc:
        raise PayloadError(str(exc), where=f"salesforce {what}") from exc
