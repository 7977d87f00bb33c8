"""Commands: requests from a workflow to one system actor.

Each carries an ``idempotency_key`` that the system actor passes to the vendor (Stripe's
``Idempotency-Key``, an external id for upserts) so a step retried after a crash applies
its effect once. Workflows derive it from the run and step (deterministic, never random).
Tags are explicit snake_case strings, never reused; :data:`COMMAND_TYPES` is the registry.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from types import MappingProxyType

from msgspec import Struct

from .billing import BillingSchedule, Invoice, InvoiceStatus, Payment
from .common import ExternalRef, FieldChange, NonEmptyStr, tag_registry
from .dimensions import FinancialDimensions
from .money import Money
from .parties import Account, Contact
from .projects import Project
from .sales import SubscriptionLine
from .work import ExpenseEntry, TimeEntry

__all__ = [
    "COMMAND_TYPES",
    "CUSTOMER_FIELDS",
    "CUSTOMER_FIELD_ALIASES",
    "INVOICE_EMAIL",
    "AnyCommand",
    "ApplyPayment",
    "Command",
    "CreateInvoice",
    "CreateProjectFromTemplate",
    "CreateSubscription",
    "FinalizeInvoice",
    "MarkEntriesExported",
    "PostExpenseLines",
    "PostInvoice",
    "PostTimeEntries",
    "UpdateAccountFields",
    "UpdateBillingProgress",
    "UpdateDealStatus",
    "UpdateInvoiceStatus",
    "UpsertBillingSchedule",
    "UpsertCustomer",
    "UpsertJob",
    "UpsertProject",
    "command_tag",
]


class Command(Struct, frozen=True, kw_only=True, tag_field="command"):
    """Base of all commands; the closed union of its subclasses is :data:`AnyCommand`."""

    idempotency_key: NonEmptyStr
    correlation_id: str = ""
    """The business flow's correlation id, sent to vendors that accept one."""


CUSTOMER_FIELD_ALIASES: Mapping[str, str] = MappingProxyType(
    {"parent_account": "parent_id", "payment_terms": "payment_terms_days"}
)
"""Other names of Account attributes (``[governance.customer_master]`` uses them)."""

INVOICE_EMAIL = "invoice_email"
"""The billing contact's email alone (``Account.billing_contact.email``)."""

CUSTOMER_FIELDS: frozenset[str] = frozenset(
    (set(Account.__struct_fields__) - {"id", "external_refs", "updated_at"})
    | set(CUSTOMER_FIELD_ALIASES)
    | {INVOICE_EMAIL}
)
"""The canonical customer fields a write can be restricted to (``UpsertCustomer.fields``):
the Account's attributes but its id, refs and timestamp, the aliases, and ``invoice_email``."""


class UpsertCustomer(Command, frozen=True, kw_only=True, tag="upsert_customer"):
    """Sent by deal_to_project and customer_master; ``fields`` limits what a customer gets."""

    account: Account
    """The whole account: what a customer that does not exist yet is created from."""
    contacts: tuple[Contact, ...] = ()
    fields: tuple[str, ...] = ()
    """The canonical fields (:data:`CUSTOMER_FIELDS`) to write to an existing customer.

    Empty (the default, and what a command written before this field existed decodes to):
    the whole account. Otherwise only these are written, plus what identifies pssync's
    record there (external id, source id or metadata); every other field of the vendor's
    record is left as it is, so a value changed there by the field's owner survives.
    Adapters ask :meth:`writes` rather than reading this.
    """

    def __post_init__(self) -> None:
        unknown = sorted(set(self.fields) - CUSTOMER_FIELDS)
        if unknown:
            raise ValueError(
                f"unknown customer fields {', '.join(map(repr, unknown))}"
                f" (known: {', '.join(sorted(CUSTOMER_FIELDS))})"
            )

    @property
    def restricted(self) -> bool:
        """Whether only :attr:`fields` are to be written (not the whole account)."""
        return bool(self.fields)

    def writes(self, name: str) -> bool:
        """Whether an existing customer's field ``name`` is to be written.

        ``name`` is an Account attribute, an alias, or ``invoice_email``; naming
        ``billing_contact`` writes the contact's email too, naming ``invoice_email`` writes
        only the email.
        """
        if not self.fields:
            return True
        name = CUSTOMER_FIELD_ALIASES.get(name, name)
        named = {CUSTOMER_FIELD_ALIASES.get(field, field) for field in self.fields}
        return name in named or (name == INVOICE_EMAIL and "billing_contact" in named)


class UpdateAccountFields(Command, frozen=True, kw_only=True, tag="update_account_fields"):
    """Sent by customer_master to a system that does not own the changed fields."""

    account_id: NonEmptyStr
    changes: tuple[FieldChange, ...]


class UpsertProject(Command, frozen=True, kw_only=True, tag="upsert_project"):
    """Sent by deal_to_project to the PSA actor to create or update a workspace."""

    project: Project


class CreateProjectFromTemplate(
    Command, frozen=True, kw_only=True, tag="create_project_from_template"
):
    """Sent by deal_to_project to the PSA actor: copy a service-line template's plan."""

    template_id: NonEmptyStr
    project: Project
    """Overrides on the template: name, dates, customer, phases and milestones to add."""


