"""The admin view every simulated vendor serves under ``/_sandbox/``.

Routes (JSON in and out; never faulted, never rate-limited, never counted against a
vendor's API budget):

- ``GET  /_sandbox/state``          the vendor state's ``snapshot()``
- ``GET  /_sandbox/counts``         ``{"counts": {type: n}}``
- ``GET  /_sandbox/duplicates``     ``{"duplicates": [{"type", "source_key", "ids"}]}``
- ``GET  /_sandbox/faults``         ``{"config": FaultConfig, "stats": FaultStats}``
- ``PUT|POST /_sandbox/faults``     body: a FaultConfig (unknown fields → 400)
- ``GET  /_sandbox/clock``          ``{"now": epoch_s, "offset_s": s}``
- ``POST /_sandbox/clock/advance``  body ``{"seconds": n}``; the clock is shared by all vendors
- ``POST /_sandbox/persist``        writes the whole sandbox to its persist path (if any)

plus any ``Vendor.admin_routes`` (e.g. Salesforce's token revocation).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from .clock import SandboxClock
from .faults import ADMIN_PREFIX, FaultConfig, FaultInjector, is_admin_path
from .vendor import Vendor


def _bad_request(message: str) -> JSONResponse:
    return JSONResponse({"error": "bad_request", "message": message}, status_code=400)


def admin_app(
    vendor: Vendor,
    injector: FaultInjector,
    clock: SandboxClock,
    *,
    persist: Callable[[], str | None] | None = None,
) -> ASGIApp:
    """A Starlette app serving the admin routes of one vendor (paths include the prefix)."""

    async def state(request: Request) -> Response:
        return JSONResponse(vendor.state.snapshot())

    async def counts(request: Request) -> Response:
        return JSONResponse({"vendor": vendor.name, "counts": vendor.state.counts()})

    async def duplicates(request: Request) -> Response:
        return JSONResponse({"vendor": vendor.name, "duplicates": vendor.state.duplicates()})

    async def faults(request: Request) -> Response:
        if request.method in ("PUT", "POST"):
            try:
                config = msgspec.json.decode(await request.body(), type=FaultConfig)
                injector.configure(config)
            except (msgspec.DecodeError, msgspec.ValidationError, ValueError) as exc:
                return _bad_request(str(exc))
        return JSONResponse(
            {
                "config": msgspec.to_builtins(injector.config),
                "stats": msgspec.to_builtins(injector.stats),
            }
        )

    async def clock_now(request: Request) -> Response:
        return JSONResponse({"now": clock.now(), "offset_s": clock.offset_s})

    async def clock_advance(request: Request) -> Response:
        try:
            body: Any = msgspec.json.decode(await request.body())
            seconds = float(body["seconds"])
            clock.advance(seconds)
        except (msgspec.DecodeError, KeyError, TypeError, ValueError) as exc:
            return _bad_request(f'expected {{"seconds": n}} with n >= 0: {exc}')
        return JSONResponse({"now": clock.now(), "offset_s": clock.offset_s})

    async def persist_now(request: Request) -> Response:
        path = persist() if persist is not None else None
        return JSONResponse({"persisted": path is not None, "path": path})

    routes: list[BaseRoute] = [
        Route("/state", state, methods=["GET"]),
        Route("/counts", counts, methods=["GET"]),
        Route("/duplicates", duplicates, methods=["GET"]),
        Route("/faults", faults, methods=["GET", "PUT", "POST"]),
        Route("/clock", clock_now, methods=["GET"]),
        Route("/clock/advance", clock_advance, methods=["POST"]),
        Route("/persist", persist_now, methods=["POST"]),
        *vendor.admin_routes,
    ]
    return Starlette(routes=[Mount(ADMIN_PREFIX, routes=routes)])


def compose(vendor: Vendor, injector: FaultInjector, admin: ASGIApp) -> ASGIApp:
    """One ASGI app: admin paths to ``admin``, the rest through the faults to the vendor."""
    faulty = injector.wrap(vendor.app)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
        elif scope["type"] == "http" and is_admin_path(scope.get("path", "")):
            await admin(scope, receive, send)
        else:
            await faulty(scope, receive, send)

    return app


async def _lifespan(receive: Receive, send: Send) -> None:
    """The vendors keep no resources, so startup and shutdown are acknowledged at once."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
