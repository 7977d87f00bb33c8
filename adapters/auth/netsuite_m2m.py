"""NetSuite OAuth 2.0 client credentials (machine to machine) with a certificate-signed JWT.

The client posts ``grant_type=client_credentials`` with a ``client_assertion`` (RFC 7523
§2.2) to ``https://<account>.suitetalk.api.netsuite.com/services/rest/auth/oauth2/v1/token``
and gets a bearer token good for an hour, with no refresh token. The assertion:

- header ``{"typ": "JWT", "alg": …, "kid": <certificate id>}``; ``alg`` is PS256/384/512
  (RSA-PSS, MGF1 with the same hash, salt as long as the digest — RFC 7518 §3.5) or
  ES256/384/512 (ECDSA, signature as raw ``r || s``, not DER — RFC 7518 §3.4);
- payload ``iss`` (integration client id), ``scope`` (comma-separated), ``aud`` (the token
  URL), ``iat``, ``exp`` (NetSuite allows at most 60 min after ``iat``) and a fresh ``jti``.

NetSuite refuses RS256 (PKCS#1 v1.5) here, so an RSA key signs PS256 by default and an EC
key the ES algorithm of its curve.
"""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Callable, Sequence

import httpx
import msgspec
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from ..redaction import Secret, reveal
from .token import CachedTokenAuth

TOKEN_PATH = "/services/rest/auth/oauth2/v1/token"
CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
MAX_ASSERTION_LIFETIME_S = 3600

_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "256": hashes.SHA256,
    "384": hashes.SHA384,
    "512": hashes.SHA512,
}
# JWS ES algorithm → the curve it is defined on and its coordinate size in bytes.
_CURVES: dict[str, tuple[type[ec.EllipticCurve], int]] = {
    "ES256": (ec.SECP256R1, 32),
    "ES384": (ec.SECP384R1, 48),
    "ES512": (ec.SECP521R1, 66),
}
ALGORITHMS = ("PS256", "PS384", "PS512", "ES256", "ES384", "ES512")

SigningKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


def netsuite_token_url(base_url: str) -> str:
    """The M2M token endpoint on the host of ``base_url`` (scheme, host and port kept)."""
    return str(httpx.URL(base_url).copy_with(path=TOKEN_PATH, query=None, fragment=None))


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def load_signing_key(private_key_pem: str) -> SigningKey:
    """An unencrypted PEM private key (RSA or EC); the error never quotes the key."""
    try:
        key = serialization.load_pem_private_key(private_key_pem.encode(), password=None)
    except (ValueError, TypeError):
        # cryptography's messages do not quote key material today; do not depend on it.
        raise ValueError("private_key is not an unencrypted PEM private key") from None
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise ValueError("private_key must be an RSA or EC key")
    return key


def default_algorithm(key: SigningKey) -> str:
    """PS256 for RSA; for EC the ES algorithm of the key's curve."""
    if isinstance(key, rsa.RSAPrivateKey):
        return "PS256"
    for algorithm, (curve, _) in _CURVES.items():
        if isinstance(key.curve, curve):
            return algorithm
    raise ValueError(f"EC curve {key.curve.name} has no JWS algorithm NetSuite accepts")


def check_algorithm(algorithm: str, key: SigningKey) -> None:
    """Raise ``ValueError`` unless ``key`` can sign ``algorithm`` as NetSuite expects it."""
    if algorithm not in ALGORITHMS:
        raise ValueError(f"algorithm must be one of {', '.join(ALGORITHMS)}")
    if algorithm.startswith("PS") and not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError(f"{algorithm} needs an RSA private key")
    if algorithm.startswith("ES"):
        curve, _ = _CURVES[algorithm]
        if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, curve):
            raise ValueError(f"{algorithm} needs an EC private key on {curve.name}")


def sign_jws(signing_input: bytes, key: SigningKey, algorithm: str) -> bytes:
    """The JWS signature of ``signing_input`` (RFC 7518 §3.4 and §3.5)."""
    check_algorithm(algorithm, key)
    digest = _HASHES[algorithm[2:]]()
    if isinstance(key, rsa.RSAPrivateKey):
        pss = padding.PSS(mgf=padding.MGF1(digest), salt_length=digest.digest_size)
        return key.sign(signing_input, pss, digest)
    _, size = _CURVES[algorithm]
    r, s = decode_dss_signature(key.sign(signing_input, ec.ECDSA(digest)))
    return r.to_bytes(size, "big") + s.to_bytes(size, "big")


