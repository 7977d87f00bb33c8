"""The ``invoice_events`` feed: Stripe's event list, read oldest to newest.

Stripe lists newest first. The watermark is ``<event id>@<since>``: the id of the last
event delivered and an epoch time since which nothing can have been missed (the event's
``created``, moved forward by polls that found nothing new). A poll asks for
``ending_before=<event id>`` — the ``limit`` events just after it, which Stripe returns
newest first — reverses the page and moves the watermark to its newest event;
``has_more`` says whether more wait. Nothing is skipped: each page starts where the last
one ended, whatever arrives meanwhile.

Without an event id (``@<since>``: a configured start, or an account with no events yet)
the feed pages backwards through ``created[gte]=<since>`` to the oldest event and
delivers from there; events at the boundary second may be delivered twice, which the
journal drops (envelope ids are derived from the event id). If Stripe no longer knows the
cursor event, the feed falls back to the same time-based read.

Stripe keeps events for 30 days. A watermark whose ``since`` is older than that means
events may be gone: the poll raises PermanentError saying how to recover instead of
carrying on past a silent gap.

An ``invoice.finalized`` event's invoice carries its lines (see ``canonical``). Stripe
embeds only the first few in the event's invoice object (``lines.has_more``); the rest are
read from ``GET /v1/invoices/:id/lines`` on the feed's own lane. Other events read nothing
more.
"""

from __future__ import annotations

import collections
from datetime import UTC, datetime
from typing import Any

from actors.errors import PayloadError, PermanentError
from actors.messages import (
    Envelope,
    Event,
    InvoiceIssued,
    InvoiceStatus,
    InvoiceStatusChanged,
    PaymentReceived,
)

from ..base import FeedPage
from ..governor import Lane
from .api import StripeApi
from .canonical import InvoiceMapper
from .wire import Customer, LineItem, ListPage, decode, decode_items
from .wire import Event as StripeEvent
from .wire import Invoice as StripeInvoice

__all__ = ["InvoiceEventsFeed", "Watermark"]

CLOCK_SKEW_S = 300
"""How far Stripe's clock may be ahead of ours when a quiet poll moves ``since`` on."""

_ACCOUNT_CACHE_SIZE = 10_000
_STATUS_EVENTS = {
    "invoice.finalized",
    "invoice.paid",
    "invoice.voided",
    "invoice.marked_uncollectible",
}


class Watermark:
    """``<event id>@<since epoch>``; the id is empty before the first event."""

    def __init__(self, event_id: str, since: int) -> None:
        self.event_id = event_id
        self.since = since

    @classmethod
    def parse(cls, text: str) -> Watermark:
        """Read a stored watermark; PayloadError for anything this feed did not write."""
        event_id, sep, since = text.rpartition("@")
        if not sep or not since.isdigit() or (event_id and not event_id.startswith("evt_")):
            raise PayloadError(f"not a Stripe events watermark: {text!r}", where="invoice_events")
        return cls(event_id, int(since))

    def __str__(self) -> str:
        return f"{self.event_id}@{self.since}"