class UpsertJob(Command, frozen=True, kw_only=True, tag="upsert_job"):
    """Sent by deal_to_project to the ERP actor: the project/job with its dimensions."""

    project: Project
    customer_id: NonEmptyStr
    """The customer's id in this ERP."""
    dimensions: FinancialDimensions


class UpsertBillingSchedule(Command, frozen=True, kw_only=True, tag="upsert_billing_schedule"):
    """Sent by deal_to_project to the billing (or PSA) actor: milestone billing plan."""

    schedule: BillingSchedule
    customer_id: NonEmptyStr


class CreateSubscription(Command, frozen=True, kw_only=True, tag="create_subscription"):
    """Sent by deal_to_project to the billing actor for a recurring contract line."""

    customer_id: NonEmptyStr
    project_id: NonEmptyStr
    line: SubscriptionLine


class PostTimeEntries(Command, frozen=True, kw_only=True, tag="post_time_entries"):
    """Sent by time_expense_to_erp to the ERP actor: one project's approved hours, batched."""

    project_id: NonEmptyStr
    entries: tuple[TimeEntry, ...]
    period_start: date | None = None
    period_end: date | None = None
    dimensions: FinancialDimensions | None = None
    """Defaults for entries that carry no dimensions of their own."""


class PostExpenseLines(Command, frozen=True, kw_only=True, tag="post_expense_lines"):
    """Sent by time_expense_to_erp to the ERP actor: one project's approved expenses."""

    project_id: NonEmptyStr
    entries: tuple[ExpenseEntry, ...]
    dimensions: FinancialDimensions | None = None


class MarkEntriesExported(Command, frozen=True, kw_only=True, tag="mark_entries_exported"):
    """Sent by time_expense_to_erp to the PSA actor once the ERP has the entries."""

    time_entry_ids: tuple[str, ...] = ()
    expense_entry_ids: tuple[str, ...] = ()
    exported_to: ExternalRef
    """The ERP document the entries became (time bill, journal entry)."""


class CreateInvoice(Command, frozen=True, kw_only=True, tag="create_invoice"):
    """Sent by milestone_to_invoice to the billing actor: a draft invoice with its lines."""

    invoice: Invoice
    customer_id: NonEmptyStr


class FinalizeInvoice(Command, frozen=True, kw_only=True, tag="finalize_invoice"):
    """Sent by milestone_to_invoice to the billing actor: draft → open, numbered."""

    invoice_id: NonEmptyStr


class PostInvoice(Command, frozen=True, kw_only=True, tag="post_invoice"):
    """Sent by milestone_to_invoice to the ERP actor: the issued invoice as a receivable."""

    invoice: Invoice
    customer_id: NonEmptyStr
    dimensions: FinancialDimensions | None = None


class UpdateInvoiceStatus(Command, frozen=True, kw_only=True, tag="update_invoice_status"):
    """Sent by invoice_feedback to the ERP actor when billing voids or writes off an invoice."""

    invoice_id: NonEmptyStr
    status: InvoiceStatus


class ApplyPayment(Command, frozen=True, kw_only=True, tag="apply_payment"):
    """Sent by invoice_feedback to the ERP actor: a customer payment against receivables."""

    payment: Payment
    customer_id: NonEmptyStr
    invoice_id: str | None = None
    """The invoice's id in this ERP, when the payment settles a known invoice."""


class UpdateDealStatus(Command, frozen=True, kw_only=True, tag="update_deal_status"):
    """Sent by deal_to_project to the CRM actor: write back ids and provisioning status."""

    opportunity_id: NonEmptyStr
    status: NonEmptyStr
    """``provisioning``, ``active`` or ``failed``, as the CRM's custom field expects."""
    refs: tuple[ExternalRef, ...] = ()
    message: str = ""


class UpdateBillingProgress(Command, frozen=True, kw_only=True, tag="update_billing_progress"):
    """Sent by milestone_to_invoice and invoice_feedback to the CRM actor."""

    account_id: NonEmptyStr
    opportunity_id: str | None = None
    project_id: str | None = None
    invoiced: Money
    paid: Money | None = None
    outstanding: Money | None = None


AnyCommand = (
    UpsertCustomer
    | UpdateAccountFields
    | UpsertProject
    | CreateProjectFromTemplate
    | UpsertJob
    | UpsertBillingSchedule
    | CreateSubscription
    | PostTimeEntries
    | PostExpenseLines
    | MarkEntriesExported
    | CreateInvoice
    | FinalizeInvoice
    | PostInvoice
    | UpdateInvoiceStatus
    | ApplyPayment
    | UpdateDealStatus
    | UpdateBillingProgress
)
"""The closed union of commands; add new classes here (a test fails if one is left out)."""


def command_tag(command: Command | type[Command]) -> str:
    """The wire tag of a command or command class (``post_time_entries``)."""
    return command.__struct_config__.tag


COMMAND_TYPES: Mapping[str, type[Command]] = tag_registry(AnyCommand)
"""Tag → command class, for every member of :data:`AnyCommand`."""
