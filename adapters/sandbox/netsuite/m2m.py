"""OAuth 2.0 client credentials (M2M) as NetSuite's token endpoint checks it, and the
bearer tokens it issues.

``POST /services/rest/auth/oauth2/v1/token`` takes the form ``grant_type=client_credentials``,
``client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer`` and
``client_assertion=<JWT>``. The JWT is checked in this order:

- header: ``typ`` is ``JWT``; ``alg`` is one of PS256/384/512 or ES256/384/512 (RS256 is
  refused, as NetSuite documents only these); ``kid`` names a registered certificate;
- signature: with that certificate's public key — PSS with MGF1 of the same hash and a
  salt exactly as long as the digest (RFC 7518 §3.5); ECDSA as raw ``r || s`` on the
  curve the algorithm names (§3.4);
- payload: ``iss`` is the client id the certificate is mapped to; ``aud`` is the token
  URL as this request reached it (or as the configured ``base_url`` names it); ``iat``
  and ``exp`` are integers, ``iat`` at most ``skew_s`` ahead of the sandbox clock, ``exp``
  not passed and at most 3600 s after ``iat``; ``scope`` (a comma-separated string, or a
  list as in Oracle's own example) includes ``rest_webservices``. ``jti`` is accepted and
  not checked for replay.

A good assertion gets ``{"access_token", "expires_in": "3600", "token_type": "Bearer"}``;
the token is valid for 3600 s of sandbox time on the REST routes
(``Authorization: Bearer <token>``, beside TBA). An unknown or expired token is answered
like any failed login: 401 ``INVALID_LOGIN_ATTEMPT``.

Assumptions (not confirmed against a live account): refusals are 400 with the OAuth 2.0
error JSON of RFC 6749 §5.2 — ``invalid_request`` (malformed form or JWT, unsupported
``alg``), ``unsupported_grant_type``, ``invalid_client`` (unknown ``kid``, ``iss`` not
the certificate's client, bad signature), ``invalid_grant`` (``aud``, ``iat``/``exp``)
and ``invalid_scope`` — each with an ``error_description`` saying why, which NetSuite
itself may leave to its Login Audit Trail (RFC 7523 §3.2 would answer ``invalid_client``
for every bad assertion). ``expires_in`` is sent as a string, the form Oracle's example
response is remembered to show; clients must accept either. Real access tokens are JWTs
signed by NetSuite; the sandbox's are opaque.

The demo key is *deterministic for the seed* (RSA primes drawn from a seeded generator,
so a restarted sandbox keeps its key) and therefore worthless as a secret: sandbox only.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import json
import random
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from ..clock import SandboxClock

TOKEN_PATH = "/services/rest/auth/oauth2/v1/token"
CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
TOKEN_LIFETIME_S = 3600
MAX_ASSERTION_LIFETIME_S = 3600
REQUIRED_SCOPE = "rest_webservices"

_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "256": hashes.SHA256,
    "384": hashes.SHA384,
    "512": hashes.SHA512,
}
_CURVES: dict[str, tuple[type[ec.EllipticCurve], int]] = {
    "ES256": (ec.SECP256R1, 32),
    "ES384": (ec.SECP384R1, 48),
    "ES512": (ec.SECP521R1, 66),
}
ALGORITHMS = frozenset({"PS256", "PS384", "PS512", *_CURVES})


@dataclass(frozen=True, kw_only=True)
class M2MCertificate:
    """A public certificate uploaded in *OAuth 2.0 Client Credentials (M2M) Setup*."""

    client_id: str
    certificate_id: str
    public_key_pem: str


@dataclass(frozen=True, kw_only=True)
class M2MCredentials:
    """A registration with both halves of its key (the sandbox's demo client)."""

    client_id: str
    certificate_id: str
    private_key_pem: str

    def certificate(self) -> M2MCertificate:
        key = serialization.load_pem_private_key(self.private_key_pem.encode(), password=None)
        public = key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return M2MCertificate(
            client_id=self.client_id,
            certificate_id=self.certificate_id,
            public_key_pem=public.decode(),
        )


class TokenRefused(Exception):
    """The token endpoint's 400: an RFC 6749 §5.2 ``error`` and a description."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


class BearerRefused(Exception):
    """A bearer token that does not authenticate; ``reason`` is for logs and tests."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# ------------------------------------------------------------------ demo credentials


def demo_client_id(seed: int) -> str:
    """64 hex digits, like a NetSuite integration's client id; stable for the seed."""
    return hashlib.sha256(f"pssync-sandbox-m2m-client-{seed}".encode()).hexdigest()


def demo_certificate_id(seed: int) -> str:
    return f"sandbox-m2m-certificate-{seed}"


@functools.lru_cache(maxsize=8)
def demo_private_key_pem(seed: int) -> str:
    """A 2048-bit RSA key derived from ``seed`` (PKCS#8 PEM). NOT a secret: sandbox only.

    cryptography cannot seed its key generation, so the primes are searched here with a
    seeded generator; that takes a fraction of a second, hence the cache.
    """
    rng = random.Random(f"pssync-sandbox-m2m-key-{seed}")
    e = 65537
    p = _prime(1024, rng, e)
    q = _prime(1024, rng, e)
    while q == p:
        q = _prime(1024, rng, e)
    d = pow(e, -1, (p - 1) * (q - 1))
    key = rsa.RSAPrivateNumbers(
        p,
        q,
        d,
        rsa.rsa_crt_dmp1(d, p),
        rsa.rsa_crt_dmq1(d, q),
        rsa.rsa_crt_iqmp(p, q),
        rsa.RSAPublicNumbers(e, p * q),
    ).private_key()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return pem.decode()


def demo_m2m_credentials(seed: int = 0) -> M2MCredentials:
    return M2MCredentials(
        client_id=demo_client_id(seed),
        certificate_id=demo_certificate_id(seed),
        private_key_pem=demo_private_key_pem(seed),
    )


_SMALL_PRIMES = [n for n in range(3, 2000, 2) if all(n % d for d in range(3, int(n**0.5) + 1, 2))]


def _prime(bits: int, rng: random.Random, e: int) -> int:
    while True:
        # Top two bits set so that p * q has exactly 2 * bits bits; odd.
        candidate = rng.getrandbits(bits) | (0b11 << (bits - 2)) | 1
        if (candidate - 1) % e and _probably_prime(candidate, rng):
            return candidate


def _probably_prime(n: int, rng: random.Random, rounds: int = 20) -> bool:
    if any(n % p == 0 for p in _SMALL_PRIMES):
        return False
    d, s = n - 1, 0
    while d % 2 == 0:
        d //= 2
        s += 1
    for _ in range(rounds):  # Miller-Rabin
        x = pow(rng.randrange(2, n - 2), d, n)
        if x in (1, n - 1):
            continue
        for _ in range(s - 1):
            x = pow(x, 2, n)
            if x == n - 1:
                break
        else:
            return False
    return True


# ------------------------------------------------------------------ token endpoint


_B64URL = re.compile(r"[A-Za-z0-9_-]+")


def _b64url_decode(part: str) -> bytes:
    # The standard decoder skips foreign characters; a JWS part must be pure base64url.
    if not _B64URL.fullmatch(part):
        raise ValueError("not unpadded base64url")
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _json_part(part: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(_b64url_decode(part))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise TokenRefused("invalid_request", f"The JWT {what} is not base64url JSON.") from None
    if not isinstance(value, dict):
        raise TokenRefused("invalid_request", f"The JWT {what} is not a JSON object.")
    return value


def _scopes(value: Any) -> list[str]:
    if isinstance(value, str):
        return [scope.strip() for scope in value.split(",")]
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return [item.strip() for item in value]
    return []


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class M2MIssuer:
    """Checks client assertions, issues bearer tokens and recognises them afterwards.

    ``certificates`` are the registered (client id, certificate id → public key)
    mappings; ``lazy`` maps further certificate ids to a function building the
    certificate on first use (the seeded demo key takes a moment to derive). Tokens live
    ``token_lifetime_s`` of sandbox time.
    """

    def __init__(
        self,
        certificates: list[M2MCertificate],
        clock: SandboxClock,
        *,
        lazy: dict[str, Callable[[], M2MCertificate]] | None = None,
        skew_s: float = 300.0,
        token_lifetime_s: int = TOKEN_LIFETIME_S,
    ) -> None:
        self._clock = clock
        self._certificates = {cert.certificate_id: cert for cert in certificates}
        self._lazy = dict(lazy or {})
        self._skew_s = skew_s
        self.token_lifetime_s = token_lifetime_s
        self.tokens: dict[str, tuple[str, float]] = {}  # token → (client id, expires at)
        self.issued = 0  # tokens issued, for tests

    def certificate(self, certificate_id: str) -> M2MCertificate | None:
        """The certificate registered under ``certificate_id`` (the JWT's ``kid``)."""
        certificate = self._certificates.get(certificate_id)
        if certificate is None and certificate_id in self._lazy:
            certificate = self._lazy.pop(certificate_id)()
            self._certificates[certificate_id] = certificate
        return certificate

    def issue(self, form: dict[str, str], audiences: set[str]) -> dict[str, Any]:
        """The token response for ``form``, or :class:`TokenRefused`.

        ``audiences`` are the token URLs this request may name in ``aud``.
        """
        if form.get("grant_type") != "client_credentials":
            raise TokenRefused(
                "unsupported_grant_type", "The grant_type must be client_credentials."
            )
        if form.get("client_assertion_type") != CLIENT_ASSERTION_TYPE:
            raise TokenRefused(
                "invalid_request", f"The client_assertion_type must be {CLIENT_ASSERTION_TYPE}."
            )
        assertion = form.get("client_assertion", "")
        parts = assertion.split(".")
        if len(parts) != 3:
            raise TokenRefused("invalid_request", "The client_assertion is not a signed JWT.")
        header = _json_part(parts[0], "header")
        claims = _json_part(parts[1], "payload")
        certificate = self._check_header(header)
        try:
            signature = _b64url_decode(parts[2])
        except (ValueError, binascii.Error):
            raise TokenRefused("invalid_request", "The JWT signature is not base64url.") from None
        signing_input = f"{parts[0]}.{parts[1]}".encode("ascii")
        if not _verify(certificate, header["alg"], signing_input, signature):
            raise TokenRefused(
                "invalid_client", "The JWT signature does not match the certificate."
            )
        self._check_claims(claims, certificate, audiences)
        token = secrets.token_urlsafe(32)
        self._forget_expired()
        self.tokens[token] = (certificate.client_id, self._clock.now() + self.token_lifetime_s)
        self.issued += 1
        return {
            "access_token": token,
            "expires_in": str(self.token_lifetime_s),
            "token_type": "Bearer",
        }

    def verify_bearer(self, token: str) -> None:
        """Return if ``token`` is a live token of this account, else :class:`BearerRefused`."""
        entry = self.tokens.get(token)
        if entry is None:
            raise BearerRefused("unknown bearer token")
        if self._clock.now() >= entry[1]:
            raise BearerRefused("bearer token expired")

    def _check_header(self, header: dict[str, Any]) -> M2MCertificate:
        if header.get("typ") != "JWT":
            raise TokenRefused("invalid_request", "The JWT header typ must be JWT.")
        algorithm = header.get("alg")
        if algorithm not in ALGORITHMS:
            raise TokenRefused(
                "invalid_request",
                f"The JWT algorithm {algorithm} is not supported; use PS256, PS384, PS512, "
                "ES256, ES384 or ES512.",
            )
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise TokenRefused("invalid_request", "The JWT header has no kid.")
        certificate = self.certificate(kid)
        if certificate is None:
            raise TokenRefused("invalid_client", "No certificate is mapped to this kid.")
        return certificate

    def _check_claims(
        self, claims: dict[str, Any], certificate: M2MCertificate, audiences: set[str]
    ) -> None:
        if claims.get("iss") != certificate.client_id:
            raise TokenRefused(
                "invalid_client", "The iss is not the client the certificate is mapped to."
            )
        aud = claims.get("aud")
        named = set(aud) if isinstance(aud, list) else {aud}
        if not named & audiences:
            raise TokenRefused("invalid_grant", "The aud must be this account's token endpoint.")
        issued_at, expires_at = claims.get("iat"), claims.get("exp")
        if not (_is_int(issued_at) and _is_int(expires_at)):
            raise TokenRefused("invalid_request", "The iat and exp claims must be integers.")
        now = self._clock.now()
        if issued_at > now + self._skew_s:
            raise TokenRefused("invalid_grant", "The JWT was issued in the future (iat).")
        if expires_at <= now:
            raise TokenRefused("invalid_grant", "The JWT has expired (exp).")
        if expires_at - issued_at > MAX_ASSERTION_LIFETIME_S:
            raise TokenRefused("invalid_grant", "The exp must be at most 60 minutes after iat.")
        if REQUIRED_SCOPE not in _scopes(claims.get("scope")):
            raise TokenRefused("invalid_scope", f"The scope must include {REQUIRED_SCOPE}.")

    def _forget_expired(self) -> None:
        now = self._clock.now()
        for token in [token for token, (_, expires) in self.tokens.items() if expires <= now]:
            del self.tokens[token]


def _verify(
    certificate: M2MCertificate, algorithm: str, signing_input: bytes, signature: bytes
) -> bool:
    key = serialization.load_pem_public_key(certificate.public_key_pem.encode())
    digest = _HASHES[algorithm[2:]]()
    try:
        if algorithm.startswith("PS"):
            if not isinstance(key, rsa.RSAPublicKey):
                return False
            pss = padding.PSS(mgf=padding.MGF1(digest), salt_length=digest.digest_size)
            key.verify(signature, signing_input, pss, digest)
            return True
        curve, size = _CURVES[algorithm]
        if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, curve):
            return False
        if len(signature) != 2 * size:  # raw r || s, not DER
            return False
        r = int.from_bytes(signature[:size], "big")
        s = int.from_bytes(signature[size:], "big")
        key.verify(encode_dss_signature(r, s), signing_input, ec.ECDSA(digest))
        return True
    except InvalidSignature:
        return False
