"""The simulated NetSuite REST web services as an ASGI app.

Routes (``<base>`` = ``https://<account>.suitetalk.api.netsuite.com`` or as configured):

- ``POST   /services/rest/record/v1/<type>``            create → 204 + ``Location``
- ``GET    /services/rest/record/v1/<type>?limit=&offset=`` list (ids + links, ≤ 1000)
- ``GET    /services/rest/record/v1/<type>/<id|eid:X>``  read (``expandSubResources=true``)
- ``PATCH  /services/rest/record/v1/<type>/<id|eid:X>``  update → 204
- ``PUT    /services/rest/record/v1/<type>/eid:X``       upsert → 204 (+ ``Location``)
- ``DELETE /services/rest/record/v1/<type>/<id|eid:X>``  → 204
- ``POST   /services/rest/query/v1/suiteql?limit=&offset=`` SuiteQL (``Prefer: transient``)
- ``POST   /services/rest/auth/oauth2/v1/token``         M2M client credentials (:mod:`.m2m`)

Every other request is authenticated first (TBA, see :mod:`.auth`, or an M2M bearer
token), then counted against the account's concurrency limit: a request arriving while
``concurrency_limit`` requests are in flight is answered 429 at once (NetSuite refuses,
it does not queue). The token endpoint needs nothing but its assertion and is not
counted against the limit (an assumption).

SuiteQL without ``Prefer: transient`` is refused with 400 ``INVALID_HEADER`` (NetSuite
documents the header as required; the exact refusal is an assumption). ``limit`` above
1000 is 400 ``INVALID_PARAMETER``. The ``q=`` filter of record collections is not
simulated (400). Collection and record ``links`` use the configured ``base_url`` or, if
none, the request's own scheme and host.

``request_hook`` (an ``async`` callable taking the Starlette request) is awaited while a
request holds its concurrency slot — tests use it to keep requests in flight.
``processing_ms = (min, max)`` is NetSuite's own service time, slept (``trio.sleep``, so
virtual under a mock clock) *inside* the slot: unlike the fault injector's latency, which
runs before the app, it makes the concurrency limit bite under load (benchmarks).
"""

from __future__ import annotations

import json
import random
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl, urlencode

import trio
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, Router
from starlette.types import Message, Receive, Scope, Send

from ..limits import ConcurrencyGate
from . import suiteql, tables
from .auth import AuthFailed, TbaVerifier, base_string_uri
from .errors import NetSuiteError, concurrency_exceeded, login_failed
from .m2m import TOKEN_PATH, BearerRefused, M2MIssuer, TokenRefused
from .records import SPECS
from .state import NetSuiteState

RequestHook = Callable[[Request], Awaitable[None]]
RECORD_PREFIX = "/services/rest/record/v1"
MAX_PAGE = 1000
# Routes take every method so that a wrong one gets NetSuite's 405 body, not Starlette's.
_ALL = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
_SINGULAR = "application/vnd.oracle.resource+json; type=singular"
_COLLECTION = "application/vnd.oracle.resource+json; type=collection"


