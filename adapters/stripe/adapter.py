"""The Stripe (billing) adapter: canonical commands in, invoice events out."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from actors.errors import PermanentError
from actors.messages import (
    AnyCommand,
    CreateInvoice,
    CreateSubscription,
    FinalizeInvoice,
    UpdateInvoiceStatus,
    UpsertBillingSchedule,
    UpsertCustomer,
    command_tag,
)

from ..base import ChangeFeed, CommandResult, ProjectTotals, TotalsQuery
from ..governor import Lane
from ..http import SystemClient
from ..mapping import LiveMappings, MappingSet
from .api import StripeApi
from .billing import create_subscription, upsert_billing_schedule
from .canonical import InvoiceMapper
from .customers import upsert_customer
from .feed import InvoiceEventsFeed
from .invoices import create_invoice, finalize_invoice, update_invoice_status
from .options import StripeOptions
from .totals import invoiced_totals

__all__ = ["StripeAdapter", "create_adapter"]

VENDOR = "stripe"
MAPPED_ENTITIES = ("customer", "invoice", "payment")
"""The entities of ``config/mappings/stripe.toml`` this adapter uses."""


class StripeAdapter:
    """One Stripe account as a :class:`~adapters.base.VendorAdapter`.

    Commands: ``UpsertCustomer``, ``UpsertBillingSchedule``, ``CreateSubscription``,
    ``CreateInvoice``, ``FinalizeInvoice``, ``UpdateInvoiceStatus`` (void, uncollectible);
    anything else is a PermanentError. Feed:
    ``invoice_events``. Totals: invoiced amounts per project and period.
    """

    def __init__(
        self,
        *,
        system: str,
        client: SystemClient,
        mappings: MappingSet,
        options: StripeOptions,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.system = system
        self.options = options
        self.client = client
        self.api = StripeApi(client, options, wall_clock=wall_clock)
        self.mappings = LiveMappings(mappings, vendor=VENDOR, required=MAPPED_ENTITIES)
        mapper = InvoiceMapper(system=system, mappings=self.mappings, options=options)
        self._feeds = (InvoiceEventsFeed(self.api, mapper),)

    def feeds(self) -> Sequence[ChangeFeed]:
        """The ``invoice_events`` feed."""
        return self._feeds

    def lane_for(self, command: AnyCommand) -> Lane:
        """Invoices and subscriptions (which bill at once) are financial postings."""
        match command:
            case CreateInvoice() | FinalizeInvoice() | UpdateInvoiceStatus() | CreateSubscription():
                return Lane.CRITICAL
            case _:
                return Lane.MASTER_DATA

    async def execute(self, command: AnyCommand) -> CommandResult:
        """Apply one command idempotently (see the command modules)."""
        match command:
            case UpsertCustomer():
                return await upsert_customer(self.api, self.mappings.entity("customer"), command)
            case UpsertBillingSchedule():
                return await upsert_billing_schedule(self.api, command)
            case CreateSubscription():
                return await create_subscription(self.api, command)
            case CreateInvoice():
                return await create_invoice(self.api, command)
            case FinalizeInvoice():
                return await finalize_invoice(self.api, command)
            case UpdateInvoiceStatus():
                return await update_invoice_status(self.api, command)
            case _:
                raise PermanentError(
                    f"stripe does not handle {command_tag(command)} commands",
                    system=self.system,
                    code="unsupported_command",
                )

    async def totals(self, query: TotalsQuery) -> ProjectTotals:
        """Invoiced totals for one project and period (see :mod:`.totals`)."""
        return await invoiced_totals(self.api, query)

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self.client.aclose()


def create_adapter(
    *,
    system: str,
    client: SystemClient,
    mappings: MappingSet,
    options: StripeOptions,
    wall_clock: Callable[[], float] = time.time,
) -> StripeAdapter:
    """The Stripe adapter for ``system``; ``wall_clock`` (epoch seconds) is for tests."""
    return StripeAdapter(
        system=system, client=client, mappings=mappings, options=options, wall_clock=wall_clock
    )
