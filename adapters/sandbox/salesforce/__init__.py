"""Simulated Salesforce (CRM): OAuth, SOQL, sObjects, upsert, sObject Collections, limits.

``create_vendor(clock=…, seed=…, credentials=…, daily_api_limit=100_000,
session_timeout_s=7200, max_version=66.0)`` builds the vendor. Admin extras under
``/_sandbox/``:

- ``POST /_sandbox/sessions/expire`` — body ``{}`` (all sessions) or ``{"token": "…"}``:
  the next data call with that token answers 401 ``INVALID_SESSION_ID``;
- ``GET /_sandbox/api-usage`` — ``{"used", "limit"}``; ``POST /_sandbox/api-usage/reset``.
"""

from __future__ import annotations

from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..clock import SandboxClock
from ..vendor import Vendor
from .app import DEFAULT_CREDENTIALS, SalesforceApp
from .errors import SalesforceError as SalesforceError
from .errors import SalesforceErrors as SalesforceErrors
from .state import SalesforceState as SalesforceState


def create_vendor(
    *,
    clock: SandboxClock,
    seed: int = 0,
    credentials: dict[str, str] | None = None,
    daily_api_limit: int = 100_000,
    session_timeout_s: float = 7200.0,
    max_version: float = 66.0,
    **options: Any,
) -> Vendor:
    """The simulated Salesforce org; unknown ``options`` are ignored."""
    state = SalesforceState(clock, seed=seed)
    app = SalesforceApp(
        state,
        clock,
        credentials={**DEFAULT_CREDENTIALS, **(credentials or {})},
        daily_api_limit=daily_api_limit,
        session_timeout_s=session_timeout_s,
        max_version=max_version,
    )

    async def expire_sessions(request: Request) -> Response:
        raw = await request.body()
        body = msgspec.json.decode(raw) if raw else {}
        token = body.get("token") if isinstance(body, dict) else None
        return JSONResponse({"expired": app.expire_sessions(token)})

    async def api_usage(request: Request) -> Response:
        return JSONResponse({"used": app.quota.used, "limit": app.quota.limit})

    async def reset_api_usage(request: Request) -> Response:
        app.quota.reset()
        return JSONResponse({"used": 0, "limit": app.quota.limit})

    return Vendor(
        name="salesforce",
        state=state,
        errors=SalesforceErrors(app.limit_info),
        app=app,
        admin_routes=[
            Route("/sessions/expire", expire_sessions, methods=["POST"]),
            Route("/api-usage", api_usage, methods=["GET"]),
            Route("/api-usage/reset", reset_api_usage, methods=["POST"]),
        ],
        credentials={
            "token URL": "/services/oauth2/token (grant_type=client_credentials)",
            "client_id": app.credentials["client_id"],
            "client_secret": app.credentials["client_secret"],
        },
    )
