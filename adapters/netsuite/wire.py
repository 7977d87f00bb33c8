"""NetSuite REST calls: external-id upserts, record reads and SuiteQL, decoded with msgspec.

Paths are ``/services/rest/record/v1/<type>/<id|eid:X>`` and
``/services/rest/query/v1/suiteql`` below the system's ``base_url``
(``https://<account>.suitetalk.api.netsuite.com``). Every call goes through the
:class:`~adapters.http.SystemClient`, so it is governed, signed, classified and retried.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

import httpx
import msgspec

from actors.errors import PayloadError, PermanentError

from ..governor import Lane
from ..http import SystemClient

__all__ = ["RecordRef", "RecordService", "encode_body", "quote_literal", "require"]

RECORD_PATH = "/services/rest/record/v1"
SUITEQL_PATH = "/services/rest/query/v1/suiteql"

T = TypeVar("T")

# Decimals travel as JSON numbers written exactly ("7.50", never a float's 7.4999…).
_ENCODER = msgspec.json.Encoder(decimal_format="number")


def encode_body(body: Mapping[str, Any]) -> msgspec.Raw:
    """A record body, pre-encoded so that Decimals are exact JSON numbers."""
    return msgspec.Raw(_ENCODER.encode(body))


def quote_literal(value: str) -> str:
    """A SuiteQL string literal (quotes doubled)."""
    return "'" + value.replace("'", "''") + "'"


class RecordRef(msgspec.Struct, frozen=True):
    """The part of any record read this adapter needs: its internal id."""

    id: str


class _SuiteQLPage(msgspec.Struct, frozen=True):
    items: list[dict[str, Any]]
    hasMore: bool = False  # the vendor's field names
    count: int = 0


class RecordService:
    """One account's record and query services, spoken through a :class:`SystemClient`."""

    def __init__(self, client: SystemClient, *, page_size: int = 1000) -> None:
        self.client = client
        self.page_size = page_size

    @property
    def vendor(self) -> str:
        return f"netsuite ({self.client.system})"

    async def upsert(
        self,
        record_type: str,
        external_id: str,
        body: Mapping[str, Any],
        *,
        lane: Lane,
        correlation_id: str,
    ) -> str:
        """``PUT …/<type>/eid:<id>`` (create or update); the record's internal id.

        The id comes from the ``Location`` header; if NetSuite leaves it out, one GET by
        external id reads it.
        """
        response = await self.client.request(
            "PUT",
            f"{RECORD_PATH}/{record_type}/eid:{external_id}",
            json=encode_body({**body, "externalId": external_id}),
            lane=lane,
            correlation_id=correlation_id,
            idempotent=True,  # an external-id upsert may be repeated without a duplicate
        )
        internal_id = _location_id(response, record_type)
        if internal_id is None:
            ref = await self.read(
                record_type,
                f"eid:{external_id}",
                RecordRef,
                lane=lane,
                correlation_id=correlation_id,
            )
            internal_id = ref.id
        return internal_id

    async def read(
        self,
        record_type: str,
        ref: str,
        kind: type[T],
        *,
        lane: Lane,
        correlation_id: str,
    ) -> T:
        """``GET …/<type>/<ref>`` decoded as ``kind`` (PayloadError if it does not fit)."""
        response = await self.client.request(
            "GET",
            f"{RECORD_PATH}/{record_type}/{ref}",
            lane=lane,
            correlation_id=correlation_id,
        )
        return self._decode(response.content, kind, f"{record_type} {ref}")

    async def suiteql(self, query: str, *, lane: Lane, correlation_id: str) -> list[dict[str, Any]]:
        """Every row of a SuiteQL query, page by page (``links`` dropped)."""
        rows: list[dict[str, Any]] = []
        offset = 0
        while True:
            response = await self.client.request(
                "POST",
                SUITEQL_PATH,
                params={"limit": self.page_size, "offset": offset},
                json={"q": query},
                headers={"Prefer": "transient"},
                lane=lane,
                correlation_id=correlation_id,
                idempotent=True,  # a query changes nothing
            )
            page = self._decode(response.content, _SuiteQLPage, "suiteql")
            rows.extend({k: v for k, v in item.items() if k != "links"} for item in page.items)
            if not page.hasMore or not page.items:
                return rows
            offset += len(page.items)

    async def existing(
        self,
        table: str,
        external_ids: Iterable[str],
        *,
        lane: Lane,
        correlation_id: str,
        condition: str = "",
        chunk_size: int = 500,
    ) -> dict[str, str]:
        """External id → internal id of those ``external_ids`` that exist in ``table``.

        One SuiteQL query per ``chunk_size`` ids (an ``IN`` list); the look before create.
        """
        wanted = list(dict.fromkeys(external_ids))
        found: dict[str, str] = {}
        for start in range(0, len(wanted), chunk_size):
            chunk = wanted[start : start + chunk_size]
            literals = ", ".join(quote_literal(value) for value in chunk)
            where = f"externalid IN ({literals})"
            if condition:
                where = f"{condition} AND {where}"
            query = f"SELECT id, externalid FROM {table} WHERE {where}"
            rows = await self.suiteql(query, lane=lane, correlation_id=correlation_id)
            for row in self._convert(rows, list[_ExistingRow], f"{table} lookup"):
                found[row.externalid] = row.id
        return found

    def _decode(self, content: bytes, kind: type[T], what: str) -> T:
        try:
            return msgspec.json.decode(content, type=kind)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise PayloadError(str(exc), where=f"{self.vendor} {what}") from exc

    def _convert(self, value: Any, kind: type[T], what: str) -> T:
        try:
            return msgspec.convert(value, kind)
        except msgspec.ValidationError as exc:
            raise PayloadError(str(exc), where=f"{self.vendor} {what}") from exc


class _ExistingRow(msgspec.Struct, frozen=True):
    id: str
    externalid: str


def _location_id(response: httpx.Response, record_type: str) -> str | None:
    location = response.headers.get("Location")
    if not location:
        return None
    path = httpx.URL(location).path.rstrip("/")
    head, _, last = path.rpartition("/")
    if not last.isdigit() or not head.lower().endswith(f"/{record_type.lower()}"):
        return None
    return last


def require(value: str | None, what: str, *, system: str) -> str:
    """An option the command needs, or a PermanentError naming it."""
    if not value:
        raise PermanentError(f"netsuite: {what} is not configured", system=system)
    return value
