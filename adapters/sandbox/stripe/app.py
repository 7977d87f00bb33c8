"""The simulated Stripe API (``/v1/…``) as an ASGI app.

Request pipeline, in Stripe's order: ``Request-Id`` assigned (on every response) →
API key checked (401) → rate limiter (429, before idempotency, so never cached) →
parameters parsed (400 for malformed keys) → idempotency layer (POST with
``Idempotency-Key``) → handler.

Idempotency, as Stripe documents it: the first POST with a key
stores its status and body once the endpoint starts executing and is replayed for the
same key and the same method, path and parameters, with ``Idempotent-Replayed: true``
and ``Original-Request: <req id>``; the same key with different parameters is 400
``idempotency_error``; a request arriving while one with the same key is still running
is 409 (``idempotency_key_in_use``, type ``idempotency_error``, with
``Stripe-Should-Retry: true``). Parameter validation failures and 404s are not stored
(retry with the same key once fixed); state-transition refusals, card errors (402) and
500s are. Keys are scoped per API key and expire 24 hours (sandbox clock) after first
use; then the key runs as a new request. Keys longer than 255 characters are 400.

``request_hook`` (async, taking the Starlette request) is awaited after the idempotency
key is registered and before the handler runs — tests use it to keep a request in flight.
"""

from __future__ import annotations

import base64
import json
import random
import string
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from ..clock import SandboxClock
from ..limits import TokenBucket
from . import search
from .errors import StripeError, api_error, invalid, no_such, rate_limited
from .forms import parse_form, parse_pairs
from .params import Params
from .routes import build_routes
from .state import PREFIX, StripeState, public

RequestHook = Callable[[Request], Awaitable[None]]
IDEMPOTENCY_TTL_S = 24 * 3600
_KIND_OF_PREFIX = {prefix: kind for kind, prefix in PREFIX.items()}
_SEARCH_FIELDS = {
    "customer": {"email", "name", "phone", "created", "metadata"},
    "invoice": {
        "customer",
        "status",
        "number",
        "total",
        "currency",
        "created",
        "subscription",
        "metadata",
    },
    "subscription": {"status", "customer", "created", "metadata"},
    "product": {"name", "active", "description", "created", "metadata"},
    "price": {"product", "currency", "active", "lookup_key", "type", "created", "metadata"},
}
_PLURAL = {
    "customer": "customers",
    "product": "products",
    "price": "prices",
    "subscription": "subscriptions",
    "invoiceitem": "invoiceitems",
    "invoice": "invoices",
    "event": "events",
}


@dataclass
class _Stored:
    fingerprint: str
    created_at: float
    request_id: str
    in_flight: bool = True
    status: int = 0
    body: bytes = b""


