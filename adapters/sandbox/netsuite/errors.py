"""NetSuite REST error bodies (RFC 9457-style problem details with ``o:errorDetails``).

Every error the simulated NetSuite returns has the shape Oracle documents::

    {"type": "https://www.rfc-editor.org/rfc/rfc9110.html#section-15.5.1",
     "title": "Bad Request", "status": 400,
     "o:errorDetails": [{"detail": "...", "o:errorPath": "subsidiary",
                         "o:errorCode": "INVALID_CONTENT"}]}

The ``type``/``title`` members are from memory (reference/systems.md §4 marks them so).
The ``o:errorCode`` on the REST 429 for exceeded concurrency is unconfirmed upstream; the
sandbox uses ``CONCURRENCY_LIMIT_EXCEEDED`` and clients should key on the status code.

The M2M token endpoint (``/services/rest/auth/oauth2/v1/token``) answers in OAuth 2.0 form
(see :mod:`.m2m`), so its injected faults do too — all **assumed**, nothing here is
documented by Oracle: a throttle is **429** (the status NetSuite's REST services use for
exceeded concurrency) with ``{"error": "temporarily_unavailable", "error_description":
…}``; a 5xx carries ``"temporarily_unavailable"`` (503) or ``"server_error"``, RFC 6749's
names for these failures (§4.1.2.1). Clients should key on the status code.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse, Response

from .m2m import TOKEN_PATH

_TYPES = {
    400: ("https://www.rfc-editor.org/rfc/rfc9110.html#section-15.5.1", "Bad Request"),
    401: ("https://www.rfc-editor.org/rfc/rfc9110.html#section-15.5.2", "Unauthorized"),
    403: ("https://www.rfc-editor.org/rfc/rfc9110.html#section-15.5.4", "Forbidden"),
    404: ("https://www.rfc-editor.org/rfc/rfc9110.html#section-15.5.5", "Not Found"),
    405: ("https://www.rfc-editor.org/rfc/rfc9110.html#section-15.5.6", "Method Not Allowed"),
    415: ("https://www.rfc-editor.org/rfc/rfc9110.html#section-15.5.16", "Unsupported Media Type"),
    429: ("https://www.rfc-editor.org/rfc/rfc6585.html#section-4", "Too Many Requests"),
    500: ("https://www.rfc-editor.org/rfc/rfc9110.html#section-15.6.1", "Internal Server Error"),
    502: ("https://www.rfc-editor.org/rfc/rfc9110.html#section-15.6.3", "Bad Gateway"),
    503: ("https://www.rfc-editor.org/rfc/rfc9110.html#section-15.6.4", "Service Unavailable"),
    504: ("https://www.rfc-editor.org/rfc/rfc9110.html#section-15.6.5", "Gateway Timeout"),
}

LOGIN_DETAIL = (
    "Invalid login attempt. For more details, see the Login Audit Trail in the NetSuite UI "
    "at Setup > Users/Roles > User Management > View Login Audit Trail."
)
CONCURRENCY_DETAIL = "Concurrent request limit exceeded. Request blocked."


class NetSuiteError(Exception):
    """Raised by handlers; rendered by the app as a NetSuite error response."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        path: str | None = None,
        query_param: str | None = None,
        header: str | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {detail}")
        self.status = status
        self.code = code
        self.detail = detail
        self.path = path
        self.query_param = query_param
        self.header = header

    def body(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"detail": self.detail}
        if self.path is not None:
            entry["o:errorPath"] = self.path
        if self.query_param is not None:
            entry["o:errorQueryParam"] = self.query_param
        if self.header is not None:
            entry["o:errorHeader"] = self.header
        entry["o:errorCode"] = self.code
        return error_body(self.status, [entry])

    def response(self) -> Response:
        return error_response(self.status, self.body())


def invalid_content(detail: str, path: str | None = None) -> NetSuiteError:
    return NetSuiteError(400, "INVALID_CONTENT", detail, path=path)


def error_body(status: int, details: list[dict[str, Any]]) -> dict[str, Any]:
    type_uri, title = _TYPES.get(status, _TYPES[500])
    return {"type": type_uri, "title": title, "status": status, "o:errorDetails": details}


def error_response(
    status: int, body: dict[str, Any], headers: dict[str, str] | None = None
) -> Response:
    return JSONResponse(
        body,
        status_code=status,
        headers=headers,
        media_type="application/vnd.oracle.resource+json; type=error",
    )


def login_failed() -> Response:
    return NetSuiteError(401, "INVALID_LOGIN_ATTEMPT", LOGIN_DETAIL).response()


def concurrency_exceeded(retry_after_s: float | None = None) -> Response:
    """The REST 429 (errorCode unconfirmed upstream, see the module docstring)."""
    body = error_body(
        429, [{"detail": CONCURRENCY_DETAIL, "o:errorCode": "CONCURRENCY_LIMIT_EXCEEDED"}]
    )
    headers = None
    if retry_after_s is not None:
        headers = {"Retry-After": str(max(1, round(retry_after_s)))}
    return error_response(429, body, headers)


def token_error(
    status: int, error: str, description: str, headers: dict[str, str] | None = None
) -> Response:
    """An OAuth 2.0 error answer of the M2M token endpoint (RFC 6749 §5.2)."""
    body = {"error": error, "error_description": description}
    no_store = {"Cache-Control": "no-store", "Pragma": "no-cache"}
    return JSONResponse(body, status_code=status, headers={**no_store, **(headers or {})})


class NetSuiteErrors:
    """:class:`~adapters.sandbox.vendor.VendorErrors` in NetSuite's shape, and
    :class:`~adapters.sandbox.vendor.TokenEndpointErrors` for the M2M token endpoint.

    NetSuite's own 429 carries no ``Retry-After``; the fault injector may ask for one,
    and then it is sent (whole seconds, at least 1).
    """

    token_paths = frozenset({TOKEN_PATH})

    def throttled(self, retry_after_s: float | None) -> Response:
        return concurrency_exceeded(retry_after_s)

    def server_error(self, status: int) -> Response:
        detail = "An unexpected error occurred. Error ID: sandbox-injected"
        body = error_body(status, [{"detail": detail, "o:errorCode": "UNEXPECTED_ERROR"}])
        return error_response(status, body)

    def token_throttled(self, retry_after_s: float | None) -> Response:
        headers = None
        if retry_after_s is not None:
            headers = {"Retry-After": str(max(1, round(retry_after_s)))}
        return token_error(429, "temporarily_unavailable", CONCURRENCY_DETAIL, headers)

    def token_server_error(self, status: int) -> Response:
        if status == 503:
            return token_error(503, "temporarily_unavailable", "Service temporarily unavailable")
        return token_error(status, "server_error", "An unexpected error occurred")
