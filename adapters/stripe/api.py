"""The calls the Stripe adapter makes, on top of the shared :class:`SystemClient`.

Every request carries the pinned ``Stripe-Version``, its governor lane and the flow's
correlation id; every POST carries an idempotency key (``Idempotency-Key``, which also
makes SystemClient retry it safely after a 5xx or a dropped connection). Bodies are form
encoded by :func:`~.forms.encode_form`.

Look-before-create (:meth:`StripeApi.find_by_metadata`). Stripe forgets idempotency keys
after 24 hours, so a replay older than that would create a second object; before each
create the adapter looks for one that carries the canonical id in its metadata. Stripe's
search finds it in one call, but search is eventually consistent (usually under a minute,
longer during incidents), so it is combined with a list of the objects created in the last
``search_lag_window_s`` (lists are strongly consistent), filtered here. Cost: one search
call plus one list call, usually a single page, per lookup; objects older than the window
are found by search, younger ones by the list, and a retry within 24 hours is
deduplicated by Stripe itself through the same idempotency key.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, TypeVar

from actors.errors import PermanentError

from ..governor import Lane
from ..http import SystemClient
from .forms import encode_form
from .options import StripeOptions
from .wire import ListPage, StripeObject, decode, decode_items

__all__ = ["StripeApi"]

T = TypeVar("T", bound=StripeObject)
P = TypeVar("P")


class StripeApi:
    """Typed Stripe calls for one system: get, post, list, search, find by metadata."""

    def __init__(
        self,
        client: SystemClient,
        options: StripeOptions,
        *,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.options = options
        self.system = client.system
        self.wall_clock = wall_clock
        self._headers = {"Stripe-Version": options.api_version}

    async def get(
        self,
        path: str,
        kind: type[P],
        *,
        lane: Lane,
        correlation_id: str,
        params: Mapping[str, Any] | None = None,
    ) -> P:
        """GET one object (or page) and decode it as ``kind``."""
        response = await self.client.request(
            "GET",
            path,
            lane=lane,
            params=encode_form(params or {}),
            headers=self._headers,
            correlation_id=correlation_id or None,
        )
        return decode(response.content, kind, what=path)

    async def get_or_none(
        self, path: str, kind: type[T], *, lane: Lane, correlation_id: str
    ) -> T | None:
        """GET one object; ``None`` when Stripe says it does not exist (404)."""
        try:
            return await self.get(path, kind, lane=lane, correlation_id=correlation_id)
        except PermanentError as exc:
            if exc.status == 404:
                return None
            raise

    async def post(
        self,
        path: str,
        kind: type[T],
        values: Mapping[str, Any],
        *,
        lane: Lane,
        idempotency_key: str,
        correlation_id: str,
    ) -> T:
        """POST a form body with an idempotency key and decode the answer as ``kind``."""
        response = await self.client.request(
            "POST",
            path,
            lane=lane,
            data=encode_form(values),
            headers=self._headers,
            idempotency_key=idempotency_key,
            correlation_id=correlation_id or None,
        )
        return decode(response.content, kind, what=path)

    async def list_all(
        self,
        path: str,
        kind: type[T],
        *,
        lane: Lane,
        correlation_id: str,
        params: Mapping[str, Any] | None = None,
    ) -> AsyncIterator[T]:
        """Every object of a list endpoint, newest first, paging with ``starting_after``."""
        query: dict[str, Any] = {**(params or {}), "limit": self.options.list_page_size}
        while True:
            page = await self.get(
                path, ListPage, lane=lane, correlation_id=correlation_id, params=query
            )
            items = decode_items(page, kind, what=path)
            for item in items:
                yield item
            if not page.has_more or not items:
                return
            query["starting_after"] = items[-1].id

    async def search(
        self, path: str, kind: type[T], query: str, *, lane: Lane, correlation_id: str
    ) -> AsyncIterator[T]:
        """Every search hit, paging with ``page``/``next_page``."""
        params: dict[str, Any] = {"query": query, "limit": self.options.list_page_size}
        while True:
            page = await self.get(
                path, ListPage, lane=lane, correlation_id=correlation_id, params=params
            )
            for item in decode_items(page, kind, what=path):
                yield item
            if not page.has_more or not page.next_page:
                return
            params["page"] = page.next_page

    async def find_by_metadata(
        self,
        resource: str,
        kind: type[T],
        value: str,
        *,
        lane: Lane,
        correlation_id: str,
        list_params: Mapping[str, Any] | None = None,
    ) -> list[T]:
        """Objects of ``/v1/<resource>`` whose metadata ``id_key`` is ``value``, oldest
        first: search plus the list of recent objects (module docstring)."""
        key = self.options.id_key
        found: dict[str, T] = {}
        path = f"/v1/{resource}"
        recent: dict[str, Any] = dict(list_params or {})
        # A value with a quote or backslash cannot be a search literal: then every object
        # is listed instead (rare, and slower by the size of the account).
        if "'" not in value and "\\" not in value:
            query = f"metadata['{key}']:'{value}'"
            async for obj in self.search(
                f"{path}/search", kind, query, lane=lane, correlation_id=correlation_id
            ):
                found[obj.id] = obj
            since = int(self.wall_clock()) - self.options.search_lag_window_s
            recent["created"] = {"gte": since}
        async for obj in self.list_all(
            path, kind, lane=lane, correlation_id=correlation_id, params=recent
        ):
            found.setdefault(obj.id, obj)
        matches = [obj for obj in found.values() if obj.metadata.get(key) == value]
        return sorted(matches, key=lambda obj: obj.created)
