"""OAuth 2.0 client credentials (RFC 6749 §4.4), including Salesforce's variant."""

from __future__ import annotations

import httpx

from ..redaction import Secret, reveal
from .token import CachedTokenAuth


class OAuth2ClientCredentials(CachedTokenAuth):
    """``grant_type=client_credentials`` with the client's id and secret.

    ``client_auth="body"`` posts them in the form (Salesforce, most vendors);
    ``"basic"`` sends them as HTTP Basic credentials instead (RFC 6749 §2.3.1).
    """

    def __init__(
        self,
        token_url: str,
        *,
        client_id: str,
        client_secret: Secret,
        scope: str | None = None,
        client_auth: str = "body",
        system: str = "",
        refresh_margin_s: float = 60.0,
        deadline_s: float = 30.0,
    ) -> None:
        if client_auth not in ("body", "basic"):
            raise ValueError("client_auth must be 'body' or 'basic'")
        super().__init__(
            token_url, system=system, refresh_margin_s=refresh_margin_s, deadline_s=deadline_s
        )
        self.client_id = client_id
        self._client_secret = client_secret
        self._scope = scope
        self._client_auth = client_auth

    def _form(self) -> dict[str, str]:
        form = {"grant_type": "client_credentials"}
        if self._client_auth == "body":
            form |= {"client_id": self.client_id, "client_secret": reveal(self._client_secret)}
        if self._scope:
            form["scope"] = self._scope
        return form

    def _request_auth(self) -> httpx.Auth | None:
        if self._client_auth == "basic":
            return httpx.BasicAuth(self.client_id, reveal(self._client_secret))
        return None

    def _secrets(self) -> list[str]:
        return [reveal(self._client_secret)]


def salesforce_client_credentials(
    my_domain_url: str, *, client_id: str, client_secret: Secret, system: str = ""
) -> OAuth2ClientCredentials:
    """Salesforce's client-credentials flow, against the org's My Domain token endpoint.

    Salesforce returns no ``expires_in``; the token lives by the session-timeout policy, so
    it is kept until a 401 ``INVALID_SESSION_ID`` and then fetched again.
    """
    return OAuth2ClientCredentials(
        my_domain_url.rstrip("/") + "/services/oauth2/token",
        client_id=client_id,
        client_secret=client_secret,
        system=system,
    )
