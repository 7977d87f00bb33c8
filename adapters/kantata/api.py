"""Kantata OX calls the adapter makes, over the governed :class:`SystemClient`.

Kantata takes no idempotency key, so a create whose outcome is unknown is never blindly
repeated: :meth:`KantataApi.create_once` looks for the object first and repeats only
after a 5xx answer (the vendor finished the request and the object is not there). A
transport failure (the request may still be running) is raised for the workflow to retry
later, when the look-before-create of the next attempt finds the object if it landed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, TypeVar

import structlog

from actors.errors import PayloadError, RetryableError, ThrottledError

from ..governor import Lane
from ..http import SystemClient
from .wire import ExternalReference, Page, decode_page, references_of

__all__ = ["SUBJECT_PLURALS", "Call", "KantataApi"]

SUBJECT_PLURALS = {
    "Workspace": "workspaces",
    "WorkspaceGroup": "workspace_groups",
    "Story": "stories",
    "TimeEntry": "time_entries",
    "Expense": "expenses",
}
"""External-reference subject types and the resources they live in."""

_log = structlog.get_logger("pssync.adapters.kantata")

T = TypeVar("T")

_READ_ATTEMPTS = 3
"""A body cut short on a read is read again (reads are safe), this many times in all."""
_WRITE_ATTEMPTS = 3
"""Creates repeated after a 5xx and a look that found nothing, this many in all."""


class Call:
    """The lane and correlation id every request of one command or poll travels with."""

    __slots__ = ("correlation_id", "lane")

    def __init__(self, lane: Lane, correlation_id: str | None = None) -> None:
        self.lane = lane
        self.correlation_id = correlation_id or None


class KantataApi:
    """Envelope-aware reads, writes and external references of one Kantata account."""

    def __init__(self, client: SystemClient, *, service_name: str, per_page: int) -> None:
        self.client = client
        self.service_name = service_name
        self.per_page = per_page

    # -- reads ---------------------------------------------------------------------------

    async def get(self, plural: str, call: Call, params: Mapping[str, Any]) -> Page:
        """One list request, decoded; a truncated body is read again."""
        for attempt in range(1, _READ_ATTEMPTS + 1):
            response = await self.client.request(
                "GET",
                f"{plural}.json",
                lane=call.lane,
                params=dict(params),
                correlation_id=call.correlation_id,
            )
            try:
                return decode_page(response.content, what=f"GET {plural}")
            except PayloadError:
                if attempt == _READ_ATTEMPTS:
                    raise
                _log.warning("kantata.reread", resource=plural, attempt=attempt)
        raise AssertionError("unreachable")  # pragma: no cover

    async def pages(
        self, plural: str, call: Call, params: Mapping[str, Any]
    ) -> AsyncIterator[Page]:
        """Every page of a query, first to last (``page`` + ``per_page``)."""
        number = 1
        while True:
            page = await self.get(
                plural, call, {**params, "page": number, "per_page": self.per_page}
            )
            yield page
            if not page.records or number >= page.page_count:
                return
            number += 1

    async def all(self, plural: str, call: Call, params: Mapping[str, Any]) -> list[Page]:
        """Every page of a query, collected."""
        return [page async for page in self.pages(plural, call, params)]

    async def find_by_reference(
        self, plural: str, call: Call, *, model: str, ref: str
    ) -> tuple[dict[str, Any], Page] | None:
        """The object holding our reference ``model``/``ref``, with its page (or None).

        Kantata's ``external_reference_service_model_ref`` filter ignores the service, so
        the side-loaded references are checked for ours.
        """
        params = {"external_reference_service_model_ref": ref, "include": "external_references"}
        async for page in self.pages(plural, call, params):
            for record in page.records:
                for found in references_of(record, page, service_name=self.service_name):
                    if found.service_model == model and found.service_model_ref == ref:
                        return record, page
        return None

    # -- writes --------------------------------------------------------------------------

    async def post(
        self, plural: str, singular: str, call: Call, values: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Create one object; returns it as Kantata echoes it."""
        response = await self.client.request(
            "POST",
            f"{plural}.json",
            lane=call.lane,
            json={singular: dict(values)},
            correlation_id=call.correlation_id,
        )
        page = decode_page(response.content, what=f"POST {plural}")
        if len(page.records) != 1:
            raise PayloadError(f"expected one {singular}, got {len(page.records)}", where=plural)
        return page.records[0]

    async def post_many(
        self, plural: str, call: Call, items: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """A bulk create (all or nothing, as Kantata's bulk endpoints are)."""
        response = await self.client.request(
            "POST",
            f"{plural}.json",
            lane=call.lane,
            json={plural: items},
            correlation_id=call.correlation_id,
        )
        return decode_page(response.content, what=f"POST {plural}").records

    async def put(
        self, plural: str, singular: str, record_id: str, call: Call, values: Mapping[str, Any]
    ) -> None:
        """Update one object (PUT is idempotent, so the HTTP layer retries it)."""
        await self.client.request(
            "PUT",
            f"{plural}/{record_id}.json",
            lane=call.lane,
            json={singular: dict(values)},
            correlation_id=call.correlation_id,
        )

    async def create_once(
        self,
        create: Callable[[], Awaitable[T]],
        find: Callable[[], Awaitable[T | None]],
        *,
        what: str,
    ) -> tuple[T, bool]:
        """Create through ``create`` without ever duplicating; returns (object, created).

        After a failure that may have hidden a success (a 5xx, a lost connection, a body
        cut short) ``find`` looks for the object: found, it is the one just created.
        Not found after a 5xx, the create is repeated; after a transport failure the
        error is raised (the request may still be running at the vendor).
        """
        for attempt in range(1, _WRITE_ATTEMPTS + 1):
            try:
                return await create(), True
            except ThrottledError:
                raise  # refused before the vendor acted; the HTTP layer already waited
            except (RetryableError, PayloadError) as exc:
                found = await find()
                if found is not None:
                    _log.info("kantata.create_recovered", what=what, error=str(exc))
                    return found, True
                answered = isinstance(exc, RetryableError) and exc.status is not None
                if not answered or attempt == _WRITE_ATTEMPTS:
                    raise
                _log.warning("kantata.create_retry", what=what, attempt=attempt, error=str(exc))
        raise AssertionError("unreachable")  # pragma: no cover

    async def ensure_reference(
        self,
        subject_type: str,
        subject_id: str,
        call: Call,
        *,
        model: str,
        ref: str,
        message: str | None = None,
    ) -> None:
        """Attach our reference ``model``/``ref`` to one object (no-op if it is there)."""
        values = {
            "subject_type": subject_type,
            "subject_id": subject_id,
            "service_name": self.service_name,
            "service_model": model,
            "service_model_ref": ref,
            "status": "synced",
        }
        if message is not None:
            values["external_message"] = message

        async def create() -> bool:
            # The answer is not needed, so a body cut short does not matter here.
            await self.client.request(
                "POST",
                "external_references.json",
                lane=call.lane,
                json={"external_reference": values},
                correlation_id=call.correlation_id,
            )
            return True

        async def find() -> bool | None:
            refs = await self.references(subject_type, [subject_id], call)
            mine = refs.get(subject_id, [])
            return True if any(r.service_model == model for r in mine) else None

        await self.create_once(create, find, what=f"reference {subject_type} {subject_id}")

    async def references(
        self, subject_type: str, subject_ids: list[str], call: Call
    ) -> dict[str, list[ExternalReference]]:
        """Our references on the given objects by subject id; absent ids are left out.

        Read through the subjects themselves (``only=`` + ``include=external_references``,
        200 ids a call) because ``only`` is the documented way to fetch by id.
        """
        plural = SUBJECT_PLURALS[subject_type]
        found: dict[str, list[ExternalReference]] = {}
        for start in range(0, len(subject_ids), self.per_page):
            chunk = subject_ids[start : start + self.per_page]
            params = {"only": ",".join(chunk), "include": "external_references"}
            async for page in self.pages(plural, call, params):
                for record in page.records:
                    mine = references_of(record, page, service_name=self.service_name)
                    found[str(record.get("id"))] = mine
        return found
