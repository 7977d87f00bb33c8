"""The contract between the sandbox and each simulated vendor.

Each vendor subpackage (``adapters.sandbox.salesforce``, ``.kantata``, ``.netsuite``,
``.stripe``) exports::

    def create_vendor(*, clock: SandboxClock, seed: int = 0, **options) -> Vendor

``app`` is the raw vendor ASGI app; the sandbox wraps it with a
:class:`~adapters.sandbox.faults.FaultInjector` and mounts the admin view under
``/_sandbox/``. Options the sandbox may pass: ``credentials`` (a ``dict[str, str]`` from
:class:`~adapters.sandbox.sandbox.SandboxConfig`) plus any vendor-specific options from the
config; a vendor ignores options it does not know.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp


class VendorErrors(Protocol):
    """How a vendor shapes the errors the fault injector produces."""

    def throttled(self, retry_after_s: float | None) -> Response:
        """The vendor's throttle answer (status, headers and body as the vendor sends it)."""
        ...

    def server_error(self, status: int) -> Response:
        """The vendor's answer to an internal failure with HTTP ``status`` (5xx)."""
        ...


@runtime_checkable
class TokenEndpointErrors(Protocol):
    """Optional beside :class:`VendorErrors`: faults on the vendor's OAuth token endpoint.

    A token endpoint answers in OAuth 2.0 form (RFC 6749 §5.2 ``{"error",
    "error_description"}``), never in the data API's error shape, so the fault injector
    asks for these shapes on requests whose path is in ``token_paths``. Vendors without
    a token endpoint (static keys: Stripe, Kantata) do not implement this, and their
    faults keep the data shapes everywhere.
    """

    token_paths: frozenset[str]

    def token_throttled(self, retry_after_s: float | None) -> Response:
        """What the token endpoint answers when the vendor limits logins."""
        ...

    def token_server_error(self, status: int) -> Response:
        """What the token endpoint answers to an internal failure with HTTP ``status``."""
        ...


class VendorState(Protocol):
    """A vendor's in-memory records, inspectable and persistable by the admin view."""

    def counts(self) -> dict[str, int]:
        """Number of live records per object type."""
        ...

    def duplicates(self) -> list[dict[str, Any]]:
        """Records that share a source key: ``{"type", "source_key", "ids"}`` each."""
        ...

    def snapshot(self) -> dict[str, Any]:
        """Everything needed to rebuild the state, JSON-able."""
        ...

    def restore(self, data: dict[str, Any]) -> None:
        """Replace the state with a :meth:`snapshot`."""
        ...


@dataclass
class Vendor:
    """One simulated system: its state, its error shapes and its raw ASGI app.

    ``errors`` may also be :class:`TokenEndpointErrors` (a vendor with an OAuth token
    endpoint). ``admin_routes`` are optional vendor-specific admin endpoints (e.g. revoking tokens);
    the sandbox mounts them under ``/_sandbox/`` next to the common ones, so a route
    path ``/tokens/revoke`` is served at ``/_sandbox/tokens/revoke``.
    ``credentials`` are the demo credentials the banner prints (``client_id`` …).
    """

    name: str
    state: VendorState
    errors: VendorErrors
    app: ASGIApp
    admin_routes: list[BaseRoute] = field(default_factory=list)
    credentials: dict[str, str] = field(default_factory=dict)