class StripeApp:
    """ASGI app for ``/v1`` (see the module docstring for the pipeline)."""

    def __init__(
        self,
        state: StripeState,
        clock: SandboxClock,
        *,
        api_key: str,
        rate_limit_per_s: float = 25.0,
        rate_burst: int | None = None,
        request_hook: RequestHook | None = None,
        seed: int = 0,
    ) -> None:
        self.state = state
        self.clock = clock
        self.api_key = api_key
        self.bucket = TokenBucket(
            rate_limit_per_s, rate_burst or max(1, int(rate_limit_per_s)), clock
        )
        self.request_hook = request_hook
        self.idempotency: dict[tuple[str, str], _Stored] = {}
        self._random = random.Random(f"requests-{seed}")
        self._routes = build_routes(self)

    # ----------------------------------------------------------------- pipeline

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        request_id = "req_" + "".join(self._random.choices(_ALPHANUMERIC, k=14))
        try:
            response = await self._handle(request, request_id)
        except StripeError as error:
            response = error.response()
        response.headers["Request-Id"] = request_id
        response.headers["Stripe-Version"] = request.headers.get(
            "stripe-version", self.state.api_version
        )
        await response(scope, receive, send)

    async def _handle(self, request: Request, request_id: str) -> Response:
        key = self._authenticate(request)
        wait = self.bucket.try_acquire()
        if wait is not None:
            raise rate_limited()
        handler, path_args = self._route(request)
        params = await self._params(request)
        idempotency_key = request.headers.get("idempotency-key")
        if request.method != "POST" or not idempotency_key:
            return await self._run(request, handler, path_args, params, request_id, None)
        if len(idempotency_key) > 255:
            raise invalid(
                "Idempotency-Key must be at most 255 characters long.",
                code="idempotency_key_invalid",
            ) from None
        slot = (key, idempotency_key)
        fingerprint = json.dumps([request.method, request.url.path, params], sort_keys=True)
        now = self.clock.now()
        stored = self.idempotency.get(slot)
        if stored is not None and now - stored.created_at >= IDEMPOTENCY_TTL_S:
            del self.idempotency[slot]
            stored = None
        if stored is not None:
            if stored.in_flight:
                raise StripeError(
                    409,
                    "There is currently another in-progress request using this Idempotent "
                    f"Key (that probably means you submitted twice, and the other request is "
                    f"still going through): {idempotency_key}. Please try again later.",
                    type_="idempotency_error",
                    code="idempotency_key_in_use",
                    headers={"Stripe-Should-Retry": "true"},
                )
            if stored.fingerprint != fingerprint:
                raise StripeError(
                    400,
                    "Keys for idempotent requests can only be used with the same parameters "
                    "they were first used with. Try using a key other than "
                    f"'{idempotency_key}' if you meant to execute a different request.",
                    type_="idempotency_error",
                )
            return Response(
                stored.body,
                status_code=stored.status,
                media_type="application/json",
                headers={"Idempotent-Replayed": "true", "Original-Request": stored.request_id},
            )
        stored = _Stored(fingerprint=fingerprint, created_at=now, request_id=request_id)
        self.idempotency[slot] = stored
        try:
            try:
                response = await self._run(
                    request, handler, path_args, params, request_id, idempotency_key
                )
            except StripeError as error:
                if not error.cacheable:
                    raise
                response = error.response()
            except Exception:
                # A failure after execution began is stored, as Stripe stores its 500s.
                response = api_error(500).response()
            stored.in_flight = False
            stored.status = response.status_code
            stored.body = bytes(response.body)
        finally:
            if stored.in_flight:  # not stored (validation) or cancelled: forget the key
                del self.idempotency[slot]
        return response

    async def _run(
        self,
        request: Request,
        handler: Callable[..., Any],
        path_args: tuple[str, ...],
        params: dict[str, Any],
        request_id: str,
        idempotency_key: str | None,
    ) -> Response:
        if self.request_hook is not None:
            await self.request_hook(request)
        self.state.request = {"id": request_id, "idempotency_key": idempotency_key}
        try:
            self.state.tick()
            wrapped = Params(params)
            result = handler(wrapped, *path_args)
            wrapped.finish()
            expand = wrapped.data.get("expand") or []
            if isinstance(expand, str):
                expand = [expand]
            body = self._expand(result, expand)
        finally:
            self.state.request = {"id": None, "idempotency_key": None}
        return JSONResponse(body)

    def _authenticate(self, request: Request) -> str:
        header = request.headers.get("authorization", "")
        scheme, _, credential = header.partition(" ")
        key = ""
        if scheme.lower() == "bearer":
            key = credential.strip()
        elif scheme.lower() == "basic":
            try:
                key = base64.b64decode(credential).decode().partition(":")[0]
            except (ValueError, UnicodeDecodeError):
                key = ""
        if not key:
            raise StripeError(
                401,
                "You did not provide an API key. You need to provide your API key in the "
                "Authorization header, using Bearer auth (e.g. 'Authorization: Bearer "
                "YOUR_SECRET_KEY'). See https://stripe.com/docs/api#authentication for "
                "details, or we can help at https://support.stripe.com/.",
                headers={"WWW-Authenticate": 'Basic realm="Stripe"'},
            )
        if key != self.api_key:
            shown = key[:8] + "*" * max(0, len(key) - 12) + key[-4:] if len(key) > 12 else key
            raise StripeError(
                401,
                f"Invalid API Key provided: {shown}",
                headers={"WWW-Authenticate": 'Basic realm="Stripe"'},
            )
        return key

    def _route(self, request: Request) -> tuple[Callable[..., Any], tuple[str, ...]]:
        path = request.url.path
        for method, pattern, handler in self._routes:
            match = pattern.fullmatch(path)
            if match is not None and method == request.method:
                return handler, match.groups()
        # Stripe answers an unknown path and a wrong method on a known one alike.
        raise StripeError(
            404,
            f"Unrecognized request URL ({request.method}: {path}). Please see "
            "https://stripe.com/docs or we can help at https://support.stripe.com/.",
        )

    async def _params(self, request: Request) -> dict[str, Any]:
        pairs = parse_pairs(request.url.query)
        if request.method == "POST":
            content_type = request.headers.get("content-type", "")
            body = (await request.body()).decode("utf-8", errors="replace")
            if body and "json" in content_type:
                raise invalid(
                    "Invalid request: Stripe's API takes application/x-www-form-urlencoded "
                    "bodies, not JSON."
                )
            pairs += parse_pairs(body)
        return parse_form(pairs)

    # ----------------------------------------------------------------- rendering

    def _expand(self, result: Any, paths: list[str]) -> Any:
        body = _public_deep(result)
        for path in paths:
            if not isinstance(path, str):
                raise invalid("Invalid expand: expected strings.", "expand")
            if path == "total_count":
                continue
            body = self._expand_path(body, path.split("."), path)
        return body

    def _expand_path(self, node: Any, parts: list[str], full: str) -> Any:
        if not parts or not isinstance(node, dict):
            return node
        head, rest = parts[0], parts[1:]
        if head not in node:
            raise invalid(f"This property cannot be expanded ({full}).", "expand")
        value = node[head]
        if head == "data" and isinstance(value, list):
            node[head] = [self._expand_path(item, rest, full) for item in value]
            return node
        if isinstance(value, str) and "_" in value:
            kind = _KIND_OF_PREFIX.get(value.split("_", 1)[0])
            if kind is None or kind not in self.state.objects:
                raise invalid(f"This property cannot be expanded ({full}).", "expand")
            target = self.state.objects[kind].get(value)
            value = _public_deep(target) if target is not None else value
        node[head] = self._expand_path(value, rest, full)
        return node

    # ----------------------------------------------------------------- lists

    def list_response(
        self, params: Params, kind: str, keep: Callable[[dict], bool] | None = None
    ) -> dict[str, Any]:
        limit = params.int("limit", minimum=1, maximum=100) or 10
        after = params.str("starting_after")
        before = params.str("ending_before")
        if after and before:
            raise invalid(
                "You may only specify one of these parameters: ending_before, starting_after.",
                "ending_before",
            )
        created = _created_filter(params)
        # Invoice items carry their timestamp as `date`, every other object as `created`.
        stamp = "date" if kind == "invoiceitem" else "created"
        items = self.state.select(
            kind, lambda obj: (keep is None or keep(obj)) and created(obj[stamp])
        )
        cursor_id = after or before
        if cursor_id:
            cursor = self.state.sequence(cursor_id)
            if cursor == 0:
                raise no_such(kind, cursor_id, "starting_after" if after else "ending_before")
            if after:
                rest = [obj for obj in items if self.state.sequence(obj["id"]) < cursor]
                page, has_more = rest[:limit], len(rest) > limit
            else:
                newer = [obj for obj in items if self.state.sequence(obj["id"]) > cursor]
                page, has_more = newer[-limit:], len(newer) > limit
        else:
            page, has_more = items[:limit], len(items) > limit
        return {
            "object": "list",
            "data": page,
            "has_more": has_more,
            "url": f"/v1/{_PLURAL[kind]}",
        }

    def search_response(self, params: Params, kind: str) -> dict[str, Any]:
        query = params.str("query", required=True) or ""
        test = search.matcher(query, _SEARCH_FIELDS[kind])
        limit = params.int("limit", minimum=1, maximum=100) or 10
        page_token = params.str("page")
        offset = 0
        if page_token:
            try:
                offset = int(base64.urlsafe_b64decode(page_token.encode()).decode())
            except ValueError:
                raise invalid("Invalid page token.", "page") from None
        found = self.state.select(kind, lambda obj: self.state.searchable(obj) and test(obj))
        page = found[offset : offset + limit]
        has_more = offset + limit < len(found)
        next_page = (
            base64.urlsafe_b64encode(str(offset + limit).encode()).decode() if has_more else None
        )
        body: dict[str, Any] = {
            "object": "search_result",
            "data": page,
            "has_more": has_more,
            "next_page": next_page,
            "url": f"/v1/{_PLURAL[kind]}/search",
        }
        expand = params.data.get("expand") or []
        if "total_count" in expand:
            body["total_count"] = len(found)
        return body


_ALPHANUMERIC = string.ascii_letters + string.digits


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def _public_deep(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _public_deep(v) for k, v in public(value).items()}
    if isinstance(value, list):
        return [_public_deep(item) for item in value]
    return value


def _created_filter(params: Params) -> Callable[[int], bool]:
    raw = params.raw("created")
    if raw is None:
        return lambda created: True
    if isinstance(raw, str):
        exact = Params({"created": raw}).int("created")
        return lambda created: created == exact
    bounds = Params(raw, "created")
    gt, gte = bounds.int("gt"), bounds.int("gte")
    lt, lte = bounds.int("lt"), bounds.int("lte")
    bounds.finish()
    return lambda created: (
        (gt is None or created > gt)
        and (gte is None or created >= gte)
        and (lt is None or created < lt)
        and (lte is None or created <= lte)
    )
