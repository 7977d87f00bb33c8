"""Simulated Kantata OX (PSA): workspaces, stories, time, expenses, external references.

``create_vendor(clock=…, seed=…, credentials=…, rate_per_s=10, burst=20,
workspace_rate_per_s=2, workspace_burst=5)``. Admin extras under ``/_sandbox/``:

- ``POST /_sandbox/tokens/revoke`` — body ``{}`` (all) or ``{"token": "…"}``;
- ``POST /_sandbox/time_entries/approve`` — body ``{"ids": [...]}`` (or ``{"all": true}``):
  approves entries the way a timesheet approval would.
"""

from __future__ import annotations

from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..clock import SandboxClock
from ..vendor import Vendor
from .app import DEFAULT_CREDENTIALS, KantataApp
from .errors import KantataError as KantataError
from .errors import KantataErrors as KantataErrors
from .state import KantataState as KantataState


def create_vendor(
    *,
    clock: SandboxClock,
    seed: int = 0,
    credentials: dict[str, str] | None = None,
    rate_per_s: float = 10.0,
    burst: int = 20,
    workspace_rate_per_s: float = 2.0,
    workspace_burst: int = 5,
    **options: Any,
) -> Vendor:
    """The simulated Kantata account; unknown ``options`` are ignored."""
    state = KantataState(clock, seed=seed)
    app = KantataApp(
        state,
        clock,
        credentials={**DEFAULT_CREDENTIALS, **(credentials or {})},
        rate_per_s=rate_per_s,
        burst=burst,
        workspace_rate_per_s=workspace_rate_per_s,
        workspace_burst=workspace_burst,
        seed=seed,
    )

    async def _json_body(request: Request) -> dict[str, Any]:
        raw = await request.body()
        body = msgspec.json.decode(raw) if raw else {}
        return body if isinstance(body, dict) else {}

    async def revoke(request: Request) -> Response:
        token = (await _json_body(request)).get("token")
        revoked = 0
        for key, session in state.tokens.items():
            if token is None or key == token:
                session["revoked"] = True
                revoked += 1
        return JSONResponse({"revoked": revoked})

    async def approve(request: Request) -> Response:
        body = await _json_body(request)
        ids = list(state.tables["time_entries"]) if body.get("all") else body.get("ids", [])
        return JSONResponse({"approved": state.approve([str(i) for i in ids])})

    return Vendor(
        name="kantata",
        state=state,
        errors=KantataErrors(),
        app=app,
        admin_routes=[
            Route("/tokens/revoke", revoke, methods=["POST"]),
            Route("/time_entries/approve", approve, methods=["POST"]),
        ],
        credentials={
            "access_token": app.credentials["access_token"],
            "client_id": app.credentials["client_id"],
            "client_secret": app.credentials["client_secret"],
        },
    )
