"""Kantata OX error bodies.

Shape: ``{"errors": [{"type": "oauth|system|validation", "message": "…", "field": "…"}]}``.

Throttling is a bare **429** with a ``system`` error and no ``Retry-After`` or
``X-RateLimit-*`` headers (systems.md §2: "no headers", "retry after a small delay"); an
injected throttle looks the same even if the fault config names a retry delay, because
Kantata would not send one.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse, Response


class KantataError(Exception):
    """A failure rendered as Kantata's error envelope."""

    def __init__(self, status: int, errors: list[dict[str, Any]]) -> None:
        super().__init__(f"{status}: {errors}")
        self.status = status
        self.errors = errors

    def response(self) -> Response:
        return JSONResponse({"errors": self.errors}, status_code=self.status)


def validation(
    message: str, field: str | None = None, *, index: int | None = None
) -> dict[str, Any]:
    error: dict[str, Any] = {"type": "validation", "message": message}
    if field is not None:
        error["field"] = field
    if index is not None:
        error["index"] = index
    return error


def unauthorized() -> KantataError:
    return KantataError(401, [{"type": "oauth", "message": "Invalid OAuth 2 Request"}])


def not_found() -> KantataError:
    return KantataError(404, [{"type": "system", "message": "Not Found"}])


def bad_request(message: str) -> KantataError:
    return KantataError(400, [{"type": "system", "message": message}])


def rate_limited() -> KantataError:
    return KantataError(
        429,
        [{"type": "system", "message": "Rate limit exceeded. Please retry after a small delay."}],
    )


_MESSAGES = {
    500: "Something went wrong on our end. Please try again.",
    502: "Bad Gateway",
    503: "Service Unavailable. Please try again later.",
    504: "Gateway Timeout",
}


class KantataErrors:
    """:class:`~adapters.sandbox.vendor.VendorErrors` for Kantata."""

    def throttled(self, retry_after_s: float | None) -> Response:
        return rate_limited().response()

    def server_error(self, status: int) -> Response:
        message = _MESSAGES.get(status, _MESSAGES[500])
        return KantataError(status, [{"type": "system", "message": message}]).response()
