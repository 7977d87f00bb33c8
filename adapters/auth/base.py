"""The contract every auth strategy meets, as the HTTP layer uses it."""

from __future__ import annotations

from typing import Protocol

import httpx


class AuthStrategy(Protocol):
    """Puts credentials on a request; may fetch and cache them over ``http``.

    ``authorize`` returns an opaque credential handle; after a 401 the client passes it to
    ``invalidate`` so only the credential that actually failed is dropped (fifty requests
    failing with the same expired token cause one refresh, not fifty). ``refreshable`` says
    whether a retry after ``invalidate`` can succeed. ``correlation`` is the request's
    correlation header, repeated on any token call made on its behalf.
    """

    refreshable: bool

    async def authorize(
        self,
        request: httpx.Request,
        http: httpx.AsyncClient,
        *,
        correlation: tuple[str, str] | None = None,
    ) -> object:
        """Add credentials to ``request``; return the handle of the credential used."""
        ...

    async def invalidate(self, credential: object) -> None:
        """Forget ``credential`` after the vendor refused it."""
        ...

    def secret_values(self) -> list[str]:
        """Every secret value this strategy holds now, for redaction."""
        ...
