"""Salesforce error bodies and the sandbox's throttle and 5xx shapes.

Top-level errors are a JSON array ``[{"message", "errorCode", "fields"?}]``; per-record
results in sObject Collections use ``statusCode`` instead of ``errorCode``.

Throttle choice: Salesforce REST does not normally answer 429 (systems.md §1, Limits), so
an injected throttle is what the vendor sends when its limits are exhausted: **403** with
``REQUEST_LIMIT_EXCEEDED`` and the message Salesforce uses for the concurrent long-running
request limit ("ConcurrentRequests (Concurrent API Requests) Limit exceeded."). No
Retry-After header is sent unless a retry delay is configured, because Salesforce sends none.

The OAuth endpoints (``/services/oauth2/token`` and ``/revoke``) answer in OAuth 2.0 form,
``{"error", "error_description"}``, never with the data API's array. Their fault shapes:

- throttle: **400** ``{"error": "rate_limit_exceeded", "error_description": "Number of
  logins exceeded"}``. The code and text are from Salesforce's list of OAuth flow errors
  (help.salesforce.com, "OAuth 2.0 User-Agent Flow": ``rate_limit_exceeded — Number of
  logins exceeded``; third parties quote the same list for the token endpoint) and the
  login rate limit KB article 000381578 (3,600 logins per user per hour,
  ``LOGIN_RATE_EXCEEDED``). The **status 400 is an assumption**: the list gives none, and
  RFC 6749 §5.2 makes token-endpoint errors 400. No Retry-After unless configured.
- 5xx: the configured status with ``{"error": "temporarily_unavailable"}`` (503) or
  ``"server_error"`` (others). **Assumed**: what Salesforce's token endpoint sends during
  an outage is not documented; the codes are RFC 6749's names for these failures
  (§4.1.2.1). Clients must decide on the status, not on this body.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse, Response


class SalesforceError(Exception):
    """A failure the simulated org reports with ``status`` and an ``errorCode``."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        fields: list[str] | tuple[str, ...] = (),
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.fields = list(fields)

    def body(self) -> list[dict[str, Any]]:
        entry: dict[str, Any] = {"message": self.message, "errorCode": self.code}
        if self.fields:
            entry["fields"] = self.fields
        return [entry]

    def record_error(self) -> dict[str, Any]:
        """The per-record shape used by sObject Collections results."""
        return {"statusCode": self.code, "message": self.message, "fields": self.fields}

    def response(self, headers: dict[str, str] | None = None) -> Response:
        return JSONResponse(self.body(), status_code=self.status, headers=headers)


def invalid_session() -> SalesforceError:
    return SalesforceError(401, "INVALID_SESSION_ID", "Session expired or invalid")


def request_limit_exceeded() -> SalesforceError:
    return SalesforceError(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")


def not_found() -> SalesforceError:
    return SalesforceError(404, "NOT_FOUND", "The requested resource does not exist")


def malformed_query(message: str) -> SalesforceError:
    return SalesforceError(400, "MALFORMED_QUERY", message)


_SERVER_ERRORS = {
    500: (
        "UNKNOWN_EXCEPTION",
        "An unexpected error occurred. Please include this ErrorId if you contact support: "
        "1234567890-12345 (-1234567890)",
    ),
    502: ("SERVER_UNAVAILABLE", "Bad gateway"),
    503: ("SERVER_UNAVAILABLE", "Server is unavailable. Please try again later."),
    504: ("REQUEST_RUNNING_TOO_LONG", "Your request was running for too long"),
}


#: The OAuth endpoints, as paths; the app routes the trailing-slash form the same way.
OAUTH_PATHS = frozenset(
    {
        "/services/oauth2/token",
        "/services/oauth2/token/",
        "/services/oauth2/revoke",
        "/services/oauth2/revoke/",
    }
)
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def oauth_error(status: int, error: str, description: str) -> Response:
    """An OAuth 2.0 error answer of the token endpoint (RFC 6749 §5.2)."""
    body = {"error": error, "error_description": description}
    return JSONResponse(body, status_code=status, headers=dict(_NO_STORE))


class SalesforceErrors:
    """:class:`~adapters.sandbox.vendor.VendorErrors` and
    :class:`~adapters.sandbox.vendor.TokenEndpointErrors` for Salesforce."""

    token_paths = OAUTH_PATHS

    def __init__(self, usage: Any = None) -> None:
        # ``usage`` returns the current Sforce-Limit-Info value (or None before any call).
        self._usage = usage

    def _headers(self) -> dict[str, str]:
        value = self._usage() if self._usage is not None else None
        return {"Sforce-Limit-Info": value} if value else {}

    def throttled(self, retry_after_s: float | None) -> Response:
        error = SalesforceError(
            403,
            "REQUEST_LIMIT_EXCEEDED",
            "ConcurrentRequests (Concurrent API Requests) Limit exceeded.",
        )
        headers = self._headers()
        if retry_after_s is not None:
            headers["Retry-After"] = str(max(1, round(retry_after_s)))
        return error.response(headers)

    def server_error(self, status: int) -> Response:
        code, message = _SERVER_ERRORS.get(status, _SERVER_ERRORS[500])
        return SalesforceError(status, code, message).response(self._headers())

    def token_throttled(self, retry_after_s: float | None) -> Response:
        response = oauth_error(400, "rate_limit_exceeded", "Number of logins exceeded")
        if retry_after_s is not None:
            response.headers["Retry-After"] = str(max(1, round(retry_after_s)))
        return response

    def token_server_error(self, status: int) -> Response:
        if status == 503:
            return oauth_error(503, "temporarily_unavailable", "Service temporarily unavailable")
        return oauth_error(status, "server_error", "An unexpected error occurred")
