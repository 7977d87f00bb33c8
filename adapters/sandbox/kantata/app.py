"""The simulated Kantata OX API v1 (``/api/v1/…``, ``.json`` suffix optional).

Routes: ``GET /api/v1/{resource}`` (list), ``GET /api/v1/{resource}/{id}``,
``POST /api/v1/{resource}`` (``{"<singular>": {…}}``, ``{"<plural>": [...]}`` for bulk, or
a bare object), ``PUT /api/v1/{resource}/{id}``, ``DELETE /api/v1/{resource}/{id}``,
``GET /api/v1/users/me``, and ``POST /oauth/token`` (``client_credentials``; Kantata's
tokens do not expire). Resources: workspaces, stories, time_entries, expenses, users
(read-only), external_references, workspace_groups, workspace_resources (read-only),
project_templates (read-only; see :mod:`.state`).

Every GET answers the envelope ``{"count", "meta": {count, page_count, page_number,
page_size}, "results": [{"key", "id"}], "<plural>": {id: obj}, …side-loads}``; writes
answer the same envelope with the written objects (status 200 — whether Kantata answers
201 to a create is not in systems.md; clients should accept any 2xx).

Paging: ``page`` (default 1) + ``per_page`` (default 20, capped at 200), or ``limit`` +
``offset`` (wins when both are given). Filters: ``only``, ``created_after|before``,
``updated_after|before``, ``order=<field>:asc|desc``, ``include=``, ``workspace_id(s)``,
``with_user_ids``, ``date_performed_between=a:b``, ``approved`` / ``invoiced`` /
``uninvoiced`` / ``has_external_references`` (presence flags: any value means true, so
``approved=false`` still filters to approved entries, as Kantata does), ``billable=true|false``,
``external_reference_service_model_ref(s)``, ``without_external_reference_service_name``,
``story_type``, ``parent_id``, ``subject_type``/``subject_id``/``service_name``; and for
``/subscribed_events``: ``event_types``, ``subject_type``, ``subject_id(s)``,
``most_recent``, ``most_recent_by_event_type``, ``optional_fields=current_payload``,
``include=subject``.

Limits: a token bucket for all calls plus a tighter one for workspace create/list;
beyond them **429** with no ``Retry-After``. Every response carries ``x-request-id``.
Bulk creates are all or nothing (422 with an ``index`` per error) — an assumption.
"""

from __future__ import annotations

import random
import re
import urllib.parse
import uuid
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from ..clock import SandboxClock
from ..limits import TokenBucket
from .errors import KantataError, bad_request, not_found, rate_limited, unauthorized
from .state import EVENTS, RESOURCES, SUBJECT_TYPES, KantataState, parse_timestamp

DEFAULT_CREDENTIALS = {
    "client_id": "pssync-kantata-client",
    "client_secret": "pssync-kantata-secret",
    "access_token": "pssync-kantata-demo-token",
}
_PATH = re.compile(r"^/api/v1/(?P<resource>[a-z_]+?)(?:\.json)?(?:/(?P<id>[^/]+?)(?:\.json)?)?/?$")
_SUBJECT_FOR = {plural: subject for subject, plural in SUBJECT_TYPES.items()}
_MAX_PER_PAGE = 200
_PAGING = frozenset({"page", "per_page", "limit", "offset"})
_CACHE_SIZE = 16
_encoder = msgspec.json.Encoder()


def _json(data: Any, status: int = 200) -> Response:
    return Response(_encoder.encode(data), status_code=status, media_type="application/json")


