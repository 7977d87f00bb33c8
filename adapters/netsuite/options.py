"""The NetSuite adapter's options: account, record types, id scheme and account references.

Internal ids of reference records (subsidiaries, currencies, departments, classes,
locations, GL accounts, items) differ per account, so they are configuration, keyed by the
canonical codes the workflows carry (``FinancialDimensions``, ISO currency codes, expense
categories). An unknown code is a PermanentError at posting time, never a silent default:
a posting in the wrong department is worse than no posting.
"""

from __future__ import annotations

import re
from typing import Annotated

import msgspec
from msgspec import Meta

__all__ = ["NetSuiteOptions", "RecordTypes"]

_SAFE = re.compile(r"^[A-Za-z0-9_-]+$")

PageSize = Annotated[int, Meta(ge=1, le=1000)]
"""SuiteQL returns at most 1000 rows per page."""


class RecordTypes(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """REST record type names (check them in the account's REST API Browser)."""

    customer: str = "customer"
    job: str = "job"
    timebill: str = "timebill"
    journal_entry: str = "journalentry"
    invoice: str = "invoice"
    customer_payment: str = "customerpayment"


class NetSuiteOptions(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """How one NetSuite account is spoken to (``systems.<erp>`` adapter options)."""

    account_id: str
    """As NetSuite shows it (``1234567_SB1``); the OAuth realm."""
    record_types: RecordTypes = RecordTypes()
    external_id_prefix: str = "pssync"
    """First segment of every external id this adapter writes (letters, digits, ``_``, ``-``)."""

    subsidiaries: dict[str, str] = {}
    """Legal entity or subsidiary code → subsidiary internal id."""
    default_subsidiary_id: str | None = None
    """Used when a record's dimensions name no subsidiary or legal entity."""
    currencies: dict[str, str] = {}
    """ISO 4217 code → currency internal id (both directions are needed)."""
    departments: dict[str, str] = {}
    classes: dict[str, str] = {}
    """FinancialDimensions.cost_centre → NetSuite class (``classification``) internal id."""
    locations: dict[str, str] = {}
    employees: dict[str, str] = {}
    """Consultant id → employee internal id, for consultants whose time entries carry no
    ERP reference; others are referenced by external id (see ``employee_ref``)."""

    time_item_id: str | None = None
    """Service item on time bills (optional)."""
    invoice_item_id: str | None = None
    """Service item for invoice lines without a milestone."""
    milestone_item_id: str | None = None
    """Service item for milestone invoice lines (defaults to ``invoice_item_id``)."""

    expense_accounts: dict[str, str] = {}
    """Expense category → GL account internal id (the debit side)."""
    default_expense_account_id: str | None = None
    reimbursement_account_id: str | None = None
    """Credit side of reimbursable expenses (employee reimbursements liability)."""
    expense_offset_account_id: str | None = None
    """Credit side of non-reimbursable expenses (defaults to the reimbursement account)."""
    receivables_account_id: str | None = None
    """Accounts receivable, credited when an invoice is voided or written off."""
    void_account_id: str | None = None
    """Debited when billing voids an invoice (revenue reversal)."""
    write_off_account_id: str | None = None
    """Debited when billing marks an invoice uncollectible (bad debt)."""
    payment_account_id: str | None = None
    """Deposit account of customer payments (NetSuite's default when unset)."""

    invoice_against_job: bool = True
    """Invoice the project (job) rather than the customer when the invoice names one, so
    receivables reconcile per project."""
    link_customer_parent: bool = True
    """Send ``parent`` for sub-customers (the parent must be upserted first)."""

    suiteql_page_size: PageSize = 1000
    lookup_chunk_size: PageSize = 500
    """External ids per look-before-create SuiteQL query (an ``IN`` list)."""
    max_parallel_upserts: Annotated[int, Meta(ge=1)] = 4
    """Upserts in flight for one batch; also capped at the governor's max_concurrency."""

    def __post_init__(self) -> None:
        if not _SAFE.match(self.external_id_prefix) or len(self.external_id_prefix) > 20:
            raise ValueError("external_id_prefix: 1-20 letters, digits, '_' or '-'")
        if self.lookup_chunk_size > self.suiteql_page_size:
            raise ValueError("lookup_chunk_size must not exceed suiteql_page_size")

    def currency_iso(self, internal_id: str) -> str | None:
        """The ISO code of a currency internal id, if configured."""
        for code, value in self.currencies.items():
            if value == internal_id:
                return code
        return None
