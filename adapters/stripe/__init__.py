"""Stripe (billing): customers, recurring subscriptions, milestone invoices, invoice events.

Module map: :mod:`.options` (:class:`StripeOptions`), :mod:`.forms` (bracket form
encoding), :mod:`.wire` (Stripe JSON as msgspec Structs), :mod:`.api` (requests,
paging, look-before-create), :mod:`.customers`, :mod:`.billing` (schedules,
subscriptions), :mod:`.invoices`, :mod:`.canonical` (invoices to canonical values through
``config/mappings/stripe.toml``), :mod:`.feed` (``invoice_events``), :mod:`.totals`
(reconciliation), :mod:`.adapter` (:class:`StripeAdapter`, :func:`create_adapter`).

Auth is a static secret key: ``adapters.auth.BearerToken(key)`` with
``adapters.signals.StripeSignals()`` for the client.
"""

from .adapter import MAPPED_ENTITIES as MAPPED_ENTITIES
from .adapter import StripeAdapter as StripeAdapter
from .adapter import create_adapter as create_adapter
from .feed import InvoiceEventsFeed as InvoiceEventsFeed
from .forms import encode_form as encode_form
from .options import DEFAULT_EVENT_TYPES as DEFAULT_EVENT_TYPES
from .options import StripeOptions as StripeOptions
