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
from typing import Any, Protocol

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

    ``admin_routes`` are optional vendor-specific admin endpoints (e.g. revoking tokens);
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