class NetSuiteApp:
    """ASGI app: auth → concurrency gate → routes."""

    def __init__(
        self,
        state: NetSuiteState,
        verifier: TbaVerifier,
        *,
        concurrency_limit: int = 5,
        base_url: str | None = None,
        request_hook: RequestHook | None = None,
        processing_ms: tuple[float, float] = (0.0, 0.0),
        seed: int = 0,
        m2m: M2MIssuer | None = None,
    ) -> None:
        low, high = processing_ms
        if not 0 <= low <= high:
            raise ValueError("processing_ms must be (min, max) with 0 <= min <= max")
        self.processing_ms = (low, high)
        self._random = random.Random(f"netsuite-processing-{seed}")
        self.state = state
        self.verifier = verifier
        self.m2m = m2m
        self.gate = ConcurrencyGate(concurrency_limit)
        self.base_url = base_url.rstrip("/") if base_url else None
        self.request_hook = request_hook
        self.auth_failures: list[str] = []
        self.token_refusals: list[str] = []  # "error: description" of refused token calls
        self.router = Router(
            routes=[
                Route("/services/rest/query/v1/suiteql", self.suiteql, methods=_ALL),
                Route(RECORD_PREFIX + "/{type}", self.collection, methods=_ALL),
                Route(RECORD_PREFIX + "/{type}/{ref}", self.instance, methods=_ALL),
            ],
            default=self._not_found,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.router(scope, receive, send)
            return
        if scope["path"] == TOKEN_PATH and self.m2m is not None:
            await self._token(scope, receive, send)
            return
        request = Request(scope)
        form: list[tuple[str, str]] = []
        content_type = request.headers.get("content-type", "")
        if content_type.startswith("application/x-www-form-urlencoded"):
            # RFC 5849 signs form bodies: read it now and replay it to the routes.
            body = await _read_body(receive)
            form = parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True)
            receive = _replay(body)
        try:
            self._authenticate(request, form)
        except AuthFailed as failure:
            self.auth_failures.append(failure.reason)
            await login_failed()(scope, receive, send)
            return
        if not self.gate.try_enter():
            await concurrency_exceeded()(scope, receive, send)
            return
        try:
            if self.request_hook is not None:
                await self.request_hook(request)
            low, high = self.processing_ms
            if high > 0:
                await trio.sleep((low + (high - low) * self._random.random()) / 1000.0)
            try:
                await self.router(scope, receive, send)
            except NetSuiteError as error:
                await error.response()(scope, receive, send)
        finally:
            self.gate.exit()

    def _authenticate(self, request: Request, form: list[tuple[str, str]]) -> None:
        scope = request.scope
        header = request.headers.get("authorization")
        scheme, _, token = (header or "").strip().partition(" ")
        if scheme.lower() == "bearer":
            if self.m2m is None:
                raise AuthFailed("bearer tokens are not accepted: M2M is not configured")
            try:
                self.m2m.verify_bearer(token.strip())
            except BearerRefused as refused:
                raise AuthFailed(refused.reason) from None
            return
        raw_path = scope.get("raw_path") or scope["path"].encode()
        uri = base_string_uri(scope["scheme"], _host(request), raw_path.decode("latin-1"))
        query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        self.verifier.verify(
            method=request.method,
            uri=uri,
            query_params=query,
            header=header,
            form_params=form,
        )

    async def _token(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The M2M token endpoint: an OAuth 2.0 JSON answer, never a NetSuite error body."""
        assert self.m2m is not None
        request = Request(scope, receive)
        if request.method != "POST":
            error = NetSuiteError(
                405, "INVALID_METHOD", f"The HTTP method {request.method} is not allowed."
            )
            await error.response()(scope, receive, send)
            return
        no_store = {"Cache-Control": "no-store", "Pragma": "no-cache"}
        try:
            form = _token_form(request.headers.get("content-type", ""), await request.body())
            raw_path = scope.get("raw_path") or scope["path"].encode()
            seen = base_string_uri(scope["scheme"], _host(request), raw_path.decode("latin-1"))
            audiences = {seen}
            if self.base_url:
                audiences.add(self.base_url + TOKEN_PATH)
            body = self.m2m.issue(form, audiences)
        except TokenRefused as refused:
            self.token_refusals.append(f"{refused.error}: {refused.description}")
            response: Response = JSONResponse(refused.body(), status_code=400, headers=no_store)
        else:
            response = JSONResponse(body, headers=no_store)
        await response(scope, receive, send)

    # ----------------------------------------------------------------- helpers

    def _base(self, request: Request) -> str:
        if self.base_url:
            return self.base_url
        return f"{request.url.scheme}://{request.url.netloc}{request.scope.get('root_path', '')}"

    def _record_url(self, request: Request, type_name: str, record_id: int | str) -> str:
        return f"{self._base(request)}{RECORD_PREFIX}/{type_name}/{record_id}"

    async def _not_found(self, scope: Scope, receive: Receive, send: Send) -> None:
        error = NetSuiteError(
            404, "NONEXISTENT_ID", f"The requested URL {scope['path']} was not found."
        )
        await error.response()(scope, receive, send)

    @staticmethod
    async def _json_body(request: Request) -> Any:
        raw = await request.body()
        try:
            return json.loads(raw or b"null")
        except ValueError:
            raise NetSuiteError(
                400, "INVALID_CONTENT", "The request body is not valid JSON."
            ) from None

    @staticmethod
    def _paging(request: Request) -> tuple[int, int]:
        def number(name: str, default: int) -> int:
            raw = request.query_params.get(name)
            if raw is None:
                return default
            if not raw.isdigit():
                raise NetSuiteError(
                    400,
                    "INVALID_PARAMETER",
                    f"Invalid value for query parameter {name}: {raw}.",
                    query_param=name,
                )
            return int(raw)

        limit = number("limit", MAX_PAGE)
        offset = number("offset", 0)
        if not 1 <= limit <= MAX_PAGE:
            raise NetSuiteError(
                400,
                "INVALID_PARAMETER",
                f"Invalid value for query parameter limit: it must be between 1 and {MAX_PAGE}.",
                query_param="limit",
            )
        return limit, offset

    def _page_links(
        self, request: Request, path: str, limit: int, offset: int, total: int
    ) -> list[dict[str, str]]:
        extra = [
            (key, value)
            for key, value in request.query_params.multi_items()
            if key not in ("limit", "offset")
        ]

        def href(at: int) -> str:
            query = urlencode([*extra, ("limit", limit), ("offset", at)])
            return f"{self._base(request)}{path}?{query}"

        last = max(0, (total - 1) // limit * limit)
        links = []
        if offset > 0:
            links.append({"rel": "previous", "href": href(max(0, offset - limit))})
            links.append({"rel": "first", "href": href(0)})
        if offset + limit < total:
            links.append({"rel": "next", "href": href(offset + limit)})
            links.append({"rel": "last", "href": href(last)})
        links.append({"rel": "self", "href": href(offset)})
        return links

    def _page(
        self, request: Request, path: str, items: list[Any], limit: int, offset: int
    ) -> dict[str, Any]:
        page = items[offset : offset + limit]
        return {
            "links": self._page_links(request, path, limit, offset, len(items)),
            "count": len(page),
            "hasMore": offset + len(page) < len(items),
            "items": page,
            "offset": offset,
            "totalResults": len(items),
        }

    # ----------------------------------------------------------------- records

    async def collection(self, request: Request) -> Response:
        _allow(request, "GET", "POST")
        spec = self.state.spec(request.path_params["type"])
        if request.method == "POST":
            body = await self._json_body(request)
            record_id = self.state.create(spec.name, body)
            return Response(
                status_code=204,
                headers={"Location": self._record_url(request, spec.name, record_id)},
            )
        if "q" in request.query_params:
            raise NetSuiteError(
                400,
                "INVALID_PARAMETER",
                "The q filter is not supported by the sandbox; use SuiteQL.",
                query_param="q",
            )
        limit, offset = self._paging(request)
        items = [
            {
                "links": [{"rel": "self", "href": self._record_url(request, spec.name, rid)}],
                "id": str(rid),
            }
            for rid in self.state.list_ids(spec.name)
        ]
        body = self._page(request, f"{RECORD_PREFIX}/{spec.name}", items, limit, offset)
        return JSONResponse(body, media_type=_COLLECTION)

    async def instance(self, request: Request) -> Response:
        _allow(request, "GET", "PATCH", "PUT", "DELETE")
        spec = self.state.spec(request.path_params["type"])
        ref = request.path_params["ref"]
        if request.method == "PUT":
            if not ref.startswith("eid:"):
                raise NetSuiteError(
                    405,
                    "INVALID_METHOD",
                    "PUT is only supported with an external ID (upsert): use eid:<externalId>.",
                )
            body = await self._json_body(request)
            record_id, _ = self.state.upsert(spec.name, ref[4:], body)
            return Response(
                status_code=204,
                headers={"Location": self._record_url(request, spec.name, record_id)},
            )
        record_id = self.state.resolve(spec.name, ref)
        if request.method == "PATCH":
            self.state.update(spec.name, record_id, await self._json_body(request))
            return Response(status_code=204)
        if request.method == "DELETE":
            self.state.delete(spec.name, record_id)
            return Response(status_code=204)
        expand = request.query_params.get("expandSubResources", "").lower() == "true"
        record = self.state.get(spec.name, record_id)
        assert record is not None
        return JSONResponse(self._render(request, spec.name, record, expand), media_type=_SINGULAR)

    def _render(
        self, request: Request, type_name: str, record: dict[str, Any], expand: bool
    ) -> dict[str, Any]:
        spec = SPECS[type_name]
        url = self._record_url(request, type_name, record["id"])
        out: dict[str, Any] = {"links": [{"rel": "self", "href": url}], "id": str(record["id"])}
        for name, value in record.items():
            if name == "id":
                continue
            if name in spec.sublists:
                sublist: dict[str, Any] = {"links": [{"rel": "self", "href": f"{url}/{name}"}]}
                if expand:
                    sublist["items"] = [self._render_value(request, line) for line in value]
                    sublist["totalResults"] = len(value)
                out[name] = sublist
            else:
                out[name] = self._render_value(request, value)
        return out

    def _render_value(self, request: Request, value: Any) -> Any:
        if isinstance(value, dict) and "_type" in value:
            target, target_id = value["_type"], int(value["id"])
            ref: dict[str, Any] = {
                "links": [{"rel": "self", "href": self._record_url(request, target, target_id)}],
                "id": value["id"],
            }
            name = self.state.ref_name(target, target_id)
            if name is not None:
                ref["refName"] = name
            return ref
        if isinstance(value, dict):
            return {key: self._render_value(request, item) for key, item in value.items()}
        if isinstance(value, list):
            return [self._render_value(request, item) for item in value]
        return value

    # ----------------------------------------------------------------- SuiteQL

    async def suiteql(self, request: Request) -> Response:
        _allow(request, "POST")
        if "transient" not in request.headers.get("prefer", "").lower():
            raise NetSuiteError(
                400,
                "INVALID_HEADER",
                "The Prefer header must be set to 'transient' for SuiteQL queries.",
                header="Prefer",
            )
        limit, offset = self._paging(request)
        body = await self._json_body(request)
        if not isinstance(body, dict) or not isinstance(body.get("q"), str):
            raise NetSuiteError(
                400,
                "INVALID_CONTENT",
                'The request body must be {"q": "<SuiteQL>"}.',
                path="q",
            )
        query = suiteql.parse(body["q"])
        rows, columns = tables.table(self.state, query.table)
        results = [{"links": [], **item} for item in suiteql.execute(query, rows, columns)]
        page = self._page(request, "/services/rest/query/v1/suiteql", results, limit, offset)
        return JSONResponse(page, media_type=_COLLECTION)


def _host(request: Request) -> str:
    host = request.headers.get("host")
    if host is None:
        server_host, port = request.scope.get("server") or ("localhost", None)
        host = f"{server_host}:{port}" if port else server_host
    return host


def _token_form(content_type: str, body: bytes) -> dict[str, str]:
    """The token request's form; RFC 6749 §3.2 forbids repeating a parameter."""
    if not content_type.startswith("application/x-www-form-urlencoded"):
        raise TokenRefused(
            "invalid_request", "The Content-Type must be application/x-www-form-urlencoded."
        )
    pairs = parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True)
    form = dict(pairs)
    if len(form) != len(pairs):
        raise TokenRefused("invalid_request", "A parameter is repeated.")
    return form


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await trio.sleep_forever()
        raise AssertionError("unreachable")  # pragma: no cover

    return receive


def _allow(request: Request, *methods: str) -> None:
    if request.method not in methods:
        raise NetSuiteError(
            405,
            "INVALID_METHOD",
            f"The HTTP method {request.method} is not allowed for this resource.",
        )