class KantataApp:
    """ASGI app over a :class:`KantataState`."""

    def __init__(
        self,
        state: KantataState,
        clock: SandboxClock,
        *,
        credentials: dict[str, str],
        rate_per_s: float = 10.0,
        burst: int = 20,
        workspace_rate_per_s: float = 2.0,
        workspace_burst: int = 5,
        seed: int = 0,
    ) -> None:
        self.state = state
        self.credentials = credentials
        self.bucket = TokenBucket(rate_per_s, burst, clock)
        self.workspace_bucket = TokenBucket(workspace_rate_per_s, workspace_burst, clock)
        self._request_ids = random.Random(seed)
        self._cache: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
        if credentials.get("access_token"):
            state.tokens.setdefault(
                credentials["access_token"], {"user_id": "100001", "revoked": False}
            )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        try:
            response = await self.dispatch(request)
        except KantataError as error:
            response = error.response()
        response.headers["x-request-id"] = str(
            uuid.UUID(int=self._request_ids.getrandbits(128), version=4)
        )
        await response(scope, receive, send)

    async def dispatch(self, request: Request) -> Response:
        path = request.url.path
        if path in ("/oauth/token", "/oauth/token/") and request.method == "POST":
            return await self.token(request)
        match = _PATH.match(path)
        if match is None or match["resource"] not in RESOURCES:
            raise not_found()
        self.authenticate(request)
        plural, record_id = match["resource"], match["id"]
        if self.bucket.try_acquire() is not None:
            raise rate_limited()
        spec = RESOURCES[plural]
        # Workspace create and list have their own, tighter limit (systems.md §2).
        if (
            plural == "workspaces"
            and request.method in ("GET", "POST")
            and record_id is None
            and self.workspace_bucket.try_acquire() is not None
        ):
            raise rate_limited()
        match request.method, record_id:
            case "GET", None:
                return self.list(request, plural, list(self.state.tables[plural].values()))
            case "GET", "me" if plural == "users":
                user = self.state.tables["users"][self.current_user(request)]
                return self.list(request, plural, [user])
            case "GET", _:
                record = self.state.get(plural, record_id)
                if record is None:
                    raise not_found()
                return self.list(request, plural, [record])
            case "POST", None if not spec.read_only:
                items = await self.items(request, spec.plural, spec.singular, spec.bulk_max)
                user_id = self.current_user(request)
                if plural in ("time_entries", "expenses"):
                    items = [{"user_id": user_id, **item} for item in items]
                return self.render(request, plural, self.state.create(plural, items))
            case "PUT", str() if not spec.read_only:
                items = await self.items(request, spec.plural, spec.singular, 1)
                return self.render(
                    request, plural, [self.state.update(plural, record_id, items[0])]
                )
            case "DELETE", str() if not spec.read_only:
                self.state.delete(plural, record_id)
                return Response(status_code=204)
        raise not_found()

    # -- auth --------------------------------------------------------------------------

    async def token(self, request: Request) -> Response:
        form = dict(urllib.parse.parse_qsl((await request.body()).decode("utf-8", "replace")))
        if request.headers.get("content-type", "").startswith("application/json"):
            try:
                form = {
                    str(k): str(v) for k, v in msgspec.json.decode(await request.body()).items()
                }
            except (msgspec.DecodeError, AttributeError):
                form = {}
        if form.get("grant_type") != "client_credentials":
            return _json({"error": "unsupported_grant_type"}, 400)
        if (form.get("client_id"), form.get("client_secret")) != (
            self.credentials["client_id"],
            self.credentials["client_secret"],
        ):
            return _json({"error": "invalid_client"}, 401)
        token = self.state.new_token()
        return _json({"access_token": token, "token_type": "bearer", "scope": "user"})

    def authenticate(self, request: Request) -> None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        session = self.state.tokens.get(token) if scheme.lower() == "bearer" else None
        if session is None or session["revoked"]:
            raise unauthorized()

    def current_user(self, request: Request) -> str:
        token = request.headers.get("authorization", "").partition(" ")[2]
        return str(self.state.tokens[token]["user_id"])

    # -- bodies ------------------------------------------------------------------------

    async def items(
        self, request: Request, plural: str, singular: str, bulk_max: int
    ) -> list[dict[str, Any]]:
        try:
            body = msgspec.json.decode(await request.body())
        except msgspec.DecodeError:
            raise bad_request("Request body is not valid JSON") from None
        if not isinstance(body, dict):
            raise bad_request("Request body must be a JSON object")
        if plural in body:
            items = body[plural]
            if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
                raise bad_request(f"{plural} must be a list of objects")
            if not items:
                raise bad_request(f"{plural} must not be empty")
            if len(items) > bulk_max:
                raise bad_request(f"Cannot create more than {bulk_max} {plural} at once")
            return items
        if singular in body:
            if not isinstance(body[singular], dict):
                raise bad_request(f"{singular} must be an object")
            return [body[singular]]
        return [body]

    # -- reads -------------------------------------------------------------------------

    def list(self, request: Request, plural: str, records: list[dict[str, Any]]) -> Response:
        params = request.query_params
        records = self._selected(request, plural, records)
        total = len(records)
        if "limit" in params or "offset" in params:
            limit = min(_int(params.get("limit"), 20), _MAX_PER_PAGE)
            offset = _int(params.get("offset"), 0)
            page_size, page_number = limit, offset // max(limit, 1) + 1
            page = records[offset : offset + limit]
        else:
            page_size = min(_int(params.get("per_page"), 20), _MAX_PER_PAGE)
            page_number = max(_int(params.get("page"), 1), 1)
            page = records[(page_number - 1) * page_size : page_number * page_size]
        page_count = -(-total // page_size) if page_size else 0
        meta = {
            "count": total,
            "page_count": page_count,
            "page_number": page_number,
            "page_size": page_size,
        }
        return _json({"count": total, "meta": meta, **self.envelope(request, plural, page)})

    def _selected(
        self, request: Request, plural: str, records: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """Filtered and ordered records; cached while the state is unchanged, so paging
        through 100,000 entries filters them once, not once per page."""
        params = request.query_params
        key = (
            request.url.path,
            tuple(sorted((k, v) for k, v in params.multi_items() if k not in _PAGING)),
            self.state.version,
        )
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        selected = [r for r in records if self.matches(plural, r, params)]
        selected = _ordered(selected, params.get("order") or RESOURCES[plural].default_order)
        if plural == EVENTS and ("most_recent" in params or "most_recent_by_event_type" in params):
            selected = _most_recent(selected, by_type="most_recent_by_event_type" in params)
        if len(self._cache) >= _CACHE_SIZE:
            self._cache.pop(next(iter(self._cache)))
        self._cache[key] = selected
        return selected

    def render(self, request: Request, plural: str, records: list[dict[str, Any]]) -> Response:
        count = len(records)
        meta = {"count": count, "page_count": 1, "page_number": 1, "page_size": count}
        return _json({"count": count, "meta": meta, **self.envelope(request, plural, records)})

    def envelope(
        self, request: Request, plural: str, records: list[dict[str, Any]]
    ) -> dict[str, Any]:
        includes = [
            name.strip()
            for name in request.query_params.get("include", "").split(",")
            if name.strip()
        ]
        optional_fields = _ids(request.query_params.get("optional_fields", ""))
        objects: dict[str, dict[str, Any]] = {plural: {}}
        results = []
        for record in records:
            shown = dict(record)
            objects[plural][record["id"]] = shown
            results.append({"key": plural, "id": record["id"]})
            if plural == EVENTS and "current_payload" in optional_fields:
                subject_plural = SUBJECT_TYPES.get(record["subject_type"], "")
                shown["current_payload"] = self.state.get(subject_plural, record["subject_id"])
            for name in includes:
                self._side_load(plural, shown, name, objects)
        return {"results": results, **objects}

    def _side_load(
        self, plural: str, shown: dict[str, Any], name: str, objects: dict[str, dict[str, Any]]
    ) -> None:
        if name == "external_references":
            refs = self.state.external_references_of(_SUBJECT_FOR.get(plural, ""), shown["id"])
            shown["external_reference_ids"] = [ref["id"] for ref in refs]
            objects.setdefault("external_references", {}).update({ref["id"]: ref for ref in refs})
        elif name == "sub_stories" and plural == "stories":
            children = [
                s for s in self.state.tables["stories"].values() if s["parent_id"] == shown["id"]
            ]
            shown["sub_story_ids"] = [child["id"] for child in children]
            objects.setdefault("stories", {}).update(
                {c["id"]: c for c in children if c["id"] not in objects["stories"]}
            )
        elif name == "subject" and plural == EVENTS:
            subject_plural = SUBJECT_TYPES.get(shown["subject_type"], "")
            subject = self.state.get(subject_plural, shown["subject_id"])
            if subject is not None:
                objects.setdefault(subject_plural, {}).setdefault(subject["id"], subject)
        elif name in ("user", "workspace", "story", "parent"):
            target_plural = {
                "user": "users",
                "workspace": "workspaces",
                "story": "stories",
                "parent": "stories",
            }[name]
            target_id = shown.get(f"{name}_id")
            target = self.state.get(target_plural, target_id) if target_id else None
            if target is not None:
                objects.setdefault(target_plural, {}).setdefault(target["id"], target)
        elif name == "workspace_resources" and plural == "workspaces":
            rows = [
                r
                for r in self.state.tables["workspace_resources"].values()
                if r["workspace_id"] == shown["id"]
            ]
            shown["workspace_resource_ids"] = [row["id"] for row in rows]
            objects.setdefault("workspace_resources", {}).update({row["id"]: row for row in rows})
        else:
            raise bad_request(f"Unknown include: {name}")

    def matches(self, plural: str, record: dict[str, Any], params: Any) -> bool:
        """Whether ``record`` passes every filter in ``params`` that applies to it."""
        for name, value in params.multi_items():
            if not self._passes(plural, record, name, value):
                return False
        return True

    def _passes(self, plural: str, record: dict[str, Any], name: str, value: str) -> bool:
        match name:
            case "only":
                return record["id"] in _ids(value)
            case "updated_after" | "updated_before" | "created_after" | "created_before":
                field = "updated_at" if name.startswith("updated") else "created_at"
                try:
                    bound = parse_timestamp(value)
                except ValueError:
                    raise bad_request(f"{name} must be an ISO 8601 time") from None
                actual = parse_timestamp(record[field])
                return actual > bound if name.endswith("after") else actual < bound
            case "workspace_id" | "workspace_ids":
                return str(record.get("workspace_id")) in _ids(value)
            case "with_user_ids":
                return str(record.get("user_id")) in _ids(value)
            case "date_performed_between":
                low, _, high = value.partition(":")
                return low <= record.get("date_performed", "") <= high
            case "page" | "per_page" | "limit" | "offset" | "order" | "include":
                return True
            case "event_types" if plural == EVENTS:
                return record["event_type"] in _ids(value)
            case "subject_id" | "subject_ids" if plural == EVENTS:
                return record["subject_id"] in _ids(value)
            case "approved" | "invoiced" | "uninvoiced" if plural in ("time_entries", "expenses"):
                if name == "approved":
                    return bool(record.get("approved"))
                return bool(record.get("is_invoiced")) == (name == "invoiced")
            case "billable" if plural in ("time_entries", "expenses"):
                return bool(record.get("billable")) == (value.lower() == "true")
            case "external_reference_service_model_ref" | "external_reference_service_model_refs":
                wanted = set(value.split(","))
                subject = _SUBJECT_FOR.get(plural, "")
                return any(
                    str(ref["service_model_ref"]) in wanted
                    for ref in self.state.external_references_of(subject, record["id"])
                )
            case "has_external_references":
                return bool(
                    self.state.external_references_of(_SUBJECT_FOR.get(plural, ""), record["id"])
                )
            case "without_external_reference_service_name":
                return not any(
                    ref["service_name"] == value
                    for ref in self.state.external_references_of(
                        _SUBJECT_FOR.get(plural, ""), record["id"]
                    )
                )
            case (
                "story_type"
                | "parent_id"
                | "subject_type"
                | "subject_id"
                | "service_name"
                | "service_model"
            ):
                return str(record.get(name)) == value
        return True


def _most_recent(events: list[dict[str, Any]], *, by_type: bool) -> list[dict[str, Any]]:
    """The latest event per subject (or per subject and event type), in feed order."""
    latest: dict[tuple[str, ...], dict[str, Any]] = {}
    for event in sorted(events, key=lambda e: int(e["id"])):
        key = (event["subject_type"], event["subject_id"])
        latest[(*key, event["event_type"]) if by_type else key] = event
    keep = {id(event) for event in latest.values()}
    return [event for event in events if id(event) in keep]


def _sort_key(value: Any) -> tuple[bool, Any]:
    # Nulls sort together (last ascending); the second element is only compared among
    # non-null values of one field, which share a type.
    return (value is None, 0 if value is None else value)


def _ids(value: str) -> set[str]:
    return {part.strip() for part in value.split(",") if part.strip()}


def _int(value: str | None, default: int) -> int:
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise bad_request(f"expected an integer, got {value!r}") from None


def _ordered(records: list[dict[str, Any]], order: str) -> list[dict[str, Any]]:
    field, _, direction = order.partition(":")
    descending = direction.lower() == "desc"
    # Ties break on the numeric id so that paging is stable.
    records = sorted(records, key=lambda r: int(r["id"]), reverse=descending)
    if field != "id":
        records.sort(key=lambda r: _sort_key(r.get(field)), reverse=descending)
    return records
