"""Error classification, done once for every system: what a response or exception means.

:class:`ErrorSignals` holds the generic HTTP rules (429 throttled, 5xx and 408 retryable,
401 unauthorized, other 4xx permanent) and the hooks a vendor overrides to read its own
error bodies and limit signals; the vendor strategies live in :mod:`adapters.signals`.
"""

from __future__ import annotations

import email.utils
import enum
import math
from collections.abc import Callable
from typing import TYPE_CHECKING

import httpx
import msgspec

from actors.errors import RetryableError

if TYPE_CHECKING:
    from .governor import Governor

# Vendor messages end up in exception text and logs; a page of HTML helps nobody.
# Cut only after redaction: a cut secret no longer matches what the redactor looks for.
MAX_MESSAGE_CHARS = 300
MAX_RETRY_AFTER_S = 86_400.0


class Outcome(enum.Enum):
    """What the HTTP layer should do with a response."""

    OK = "ok"
    RETRY = "retry"
    THROTTLE = "throttle"
    UNAUTHORIZED = "unauthorized"
    PERMANENT = "permanent"


class Verdict(msgspec.Struct, frozen=True, kw_only=True):
    """The classification of one response."""

    outcome: Outcome
    status: int
    code: str = ""
    message: str = ""
    retry_after_s: float | None = None


def parse_retry_after(value: str | None, *, now_epoch: float) -> float | None:
    """Seconds to wait from a Retry-After value: delay-seconds or an HTTP-date.

    ``now_epoch`` is the reference for an HTTP-date; callers pass the response's own
    ``Date`` when it has one so that our clock's skew does not matter.
    """
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = email.utils.parsedate_to_datetime(value).timestamp() - now_epoch
        except (TypeError, ValueError):
            return None
    if not math.isfinite(seconds):  # "inf" and "nan" parse as floats
        return None
    # A pause stops every request of the system; a garbled date must not stop it for years.
    return min(max(0.0, seconds), MAX_RETRY_AFTER_S)


def _http_date_epoch(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None


class _GenericError(msgspec.Struct):
    error: str | dict[str, object] = ""
    error_description: str = ""
    message: str = ""


class ErrorSignals:
    """Generic classification; a vendor subclasses it and overrides the hooks.

    Hooks: :meth:`error_detail` (vendor code and message from the body), :meth:`outcome`
    (status and code to :class:`Outcome`) and :meth:`observe` (limit headers on every
    response). ``idempotency_header`` names the vendor's idempotency-key header, if any.
    """

    vendor = "generic"
    idempotency_header: str | None = None

    def classify(self, response: httpx.Response, *, now_epoch: float) -> Verdict:
        """Classify ``response``; ``now_epoch`` is the wall clock, for HTTP-dates."""
        status = response.status_code
        if status < 400:
            return Verdict(outcome=Outcome.OK, status=status)
        code, message = self.error_detail(response)
        reference = _http_date_epoch(response.headers.get("Date")) or now_epoch
        retry_after = parse_retry_after(response.headers.get("Retry-After"), now_epoch=reference)
        outcome = self.outcome(status, code, response)
        # A 503 that says when to come back is a throttle in all but name.
        if outcome is Outcome.RETRY and retry_after is not None:
            outcome = Outcome.THROTTLE
        return Verdict(
            outcome=outcome,
            status=status,
            code=code,
            message=message,
            retry_after_s=retry_after if outcome is Outcome.THROTTLE else None,
        )

    def outcome(self, status: int, code: str, response: httpx.Response) -> Outcome:
        """Map an error status (and vendor code) to an outcome."""
        if status == 429:
            return Outcome.THROTTLE
        if status == 401:
            return Outcome.UNAUTHORIZED
        if status in (408, 425) or (status >= 500 and status not in (501, 505)):
            return Outcome.RETRY
        return Outcome.PERMANENT

    def error_detail(self, response: httpx.Response) -> tuple[str, str]:
        """The vendor's error code and message, ``("", reason)`` if the body has none."""
        try:
            body = msgspec.json.decode(response.content, type=_GenericError)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return "", response.reason_phrase
        if isinstance(body.error, dict):
            code = str(body.error.get("code") or body.error.get("type") or "")
            return code, str(body.error.get("message") or response.reason_phrase)
        return body.error, body.error_description or body.message or response.reason_phrase

    def observe(self, response: httpx.Response, governor: Governor) -> None:
        """Feed limit headers of any response (success or not) to the governor."""


# Failures where the request never left this process, so even a POST may be repeated.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.ProxyError)


def transport_error(
    exc: httpx.TransportError, *, system: str, redact: Callable[[str], str]
) -> RetryableError:
    """Translate any httpx transport failure; raise the result ``from exc``.

    Every member of the ``httpx.TransportError`` tree is retryable here, including
    ``UnsupportedProtocol`` and ``LocalProtocolError``, which are really configuration or
    programming errors: bounded attempts keep that cheap.
    """
    return RetryableError(
        redact(f"{type(exc).__name__}: {exc}"), system=system, code=type(exc).__name__
    )


def request_may_have_been_sent(exc: BaseException | None) -> bool:
    """Whether the vendor may have seen the request (so a repeat may duplicate it)."""
    return not isinstance(exc, _NOT_SENT)