class InvoiceEventsFeed:
    """Invoice finalized / paid / voided / uncollectible events for ``invoice_feedback``."""

    name = "invoice_events"
    workflow = "invoice_feedback"

    def __init__(self, api: StripeApi, mapper: InvoiceMapper) -> None:
        self.api = api
        self.mapper = mapper
        self._accounts: dict[str, str] = {}

    async def poll(self, watermark: str | None, *, limit: int) -> FeedPage:
        """Up to ``limit`` events after ``watermark``, oldest first (module docstring)."""
        options = self.api.options
        limit = max(1, min(limit, options.events_page_size))
        if watermark is None:
            if options.start_epoch_s is None:
                return await self._start_now()
            mark = Watermark("", options.start_epoch_s)
        else:
            mark = Watermark.parse(watermark)
        self._check_retention(mark)
        events: list[StripeEvent] = []
        more = False
        if mark.event_id:
            try:
                page = await self._page({"ending_before": mark.event_id, "limit": limit})
            except PermanentError as exc:
                if exc.status != 404:
                    raise
                mark = Watermark("", mark.since)  # the cursor expired: read by time instead
            else:
                events = list(reversed(decode_items(page, StripeEvent, what="event")))
                more = page.has_more
        if not mark.event_id:
            events, more = await self._oldest_since(mark.since, limit)
        if events:
            last = events[-1]
            next_mark = Watermark(last.id, max(mark.since, last.created))
        else:
            quiet_since = int(self.api.wall_clock()) - CLOCK_SKEW_S
            next_mark = Watermark(mark.event_id, max(mark.since, quiet_since))
        envelopes: list[Envelope] = []
        for event in events:
            envelopes += await self._envelopes(event)
        return FeedPage(envelopes=tuple(envelopes), watermark=str(next_mark), more=more)

    async def _start_now(self) -> FeedPage:
        """No watermark, no configured start: begin after the newest event there is."""
        page = await self._page({"limit": 1})
        newest = decode_items(page, StripeEvent, what="event")
        quiet_since = int(self.api.wall_clock()) - CLOCK_SKEW_S
        if newest:
            mark = Watermark(newest[0].id, max(newest[0].created, quiet_since))
        else:
            mark = Watermark("", quiet_since)
        return FeedPage(envelopes=(), watermark=str(mark), more=False)

    async def _oldest_since(self, since: int, limit: int) -> tuple[list[StripeEvent], bool]:
        """The ``limit`` oldest events created at or after ``since``, oldest first."""
        oldest: collections.deque[StripeEvent] = collections.deque(maxlen=limit)
        seen = 0
        params: dict[str, Any] = {
            "created": {"gte": since},
            "limit": self.api.options.events_page_size,
        }
        while True:
            page = await self._page(params)
            events = decode_items(page, StripeEvent, what="event")
            oldest.extend(events)  # newest first, so the deque ends on the oldest
            seen += len(events)
            if not page.has_more or not events:
                break
            params["starting_after"] = events[-1].id
        return list(reversed(oldest)), seen > limit

    async def _page(self, params: dict[str, Any]) -> ListPage:
        query = {**params, "types": list(self.api.options.event_types)}
        return await self.api.get(
            "/v1/events", ListPage, lane=Lane.ANALYTICS, correlation_id="", params=query
        )

    def _check_retention(self, mark: Watermark) -> None:
        horizon = int(self.api.wall_clock()) - self.api.options.event_retention_s
        if mark.since >= horizon:
            return
        when = datetime.fromtimestamp(mark.since, UTC).isoformat()
        raise PermanentError(
            f"invoice_events watermark {mark} ({when}) is older than Stripe's "
            f"{self.api.options.event_retention_s // 86_400}-day event retention: events after "
            "it may be gone. Reconcile invoices and payments since then against Stripe's "
            "invoice list, then reset this feed's watermark to a recent event id.",
            system=self.api.system,
            code="events_expired",
        )

    async def _envelopes(self, event: StripeEvent) -> list[Envelope]:
        if not event.type.startswith("invoice."):
            return []
        invoice = decode(event.data.object, StripeInvoice, what=f"event {event.id} invoice")
        account_id = await self._account_of(invoice)
        occurred = datetime.fromtimestamp(event.created, UTC)
        status = InvoiceStatus(invoice.status) if invoice.status in _STATUSES else None
        previous = _previous_status(event)
        facts: list[Event] = []
        if event.type == "invoice.finalized":
            lines = await self._lines_of(invoice)
            issued = self.mapper.invoice(invoice, account_id=account_id, lines=lines)
            facts.append(InvoiceIssued(invoice=issued))
            previous = previous or InvoiceStatus.DRAFT
        if status is not None and (event.type in _STATUS_EVENTS or previous is not None):
            canonical = self.mapper.invoice(invoice, account_id=account_id)
            facts.append(
                InvoiceStatusChanged(
                    invoice_id=canonical.id,
                    account_id=account_id,
                    previous=previous,
                    status=status,
                    amount_due=canonical.amount_due,
                    amount_paid=canonical.amount_paid,
                    changed_at=occurred,
                )
            )
        if event.type == "invoice.paid":
            payment = self.mapper.payment(invoice, account_id=account_id, fallback=occurred)
            facts.append(PaymentReceived(payment=payment))
        correlation = invoice.metadata.get(self.api.options.correlation_key) or None
        return [
            Envelope.new(
                fact,
                source=self.api.system,
                object_id=invoice.id,
                version=event.id,
                occurred_at=occurred,
                correlation_id=correlation,
            )
            for fact in facts
        ]

    async def _lines_of(self, invoice: StripeInvoice) -> list[LineItem]:
        """Every line of a finalized invoice: the event's, plus the lines endpoint when
        the event embeds only the first (``has_more``). A finalized invoice's lines no
        longer change, so a re-poll reads the same."""
        embedded = invoice.lines
        if embedded is not None and not embedded.has_more:
            return decode_items(embedded, LineItem, what=f"invoice {invoice.id} line")
        return [
            line
            async for line in self.api.list_all(
                f"/v1/invoices/{invoice.id}/lines",
                LineItem,
                lane=Lane.ANALYTICS,
                correlation_id="",
            )
        ]

    async def _account_of(self, invoice: StripeInvoice) -> str:
        """The canonical account: invoice metadata, else the customer's, else Stripe's id."""
        account = invoice.metadata.get(self.api.options.account_key)
        if account:
            return account
        if invoice.customer not in self._accounts:
            if len(self._accounts) >= _ACCOUNT_CACHE_SIZE:
                self._accounts.clear()  # ids never change; a cold cache only costs GETs
            customer = await self.api.get_or_none(
                f"/v1/customers/{invoice.customer}",
                Customer,
                lane=Lane.ANALYTICS,
                correlation_id="",
            )
            found = customer.metadata.get(self.api.options.id_key) if customer else None
            self._accounts[invoice.customer] = found or invoice.customer
        return self._accounts[invoice.customer]


_STATUSES = {status.value for status in InvoiceStatus}


def _previous_status(event: StripeEvent) -> InvoiceStatus | None:
    previous = (event.data.previous_attributes or {}).get("status")
    return InvoiceStatus(previous) if previous in _STATUSES else None
