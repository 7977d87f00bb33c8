"""Simulated Stripe (billing): ``/v1`` customers, products, prices, subscriptions,
invoice items, invoices, events and search, with Stripe's auth, form encoding, list
paging, idempotency, errors and rate limit.

``create_vendor(clock=..., seed=0, **options)`` builds the
:class:`~adapters.sandbox.vendor.Vendor`. Options (all optional):

- ``credentials``: ``{"api_key": "sk_test_…"}`` (default ``sk_test_pssync_sandbox_<seed>``);
  ``Authorization: Bearer <key>`` or Basic with the key as user name.
- ``rate_limit_per_s`` (default 25, Stripe's test-mode limit) and ``rate_burst``
  (default the rate): a token bucket on sandbox time; excess requests get 429
  ``rate_limit``.
- ``api_version`` (default ``2024-06-20``; events carry it), ``source_keys`` (metadata
  keys that carry pssync's source id, default ``pssync_source`` and ``pssync_id``),
  ``search_lag_s`` (default 0: search sees objects this many seconds after creation,
  to exercise Stripe's eventual consistency), ``request_hook`` (tests).

Business hooks for the scenario driver (plain calls on ``vendor.state``, no HTTP; each
records the events Stripe would, with ``request.id`` null as for automatic events):

- ``state.pay_invoice(invoice_id, at=None)`` — the customer pays an open (or
  uncollectible) invoice in full; ``at`` (epoch seconds) backdates ``paid_at``.
  Emits ``invoice.payment_succeeded`` and ``invoice.paid``.
- ``state.fail_payment(invoice_id)`` — a payment attempt fails: ``attempt_count`` goes
  up, ``invoice.payment_failed`` is emitted, the invoice stays open and its subscription
  (if any) becomes ``past_due``; ``POST /pay`` keeps failing (402 ``card_declined``)
  until ``pay_invoice`` is called.
- ``state.mark_uncollectible(invoice_id)`` — open → uncollectible.
- ``state.open_invoices()`` — the open invoices, oldest first.
- ``state.tick()`` — let sandbox time act now (renewals, auto-advance); requests call
  it anyway.

Module map: :mod:`.forms` (bracket form parser), :mod:`.params` (typed parameters),
:mod:`.state` (objects, lifecycles, events), :mod:`.search` (search query language),
:mod:`.app` (pipeline, idempotency, paging), :mod:`.routes` (endpoints), :mod:`.errors`
(error bodies).
"""

from __future__ import annotations

from typing import Any

from ..clock import SandboxClock
from ..vendor import Vendor
from .app import StripeApp as StripeApp
from .errors import StripeErrors as StripeErrors
from .forms import parse_form as parse_form
from .state import DEFAULT_API_VERSION, DEFAULT_SOURCE_KEYS
from .state import StripeState as StripeState


def create_vendor(*, clock: SandboxClock, seed: int = 0, **options: Any) -> Vendor:
    """The simulated Stripe account (unknown options are ignored, per the contract)."""
    credentials = options.get("credentials") or {}
    api_key = credentials.get("api_key") or f"sk_test_pssync_sandbox_{seed}"
    state = StripeState(
        clock=clock,
        seed=seed,
        api_version=options.get("api_version", DEFAULT_API_VERSION),
        source_keys=tuple(options.get("source_keys", DEFAULT_SOURCE_KEYS)),
        search_lag_s=float(options.get("search_lag_s", 0.0)),
    )
    rate = float(options.get("rate_limit_per_s", 25.0))
    burst = options.get("rate_burst")
    app = StripeApp(
        state,
        clock,
        api_key=api_key,
        rate_limit_per_s=rate,
        rate_burst=None if burst is None else int(burst),
        request_hook=options.get("request_hook"),
        seed=seed,
    )
    return Vendor(
        name="stripe",
        state=state,
        errors=StripeErrors(seed),
        app=app,
        credentials={"api_key": api_key},
    )
