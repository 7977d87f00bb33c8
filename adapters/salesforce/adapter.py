"""The Salesforce adapter: the CRM's feeds and commands behind :class:`VendorAdapter`."""

from __future__ import annotations

from collections.abc import Sequence

from actors.errors import PermanentError
from actors.messages import (
    AnyCommand,
    UpdateAccountFields,
    UpdateBillingProgress,
    UpdateDealStatus,
    UpsertCustomer,
    command_tag,
)

from ..base import ChangeFeed, CommandResult, ProjectTotals, TotalsQuery
from ..governor import Lane
from ..http import SystemClient
from ..mapping import LiveMappings, MappingSet
from .api import SalesforceApi
from .canonical import RecordDecoder
from .customers import CustomerWriter
from .deals import DealWriter
from .feeds import ChangedAccountsFeed, WonDealsFeed
from .options import SalesforceOptions

__all__ = ["SalesforceAdapter", "create_adapter"]

VENDOR = "salesforce"
MAPPED_ENTITIES = (
    "account",
    "account_billing_address",
    "contact",
    "opportunity",
    "opportunity_line",
)
"""The entities of ``config/mappings/salesforce.toml`` this adapter uses."""


class SalesforceAdapter:
    """One Salesforce org spoken in canonical messages.

    Feeds: ``won_deals`` (→ deal_to_project) and ``changed_accounts`` (→ customer_master).
    Commands: UpdateDealStatus, UpdateBillingProgress, UpdateAccountFields,
    UpsertCustomer; batched write-backs through :meth:`update_deal_statuses` and
    :meth:`upsert_customers` (sObject Collections, 200 records a call). A CRM keeps no
    project totals, so :meth:`totals` is a PermanentError.
    """

    def __init__(
        self,
        *,
        system: str,
        client: SystemClient,
        mappings: MappingSet,
        options: SalesforceOptions,
    ) -> None:
        self.system = system
        self.client = client
        self.options = options
        self.api = SalesforceApi(client, options)
        self.mappings = LiveMappings(mappings, vendor=VENDOR, required=MAPPED_ENTITIES)
        decoder = RecordDecoder(self.mappings, options)
        shared = {"system": system, "api": self.api, "decoder": decoder, "options": options}
        self._feeds: tuple[ChangeFeed, ...] = (
            WonDealsFeed(**shared),
            ChangedAccountsFeed(**shared),
        )
        self.deals = DealWriter(system=system, api=self.api, options=options)
        self.customers = CustomerWriter(
            system=system, api=self.api, mappings=self.mappings, options=options
        )

    def feeds(self) -> Sequence[ChangeFeed]:
        """``won_deals`` and ``changed_accounts``."""
        return self._feeds

    def lane_for(self, command: AnyCommand) -> Lane:
        """Billing progress is feedback (analytics); everything else is master data."""
        if isinstance(command, UpdateBillingProgress):
            return Lane.ANALYTICS
        return Lane.MASTER_DATA

    async def execute(self, command: AnyCommand) -> CommandResult:
        """Apply one command idempotently; other commands are a PermanentError."""
        match command:
            case UpdateDealStatus():
                return await self.deals.update_deal_status(command)
            case UpdateBillingProgress():
                return await self.deals.update_billing_progress(command)
            case UpdateAccountFields():
                return await self.customers.update_account_fields(command)
            case UpsertCustomer():
                return await self.customers.upsert_customer(command)
        raise PermanentError(
            f"salesforce does not handle {command_tag(command)}",
            system=self.system,
            code="UNSUPPORTED_COMMAND",
        )

    async def update_deal_statuses(
        self, commands: Sequence[UpdateDealStatus]
    ) -> list[CommandResult]:
        """Batched deal write-backs; see :meth:`DealWriter.update_deal_statuses`."""
        return await self.deals.update_deal_statuses(commands)

    async def upsert_customers(self, commands: Sequence[UpsertCustomer]) -> list[CommandResult]:
        """Batched account upserts; see :meth:`CustomerWriter.upsert_customers`."""
        return await self.customers.upsert_customers(commands)

    async def totals(self, query: TotalsQuery) -> ProjectTotals:
        """Not offered: a CRM holds no hours or billed amounts per project and period."""
        raise PermanentError(
            "salesforce keeps no project totals (reconcile compares PSA, ERP and billing)",
            system=self.system,
            code="UNSUPPORTED_TOTALS",
        )

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self.client.aclose()


def create_adapter(
    *, system: str, client: SystemClient, mappings: MappingSet, options: SalesforceOptions
) -> SalesforceAdapter:
    """The adapter of one configured Salesforce system."""
    return SalesforceAdapter(system=system, client=client, mappings=mappings, options=options)
