"""Each vendor's own error bodies and limit signals (reference/systems.md §1, §2, §4, §8)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import httpx
import msgspec

from .classify import ErrorSignals, Outcome

if TYPE_CHECKING:
    from .governor import Governor


class _SalesforceError(msgspec.Struct):
    message: str = ""
    errorCode: str = ""  # the vendor's field name


_SFORCE_USAGE = re.compile(r"api-usage=(\d+)/(\d+)")


class SalesforceSignals(ErrorSignals):
    """Salesforce REST: errors are a JSON array; 403 + REQUEST_LIMIT_EXCEEDED is the throttle.

    401 ``INVALID_SESSION_ID`` means the session expired: refresh the token, retry once.
    Every response carries ``Sforce-Limit-Info: api-usage=used/limit`` for the rolling 24 h.
    """

    vendor = "salesforce"

    def error_detail(self, response: httpx.Response) -> tuple[str, str]:
        try:
            errors = msgspec.json.decode(response.content, type=list[_SalesforceError])
        except (msgspec.DecodeError, msgspec.ValidationError):
            return super().error_detail(response)  # the OAuth endpoints' {"error": …}
        if not errors:
            return "", response.reason_phrase
        return errors[0].errorCode, errors[0].message

    def outcome(self, status: int, code: str, response: httpx.Response) -> Outcome:
        if code == "REQUEST_LIMIT_EXCEEDED":
            return Outcome.THROTTLE
        return super().outcome(status, code, response)

    def observe(self, response: httpx.Response, governor: Governor) -> None:
        match = _SFORCE_USAGE.search(response.headers.get("Sforce-Limit-Info", ""))
        if match:
            governor.observe_usage(int(match.group(1)), int(match.group(2)))


class _KantataError(msgspec.Struct):
    type: str = ""
    message: str = ""


class _KantataErrors(msgspec.Struct):
    errors: list[_KantataError]


class KantataSignals(ErrorSignals):
    """Kantata OX: ``{"errors": [{"type", "message"}]}``; 429 comes without Retry-After.

    A throttle without Retry-After falls back to the client's exponential backoff and the
    governor's rate cut. Tokens do not expire, so a 401 is permanent with a static token.
    """

    vendor = "kantata"

    def error_detail(self, response: httpx.Response) -> tuple[str, str]:
        try:
            body = msgspec.json.decode(response.content, type=_KantataErrors)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return super().error_detail(response)
        if not body.errors:
            return "", response.reason_phrase
        return body.errors[0].type, "; ".join(error.message for error in body.errors)


class _NetSuiteDetail(msgspec.Struct):
    detail: str = ""
    code: str = msgspec.field(default="", name="o:errorCode")


class _NetSuiteError(msgspec.Struct):
    details: list[_NetSuiteDetail] = msgspec.field(default_factory=list, name="o:errorDetails")
    title: str = ""


class NetSuiteSignals(ErrorSignals):
    """NetSuite REST: ``o:errorDetails``; concurrency overflow is 429 (RESTlets: 400 +
    ``SSS_REQUEST_LIMIT_EXCEEDED``).

    401 ``INVALID_LOGIN_ATTEMPT`` is ambiguous: a bad signature or credentials, or — as
    users report — an account flooded past its concurrency limit. It is classified
    UNAUTHORIZED, so the client re-signs (fresh nonce and timestamp) and retries once; a
    second 401 is permanent. The cure for the load case is a governor concurrency cap well
    under the account's limit.
    """

    vendor = "netsuite"

    def error_detail(self, response: httpx.Response) -> tuple[str, str]:
        try:
            body = msgspec.json.decode(response.content, type=_NetSuiteError)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return super().error_detail(response)
        if not body.details:
            return "", body.title or response.reason_phrase
        return body.details[0].code, body.details[0].detail

    def outcome(self, status: int, code: str, response: httpx.Response) -> Outcome:
        if code == "SSS_REQUEST_LIMIT_EXCEEDED":
            return Outcome.THROTTLE
        return super().outcome(status, code, response)


class StripeSignals(ErrorSignals):
    """Stripe: ``{"error": {"type", "code", "message"}}``; ``Stripe-Should-Retry`` decides.

    ``true`` → retry (throttle for a 429), ``false`` → permanent whatever the status,
    absent → the generic status rules. Idempotency keys travel in ``Idempotency-Key``.
    """

    vendor = "stripe"
    idempotency_header = "Idempotency-Key"

    def outcome(self, status: int, code: str, response: httpx.Response) -> Outcome:
        should_retry = response.headers.get("Stripe-Should-Retry", "").strip().lower()
        if should_retry == "false":
            return Outcome.PERMANENT
        if should_retry == "true":
            return Outcome.THROTTLE if status == 429 else Outcome.RETRY
        return super().outcome(status, code, response)
