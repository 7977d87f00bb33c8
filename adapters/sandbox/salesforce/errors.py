"""Salesforce error bodies and the sandbox's throttle and 5xx shapes.

Top-level errors are a JSON array ``[{"message", "errorCode", "fields"?}]``; per-record
results in sObject Collections use ``statusCode`` instead of ``errorCode``.

Throttle choice: Salesforce REST does not normally answer 429 (systems.md §1, Limits), so
an injected throttle is what the vendor sends when its limits are exhausted: **403** with
``REQUEST_LIMIT_EXCEEDED`` and the message Salesforce uses for the concurrent long-running
request limit ("ConcurrentRequests (Concurrent API Requests) Limit exceeded."). No
Retry-After header is sent unless a retry delay is configured, because Salesforce sends none.
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


class SalesforceErrors:
    """:class:`~adapters.sandbox.vendor.VendorErrors` for Salesforce."""

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
