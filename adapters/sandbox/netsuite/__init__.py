"""Simulated NetSuite (ERP): REST record service, SuiteQL, TBA and M2M auth, concurrency limit.

``create_vendor(clock=..., seed=0, **options)`` builds the :class:`~adapters.sandbox.vendor.Vendor`.
Options (all optional):

- ``credentials``: ``dict`` with ``account_id`` (OAuth realm, e.g. ``1234567_SB1``),
  ``consumer_key``, ``consumer_secret``, ``token_id``, ``token_secret``; missing entries
  get demo values stable for the seed. M2M (OAuth 2.0 client credentials, see
  :mod:`.m2m`) entries, also optional: ``client_id``, ``certificate_id`` and either
  ``private_key`` (PEM; its public half is registered) or ``public_key`` (PEM) — missing
  ones get the demo client of the seed, whose RSA key is derived from the seed (stable
  across restarts, so *not* a secret; derived on first use, it takes a moment).
- ``list_m2m_credentials``: put the M2M ``client_id``, ``certificate_id`` and
  ``private_key`` (the PEM — sandbox only!) into ``vendor.credentials`` for the banner and
  tests. Default: true when ``credentials`` names an M2M entry, else false, so that the
  default credentials stay exactly the TBA set (callers build ``TbaCredentials`` from them).
- ``m2m_certificates``: further registrations, ``[{"client_id", "certificate_id",
  "public_key"}]`` (e.g. a second certificate during rotation).
- ``concurrency_limit`` (default 5, NetSuite's shared tier), ``base_url`` (for
  ``Location`` and ``links``; default the request's scheme and host),
  ``timestamp_skew_s`` (300), ``consultants`` (``[{"name", "email", "subsidiary"}]`` to
  seed employees; default the Kantata sandbox's consultants for the same seed),
  ``source_key_fields``,
  ``request_hook`` (async, awaited while a request holds its concurrency slot; tests),
  ``processing_ms`` (``(min, max)`` service time spent holding the slot; default 0).

Module map: :mod:`.auth` (OAuth 1.0a verifier and a client-side signer), :mod:`.m2m` (the
M2M token endpoint and bearer tokens), :mod:`.records`
(record types, seed data), :mod:`.state` (records and business rules), :mod:`.suiteql` and
:mod:`.tables` (queries), :mod:`.app` (routes), :mod:`.errors` (NetSuite error bodies).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..clock import SandboxClock
from ..vendor import Vendor
from .app import NetSuiteApp as NetSuiteApp
from .auth import TbaCredentials as TbaCredentials
from .auth import TbaVerifier as TbaVerifier
from .auth import authorization_header as authorization_header
from .errors import NetSuiteErrors as NetSuiteErrors
from .m2m import TOKEN_PATH as TOKEN_PATH
from .m2m import M2MCertificate as M2MCertificate
from .m2m import M2MCredentials as M2MCredentials
from .m2m import M2MIssuer as M2MIssuer
from .m2m import demo_certificate_id, demo_client_id, demo_private_key_pem
from .m2m import demo_m2m_credentials as demo_m2m_credentials
from .state import DEFAULT_SOURCE_KEY_FIELDS
from .state import NetSuiteState as NetSuiteState


def default_credentials(seed: int = 0) -> TbaCredentials:
    return TbaCredentials(
        account_id="1234567_SB1",
        consumer_key=f"sandbox-consumer-key-{seed}",
        consumer_secret=f"sandbox-consumer-secret-{seed}",
        token_id=f"sandbox-token-id-{seed}",
        token_secret=f"sandbox-token-secret-{seed}",
    )


def create_vendor(*, clock: SandboxClock, seed: int = 0, **options: Any) -> Vendor:
    """The simulated NetSuite account (unknown options are ignored, per the contract)."""
    defaults = default_credentials(seed)
    given = options.get("credentials") or {}
    credentials = TbaCredentials(
        account_id=given.get("account_id", defaults.account_id),
        consumer_key=given.get("consumer_key", defaults.consumer_key),
        consumer_secret=given.get("consumer_secret", defaults.consumer_secret),
        token_id=given.get("token_id", defaults.token_id),
        token_secret=given.get("token_secret", defaults.token_secret),
    )
    state = NetSuiteState(
        clock=clock,
        seed=seed,
        consultants=options.get("consultants"),
        source_key_fields=tuple(options.get("source_key_fields", DEFAULT_SOURCE_KEY_FIELDS)),
    )
    skew_s = float(options.get("timestamp_skew_s", 300.0))
    verifier = TbaVerifier(credentials, clock, timestamp_skew_s=skew_s)
    m2m, m2m_listed = _m2m(given, seed, options, clock, skew_s)
    app = NetSuiteApp(
        state,
        verifier,
        concurrency_limit=int(options.get("concurrency_limit", 5)),
        base_url=options.get("base_url"),
        request_hook=options.get("request_hook"),
        processing_ms=tuple(options.get("processing_ms", (0.0, 0.0))),
        seed=seed,
        m2m=m2m,
    )
    return Vendor(
        name="netsuite",
        state=state,
        errors=NetSuiteErrors(),
        app=app,
        credentials={
            "account_id": credentials.account_id,
            "consumer_key": credentials.consumer_key,
            "consumer_secret": credentials.consumer_secret,
            "token_id": credentials.token_id,
            "token_secret": credentials.token_secret,
            **m2m_listed,
        },
    )


_M2M_KEYS = ("client_id", "certificate_id", "private_key", "public_key")


def _m2m(
    given: dict[str, str],
    seed: int,
    options: dict[str, Any],
    clock: SandboxClock,
    skew_s: float,
) -> tuple[M2MIssuer, dict[str, str]]:
    """The M2M issuer and the entries for ``vendor.credentials`` (empty unless listed)."""
    client_id = given.get("client_id") or demo_client_id(seed)
    certificate_id = given.get("certificate_id") or demo_certificate_id(seed)
    certificates = [
        M2MCertificate(
            client_id=extra["client_id"],
            certificate_id=extra["certificate_id"],
            public_key_pem=extra["public_key"],
        )
        for extra in options.get("m2m_certificates") or ()
    ]
    lazy: dict[str, Callable[[], M2MCertificate]] = {}
    private_key: str | None = given.get("private_key")
    if private_key:
        own = M2MCredentials(
            client_id=client_id, certificate_id=certificate_id, private_key_pem=private_key
        )
        certificates.append(own.certificate())
    elif given.get("public_key"):
        certificates.append(
            M2MCertificate(
                client_id=client_id,
                certificate_id=certificate_id,
                public_key_pem=given["public_key"],
            )
        )
    else:

        def demo_certificate() -> M2MCertificate:
            demo = M2MCredentials(
                client_id=client_id,
                certificate_id=certificate_id,
                private_key_pem=demo_private_key_pem(seed),
            )
            return demo.certificate()

        lazy[certificate_id] = demo_certificate
    issuer = M2MIssuer(certificates, clock, lazy=lazy, skew_s=skew_s)
    listed = options.get("list_m2m_credentials")
    if listed is None:
        listed = any(key in given for key in _M2M_KEYS)
    if not listed:
        return issuer, {}
    entries = {"client_id": client_id, "certificate_id": certificate_id}
    if private_key or not given.get("public_key"):
        entries["private_key"] = private_key or demo_private_key_pem(seed)
    return issuer, entries
