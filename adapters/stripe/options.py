"""The Stripe adapter's options (``systems.<name>.options`` for a ``stripe`` system)."""

from __future__ import annotations

from typing import Literal

import msgspec

__all__ = ["DEFAULT_EVENT_TYPES", "StripeOptions"]

DEFAULT_EVENT_TYPES: tuple[str, ...] = (
    "invoice.finalized",
    "invoice.paid",
    "invoice.voided",
    "invoice.marked_uncollectible",
)
"""The invoice lifecycle events the ``invoice_events`` feed follows.

``invoice.payment_succeeded`` is left out on purpose: Stripe sends it beside
``invoice.paid`` for the same payment, and following both would report one payment twice.
"""


class StripeOptions(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """How pssync uses one Stripe account.

    Metadata keys (at most 40 characters, no brackets) name what pssync writes on the
    objects it creates: ``id_key`` carries the canonical id (and is what look-before-create
    searches for), ``source_key`` the canonical source object (``invoice:INV-1``); the
    sandbox's duplicates view groups by these two keys, in that order.
    """

    api_version: str = "2024-06-20"
    """Sent as ``Stripe-Version``; the wire shapes below are coded against this version."""
    id_key: str = "pssync_id"
    source_key: str = "pssync_source"
    project_key: str = "pssync_project"
    account_key: str = "pssync_account"
    correlation_key: str = "pssync_correlation"
    events_page_size: int = 100
    """Events per ``GET /v1/events`` page (Stripe allows 1-100)."""
    list_page_size: int = 100
    event_types: tuple[str, ...] = DEFAULT_EVENT_TYPES
    start_epoch_s: int | None = None
    """Where a feed with no watermark starts: events created at or after this time, or
    (``None``) only events created after the first poll."""
    event_retention_s: int = 30 * 86_400
    """Stripe keeps events this long; a watermark older than that means events were lost."""
    search_lag_window_s: int = 3_600
    """Stripe search may miss objects younger than this; look-before-create also lists
    the objects created in this window (strongly consistent) and filters them itself."""
    collection_method: Literal["send_invoice", "charge_automatically"] = "send_invoice"
    days_until_due: int = 30
    """Payment terms for ``send_invoice`` invoices and subscriptions without a due date."""

    def __post_init__(self) -> None:
        # ValueError, so msgspec reports the offending path when the config is decoded.
        keys = (
            self.id_key,
            self.source_key,
            self.project_key,
            self.account_key,
            self.correlation_key,
        )
        for key in keys:
            if not key or len(key) > 40 or "[" in key or "]" in key:
                raise ValueError(f"metadata key {key!r} must be 1-40 characters without brackets")
        if len(set(keys)) != len(keys):
            raise ValueError("metadata keys must be distinct")
        for name in ("events_page_size", "list_page_size"):
            if not 1 <= getattr(self, name) <= 100:
                raise ValueError(f"{name} must be between 1 and 100 (Stripe's list limit)")
        if not 1 <= len(self.event_types) <= 20:
            raise ValueError("event_types must name 1 to 20 types (Stripe's types[] limit)")
        if self.days_until_due < 0 or self.search_lag_window_s < 0:
            raise ValueError("days_until_due and search_lag_window_s must be >= 0")
        if self.event_retention_s <= 0:
            raise ValueError("event_retention_s must be > 0")
