"""Salesforce's OAuth 2.0 JWT bearer flow (RFC 7523) with an RS256-signed assertion."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable

import msgspec

from ..redaction import Secret, reveal
from .token import CachedTokenAuth

JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def rs256_jwt(claims: dict[str, object], private_key_pem: str) -> str:
    """A compact JWT signed RS256 (RSASSA-PKCS1-v1_5 with SHA-256); needs ``cryptography``."""
    # Imported here so that systems not using JWT do not need the dependency.
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    key = serialization.load_pem_private_key(private_key_pem.encode(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("RS256 needs an RSA private key")
    header = _b64url(msgspec.json.encode({"alg": "RS256"}))
    payload = _b64url(msgspec.json.encode(claims))
    signing_input = f"{header}.{payload}".encode("ascii")
    signature = key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    return f"{header}.{payload}.{_b64url(signature)}"


class SalesforceJwtBearer(CachedTokenAuth):
    """Token for a pre-authorised integration user, asserted with the app's private key.

    Claims: ``iss`` the consumer key, ``sub`` the username, ``aud`` the login host
    (``https://login.salesforce.com`` or ``https://test.salesforce.com``), ``exp`` a few
    minutes out (Salesforce allows about three minutes of skew). ``wall_clock`` is epoch
    time, injectable for tests. No ``expires_in`` comes back: kept until a 401.
    """

    def __init__(
        self,
        token_url: str,
        *,
        client_id: str,
        username: str,
        audience: str,
        private_key_pem: Secret,
        lifetime_s: int = 180,
        wall_clock: Callable[[], float] = time.time,
        system: str = "",
        deadline_s: float = 30.0,
    ) -> None:
        super().__init__(token_url, system=system, deadline_s=deadline_s)
        self.client_id = client_id
        self.username = username
        self.audience = audience
        self._private_key_pem = private_key_pem
        self._lifetime_s = lifetime_s
        self._wall_clock = wall_clock

    def assertion(self) -> str:
        """A freshly signed assertion."""
        claims = {
            "iss": self.client_id,
            "sub": self.username,
            "aud": self.audience,
            "exp": int(self._wall_clock()) + self._lifetime_s,
        }
        return rs256_jwt(claims, reveal(self._private_key_pem))

    def _form(self) -> dict[str, str]:
        return {"grant_type": JWT_BEARER_GRANT, "assertion": self.assertion()}

    def _secrets(self) -> list[str]:
        return [reveal(self._private_key_pem)]
