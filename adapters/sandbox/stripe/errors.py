"""Stripe error bodies and the throttle/5xx shapes the fault injector uses.

Every error is ``{"error": {"type", "code", "message", "param", "doc_url"}}`` (members
without a value are left out, as Stripe does) and, like every response, carries a
``Request-Id`` header (added by the app).

Retry signalling, decided from the official libraries' behaviour: stripe-python,
-ruby, -go and -php retry a 429 only when its code is ``lock_timeout`` unless
``Stripe-Should-Retry`` says otherwise, so Stripe's rate-limit 429 evidently does not say
``Stripe-Should-Retry: true``. The sandbox therefore sends *no* ``Stripe-Should-Retry``
on a ``rate_limit`` 429 (clients decide from the status; pssync backs off) and sends
``Stripe-Should-Retry: true`` on every 5xx and on the 409 of a concurrent idempotent
request. Stripe documents no ``Retry-After``; one is sent only when the fault injector
is configured with ``retry_after_s``.
"""

from __future__ import annotations

import random
import string
from typing import Any

from starlette.responses import JSONResponse, Response

DOCS = "https://stripe.com/docs/error-codes/"


class StripeError(Exception):
    """Raised by handlers; rendered as a Stripe error response.

    ``cacheable`` says whether an idempotent request that ended in this error stores its
    result (Stripe saves results only once an endpoint started executing: validation
    failures are not saved).
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type_: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        cacheable: bool = False,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type_
        self.code = code
        self.param = param
        self.cacheable = cacheable
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {}
        if self.code:
            error["code"] = self.code
            error["doc_url"] = DOCS + self.code.replace("_", "-")
        error["message"] = self.message
        if self.param:
            error["param"] = self.param
        error["type"] = self.type
        return {"error": error}

    def response(self) -> Response:
        return JSONResponse(self.body(), status_code=self.status, headers=self.headers)


def invalid(message: str, param: str | None = None, code: str | None = None) -> StripeError:
    return StripeError(400, message, param=param, code=code)


def missing_param(param: str) -> StripeError:
    return invalid(f"Missing required param: {param}.", param, "parameter_missing")


def unknown_param(param: str) -> StripeError:
    return invalid(f"Received unknown parameter: {param}", param, "parameter_unknown")


def no_such(kind: str, object_id: str, param: str | None = "id") -> StripeError:
    return StripeError(404, f"No such {kind}: '{object_id}'", code="resource_missing", param=param)


def rate_limited(retry_after_s: float | None = None) -> StripeError:
    headers = {}
    if retry_after_s is not None:
        headers["Retry-After"] = str(max(1, round(retry_after_s)))
    return StripeError(
        429,
        "Request rate limit exceeded. You can learn more about rate limits here "
        "https://stripe.com/docs/rate-limits.",
        code="rate_limit",
        headers=headers,
    )


def api_error(status: int) -> StripeError:
    return StripeError(
        status,
        "An unknown error occurred while processing your request. Please retry.",
        type_="api_error",
        headers={"Stripe-Should-Retry": "true"},
        cacheable=True,
    )


class StripeErrors:
    """:class:`~adapters.sandbox.vendor.VendorErrors` in Stripe's shape.

    These responses are produced outside the app (by the fault injector), so they get
    their own ``Request-Id`` here.
    """

    def __init__(self, seed: int = 0) -> None:
        self._random = random.Random(f"fault-requests-{seed}")

    def _stamp(self, response: Response) -> Response:
        suffix = "".join(self._random.choices(string.ascii_letters + string.digits, k=14))
        response.headers["Request-Id"] = f"req_{suffix}"
        return response

    def throttled(self, retry_after_s: float | None) -> Response:
        return self._stamp(rate_limited(retry_after_s).response())

    def server_error(self, status: int) -> Response:
        return self._stamp(api_error(status).response())
