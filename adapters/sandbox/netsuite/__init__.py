"""Simulated NetSuite (ERP): REST record service, SuiteQL, TBA auth, concurrency limit.

``create_vendor(clock=..., seed=0, **options)`` builds the :class:`~adapters.sandbox.vendor.Vendor`.
Options (all optional):

- ``credentials``: ``dict`` with ``account_id`` (OAuth realm, e.g. ``1234567_SB1``),
  ``consumer_key``, ``consumer_secret``, ``token_id``, ``token_secret``; missing entries
  get demo values stable for the seed.
- ``concurrency_limit`` (default 5, NetSuite's shared tier), ``base_url`` (for
  ``Location`` and ``links``; default the request's scheme and host),
  ``timestamp_skew_s`` (300), ``consultants`` (``[{"name", "email", "subsidiary"}]`` to
  seed employees; default the Kantata sandbox's consultants for the same seed),
  ``source_key_fields``,
  ``request_hook`` (async, awaited while a request holds its concurrency slot; tests),
  ``processing_ms`` (``(min, max)`` service time spent holding the slot; default 0).

Module map: :mod:`.auth` (OAuth 1.0a verifier and a client-side signer), :mod:`.records`
(record types, seed data), :mod:`.state` (records and business rules), :mod:`.suiteql` and
:mod:`.tables` (queries), :mod:`.app` (routes), :mod:`.errors` (NetSuite error bodies).
"""

from __future__ import annotations

from typing import Any

from ..clock import SandboxClock
from ..vendor import Vendor
from .app import NetSuiteApp as NetSuiteApp
from .auth import TbaCredentials as TbaCredentials
from .auth import TbaVerifier as TbaVerifier
from .auth import authorization_header as authorization_header
from .errors import NetSuiteErrors as NetSuiteErrors
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
    verifier = TbaVerifier(
        credentials, clock, timestamp_skew_s=float(options.get("timestamp_skew_s", 300.0))
    )
    app = NetSuiteApp(
        state,
        verifier,
        concurrency_limit=int(options.get("concurrency_limit", 5)),
        base_url=options.get("base_url"),
        request_hook=options.get("request_hook"),
        processing_ms=tuple(options.get("processing_ms", (0.0, 0.0))),
        seed=seed,
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
        },
    )
