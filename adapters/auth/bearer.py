"""A static API key or long-lived token sent as ``Authorization: Bearer …``."""

from __future__ import annotations

import httpx

from ..redaction import Secret, reveal


class BearerToken:
    """Stripe secret keys (``sk_…``), Kantata tokens: nothing to refresh, a 401 is final."""

    refreshable = False

    def __init__(self, token: Secret, *, scheme: str = "Bearer") -> None:
        self._token = token
        self._scheme = scheme

    async def authorize(
        self,
        request: httpx.Request,
        http: httpx.AsyncClient,
        *,
        correlation: tuple[str, str] | None = None,
    ) -> object:
        """Set the Authorization header."""
        request.headers["Authorization"] = f"{self._scheme} {reveal(self._token)}"
        return self._token

    async def invalidate(self, credential: object) -> None:
        """Nothing to forget: the key is configuration."""

    def secret_values(self) -> list[str]:
        """The key itself."""
        return [reveal(self._token)]

    def __repr__(self) -> str:
        return f"BearerToken(scheme={self._scheme!r}, token=[REDACTED])"