def encode_jwt(header: dict[str, object], claims: dict[str, object], key: SigningKey) -> str:
    """A compact JWS of ``claims``, signed with ``header["alg"]``."""
    signing_input = f"{_b64url(msgspec.json.encode(header))}.{_b64url(msgspec.json.encode(claims))}"
    signature = sign_jws(signing_input.encode("ascii"), key, str(header["alg"]))
    return f"{signing_input}.{_b64url(signature)}"


class NetSuiteM2M(CachedTokenAuth):
    """Bearer tokens from NetSuite's client-credentials (M2M) flow, cached and renewed.

    ``token_url`` is the account's token endpoint (:func:`netsuite_token_url` builds it
    from the system's ``base_url``); it is also the assertion's ``aud``. ``scope`` is one
    scope or several (``("rest_webservices", "restlets")``), sent comma-separated.
    ``algorithm`` defaults to the key's (PS256 for RSA). Each assertion lives
    ``lifetime_s`` (at most 3600); the token is renewed ``refresh_margin_s`` before its
    ``expires_in`` runs out, or after a 401. ``wall_clock`` (epoch seconds) and ``jti`` are
    injectable for tests. The key is checked here, so a bad one fails at start-up.
    """

    def __init__(
        self,
        token_url: str,
        *,
        client_id: str,
        certificate_id: str,
        private_key_pem: Secret,
        scope: str | Sequence[str] = "rest_webservices",
        algorithm: str | None = None,
        lifetime_s: int = 300,
        wall_clock: Callable[[], float] = time.time,
        jti: Callable[[], str] = lambda: uuid.uuid4().hex,
        system: str = "",
        refresh_margin_s: float = 60.0,
        deadline_s: float = 30.0,
    ) -> None:
        super().__init__(
            token_url, system=system, refresh_margin_s=refresh_margin_s, deadline_s=deadline_s
        )
        if not 0 < lifetime_s <= MAX_ASSERTION_LIFETIME_S:
            raise ValueError(f"lifetime_s must be between 1 and {MAX_ASSERTION_LIFETIME_S}")
        scopes = [scope] if isinstance(scope, str) else list(scope)
        if not scopes or not all(scopes):
            raise ValueError("scope must name at least one scope")
        self.client_id = client_id
        self.certificate_id = certificate_id
        self.scope = ",".join(scopes)
        self._private_key_pem = private_key_pem
        self._key = load_signing_key(reveal(private_key_pem))
        self.algorithm = algorithm or default_algorithm(self._key)
        check_algorithm(self.algorithm, self._key)
        self._lifetime_s = lifetime_s
        self._wall_clock = wall_clock
        self._jti = jti

    def assertion(self) -> str:
        """A freshly signed client assertion."""
        issued_at = int(self._wall_clock())
        header = {"typ": "JWT", "alg": self.algorithm, "kid": self.certificate_id}
        claims = {
            "iss": self.client_id,
            "scope": self.scope,
            "aud": self.token_url,
            "iat": issued_at,
            "exp": issued_at + self._lifetime_s,
            "jti": self._jti(),
        }
        return encode_jwt(header, claims, self._key)

    def _form(self) -> dict[str, str]:
        return {
            "grant_type": "client_credentials",
            "client_assertion_type": CLIENT_ASSERTION_TYPE,
            "client_assertion": self.assertion(),
        }

    def _secrets(self) -> list[str]:
        pem = reveal(self._private_key_pem)
        # The PEM's base64 lines too: a fragment of the key is as bad as all of it.
        lines = [line.strip() for line in pem.splitlines()]
        return [pem, *(line for line in lines if len(line) >= 16 and not line.startswith("-----"))]

    def __repr__(self) -> str:
        return (
            f"NetSuiteM2M(token_url={self.token_url!r}, client_id={self.client_id!r}, "
            f"certificate_id={self.certificate_id!r}, algorithm={self.algorithm!r})"
        )
