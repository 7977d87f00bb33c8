"""The Salesforce REST calls the adapter makes, over the shared :class:`SystemClient`.

Each method is one vendor call (or one query followed to its end) with the lane and
correlation id the caller gives. Writes are all safe to repeat — PATCH by id or by external
id — so they are sent as idempotent and the HTTP layer may retry them after a 5xx.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any
from urllib.parse import quote

import msgspec

from actors.errors import PayloadError, PermanentError

from ..governor import Lane
from ..http import SystemClient
from .options import SalesforceOptions
from .wire import QueryResult, SaveResult, decode_body

__all__ = ["SalesforceApi"]

# Salesforce currency and percent fields take JSON numbers; msgspec writes Decimal as a
# string unless told otherwise, and a float would round the money.
_NUMBER_ENCODER = msgspec.json.Encoder(decimal_format="number")


def _body(values: Any) -> msgspec.Raw:
    return msgspec.Raw(_NUMBER_ENCODER.encode(values))


class SalesforceApi:
    """Queries, record reads and writes, upserts and sObject Collections of one org."""

    def __init__(self, client: SystemClient, options: SalesforceOptions) -> None:
        self.client = client
        self.options = options
        self.root = options.data_path

    @property
    def system(self) -> str:
        return self.client.system

    # -- queries -------------------------------------------------------------------------

    async def query(self, soql: str, *, lane: Lane, correlation_id: str) -> QueryResult:
        """The first batch of a SOQL query."""
        response = await self.client.request(
            "GET",
            f"{self.root}/query",
            params={"q": soql},
            headers={"Sforce-Query-Options": f"batchSize={self.options.query_batch_size}"},
            lane=lane,
            correlation_id=correlation_id,
        )
        return decode_body(response, QueryResult, system=self.system, what="query")

    async def query_more(self, next_url: str, *, lane: Lane, correlation_id: str) -> QueryResult:
        """The batch at a ``nextRecordsUrl``."""
        response = await self.client.request(
            "GET",
            next_url,
            headers={"Sforce-Query-Options": f"batchSize={self.options.query_batch_size}"},
            lane=lane,
            correlation_id=correlation_id,
        )
        return decode_body(response, QueryResult, system=self.system, what="query batch")

    async def records(
        self, soql: str, *, lane: Lane, correlation_id: str
    ) -> AsyncIterator[dict[str, Any]]:
        """Every record of a query, batch after batch."""
        batch = await self.query(soql, lane=lane, correlation_id=correlation_id)
        while True:
            for record in batch.records:
                yield record
            if batch.done or not batch.nextRecordsUrl:
                return
            batch = await self.query_more(
                batch.nextRecordsUrl, lane=lane, correlation_id=correlation_id
            )

    async def query_all(
        self, soql: str, *, lane: Lane, correlation_id: str
    ) -> list[dict[str, Any]]:
        """Every record of a (small) query as a list."""
        return [
            record async for record in self.records(soql, lane=lane, correlation_id=correlation_id)
        ]

    async def children(
        self, nested: Any, *, lane: Lane, correlation_id: str, where: str
    ) -> list[dict[str, Any]]:
        """The rows of a parent-child subquery, following its own ``nextRecordsUrl``.

        Salesforce answers an empty subquery with ``null`` and a long one with a nested
        result that is not ``done``.
        """
        if nested is None:
            return []
        try:
            batch = msgspec.convert(nested, QueryResult)
        except msgspec.ValidationError as exc:
            raise PayloadError(str(exc), where=f"salesforce {where}") from exc
        rows = list(batch.records)
        while not batch.done and batch.nextRecordsUrl:
            batch = await self.query_more(
                batch.nextRecordsUrl, lane=lane, correlation_id=correlation_id
            )
            rows.extend(batch.records)
        return rows

    # -- single records ------------------------------------------------------------------

    def record_path(self, sobject: str, record_id: str) -> str:
        return f"{self.root}/sobjects/{sobject}/{quote(record_id, safe='')}"

    def external_path(self, sobject: str, field: str, value: str) -> str:
        # Every character is escaped: an external id may hold a slash or a question mark.
        return f"{self.root}/sobjects/{sobject}/{field}/{quote(value, safe='')}"

    async def get(
        self,
        path: str,
        fields: Sequence[str],
        *,
        lane: Lane,
        correlation_id: str,
    ) -> dict[str, Any]:
        """One record (by id or external-id path) with just ``fields``."""
        response = await self.client.request(
            "GET",
            path,
            params={"fields": ",".join(fields)},
            lane=lane,
            correlation_id=correlation_id,
        )
        if response.status_code == 300:
            raise self._several(path, response.status_code)
        return decode_body(response, dict[str, Any], system=self.system, what=f"GET {path}")

    async def patch(
        self, path: str, values: Mapping[str, Any], *, lane: Lane, correlation_id: str
    ) -> None:
        """Update one record by id (204 No Content)."""
        await self.client.request(
            "PATCH",
            path,
            json=_body(values),
            idempotent=True,
            lane=lane,
            correlation_id=correlation_id,
        )

    async def upsert(
        self,
        sobject: str,
        field: str,
        value: str,
        values: Mapping[str, Any],
        *,
        lane: Lane,
        correlation_id: str,
    ) -> SaveResult:
        """Create or update one record by external id; ``created`` says which.

        201 created; 200 ``created: false`` updated (API 46.0+) or 204 updated (older
        versions, no body: the id is read back); 300 several records hold the value and
        nothing was written — a PermanentError, since only a person can merge them.
        """
        path = self.external_path(sobject, field, value)
        response = await self.client.request(
            "PATCH",
            path,
            json=_body(values),
            idempotent=True,  # the external id makes a repeat an update, never a second record
            lane=lane,
            correlation_id=correlation_id,
        )
        if response.status_code == 300:
            raise self._several(f"{sobject}.{field}={value}", response.status_code)
        if response.status_code == 204 or not response.content:
            record = await self.get(path, ["Id"], lane=lane, correlation_id=correlation_id)
            return SaveResult(success=True, id=str(record.get("Id")), created=False)
        result = decode_body(response, SaveResult, system=self.system, what=f"upsert {sobject}")
        if not result.success:
            raise PermanentError(
                f"upsert {sobject}.{field}={value}: {result.describe_errors()}",
                system=self.system,
                status=response.status_code,
                code=result.errors[0].statusCode if result.errors else "",
            )
        return result

    # -- sObject Collections -------------------------------------------------------------

    async def collection(
        self,
        path_suffix: str,
        records: Sequence[Mapping[str, Any]],
        *,
        lane: Lane,
        correlation_id: str,
    ) -> list[SaveResult]:
        """One ``PATCH /composite/sobjects[/Type/ExtField]`` call of at most 200 records.

        ``allOrNone`` is false: each record succeeds or fails alone, and the results come
        back in request order.
        """
        if len(records) > 200:
            raise ValueError("sObject Collections take at most 200 records per call")
        response = await self.client.request(
            "PATCH",
            f"{self.root}/composite/sobjects{path_suffix}",
            json=_body({"allOrNone": False, "records": list(records)}),
            idempotent=True,  # updates by id and upserts by external id repeat harmlessly
            lane=lane,
            correlation_id=correlation_id,
        )
        results = decode_body(
            response, list[SaveResult], system=self.system, what="sObject Collections"
        )
        if len(results) != len(records):
            raise PayloadError(
                f"{len(results)} results for {len(records)} records",
                where="salesforce sObject Collections",
            )
        return results

    def _several(self, what: str, status: int) -> PermanentError:
        return PermanentError(
            f"{what}: several records match the external id; nothing was written",
            system=self.system,
            status=status,
            code="MULTIPLE_CHOICES",
        )
