"""The NetSuite (ERP) adapter: canonical commands in, REST upserts and SuiteQL out.

Supported commands: UpsertCustomer, UpsertJob (master data lane); PostTimeEntries,
PostExpenseLines, PostInvoice, ApplyPayment, UpdateInvoiceStatus (critical lane). Every
write is a ``PUT …/eid:<external id>`` upsert preceded by a SuiteQL look (see
:mod:`.context`), so a repeated command leaves one record and reports ``created=False``.
``created`` comes from that look (the upsert's 204 does not say): for a batch of time
entries it is true when at least one time bill was new. Calls per command: customer, job,
invoice, payment, expense batch 2 (1 on a replay of a posting); N time entries
``ceil(N / lookup_chunk_size)`` + the missing ones; void / write-off 3 (1 on a replay).
Reconciliation: :meth:`NetSuiteAdapter.totals` (time bills) and
:meth:`NetSuiteAdapter.receivables` (invoices). NetSuite offers no change feed here:
the ERP is a destination; billing and the PSA report the facts.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence

from actors.errors import PermanentError
from actors.messages import (
    AnyCommand,
    ApplyPayment,
    PostExpenseLines,
    PostInvoice,
    PostTimeEntries,
    UpdateInvoiceStatus,
    UpsertCustomer,
    UpsertJob,
    command_tag,
)

from ..base import ChangeFeed, CommandResult, ProjectTotals, TotalsQuery
from ..governor import Lane
from ..http import SystemClient
from ..mapping import LiveMappings, MappingSet
from .context import Context
from .expenses import post_expense_lines
from .fields import MAPPED_ENTITIES, FieldMaps
from .masterdata import upsert_customer, upsert_job
from .options import NetSuiteOptions
from .receivables import apply_payment, post_invoice, update_invoice_status
from .references import References
from .timebills import post_time_entries
from .totals import receivables_totals, time_totals
from .wire import RecordService

__all__ = ["NetSuiteAdapter", "create_adapter"]

VENDOR = "netsuite"


class NetSuiteAdapter:
    """One NetSuite account, spoken in canonical messages (a ``VendorAdapter``)."""

    def __init__(
        self,
        *,
        system: str,
        client: SystemClient,
        mappings: MappingSet,
        options: NetSuiteOptions,
        today: Callable[[], dt.date] | None = None,
    ) -> None:
        self.system = system
        self.client = client
        self.options = options
        self.mappings = LiveMappings(mappings, vendor=VENDOR, required=MAPPED_ENTITIES)
        extra = {"today": today} if today is not None else {}
        self._context = Context(
            system=system,
            options=options,
            records=RecordService(client, page_size=options.suiteql_page_size),
            refs=References(options, system=system),
            fields=FieldMaps(self.mappings),
            **extra,
        )

    def feeds(self) -> Sequence[ChangeFeed]:
        """None: NetSuite is where postings go, not where business facts come from."""
        return ()

    def lane_for(self, command: AnyCommand) -> Lane:
        """Financial postings travel CRITICAL, customers and jobs MASTER_DATA."""
        match command:
            case PostTimeEntries() | PostExpenseLines() | PostInvoice() | ApplyPayment():
                return Lane.CRITICAL
            case UpdateInvoiceStatus():
                return Lane.CRITICAL
            case _:
                return Lane.MASTER_DATA

    async def execute(self, command: AnyCommand) -> CommandResult:
        """Apply one command idempotently (AdapterError subclasses or PayloadError on failure)."""
        ctx = self._context
        match command:
            case UpsertCustomer():
                return await upsert_customer(ctx, command)
            case UpsertJob():
                return await upsert_job(ctx, command)
            case PostTimeEntries():
                return await post_time_entries(ctx, command)
            case PostExpenseLines():
                return await post_expense_lines(ctx, command)
            case PostInvoice():
                return await post_invoice(ctx, command)
            case ApplyPayment():
                return await apply_payment(ctx, command)
            case UpdateInvoiceStatus():
                return await update_invoice_status(ctx, command)
            case _:
                raise PermanentError(
                    f"netsuite does not handle {command_tag(command)}",
                    system=self.system,
                    code="UNSUPPORTED_COMMAND",
                )

    async def totals(self, query: TotalsQuery) -> ProjectTotals:
        """Hours, billable amount and count of the project's time bills in the period."""
        return await time_totals(self._context, query)

    async def receivables(self, query: TotalsQuery) -> ProjectTotals:
        """Invoiced amount and invoice count of the project in the period."""
        return await receivables_totals(self._context, query)

    async def aclose(self) -> None:
        """Close the system's HTTP client."""
        await self.client.aclose()


def create_adapter(
    *,
    system: str,
    client: SystemClient,
    mappings: MappingSet,
    options: NetSuiteOptions,
) -> NetSuiteAdapter:
    """The adapter of one configured NetSuite system (ConfigError for a mapping gap)."""
    return NetSuiteAdapter(system=system, client=client, mappings=mappings, options=options)
