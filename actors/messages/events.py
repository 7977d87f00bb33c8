"""Events: facts a system reported, journaled and dispatched to workflows.

Every event is a frozen Struct tagged by ``type``. Tags are explicit dotted strings, never
derived from the class name, so a class may be renamed but a tag never changes or is
reused: journal rows carry it forever. :data:`EVENT_TYPES` is the registry.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Annotated

from msgspec import Meta, Struct

from .billing import Invoice, InvoiceStatus, Payment
from .common import AwareDatetime, ExternalRef, FieldChange, NonEmptyStr, tag_registry
from .money import Money
from .parties import Account, Contact
from .projects import Milestone, Project
from .sales import Contract, Opportunity
from .work import ExpenseEntry, TimeEntry

__all__ = [
    "EVENT_TYPES",
    "AccountChanged",
    "AnyEvent",
    "BillingPeriod",
    "BillingPeriodClosed",
    "ContractApproved",
    "DealWon",
    "Event",
    "ExpenseApproved",
    "InvoiceIssued",
    "InvoiceStatusChanged",
    "MilestoneCompleted",
    "PaymentReceived",
    "ProjectActivated",
    "ReconciliationRequested",
    "TimeApproved",
    "event_tag",
]


class Event(Struct, frozen=True, kw_only=True, tag_field="type"):
    """Base of all events; the closed union of its subclasses is :data:`AnyEvent`."""

    def ordering_key(self) -> str:
        """The entity whose events must be handled in order (``project:P-1``)."""
        # msgspec Structs cannot be ABCs; every tagged subclass defines its key.
        raise TypeError(f"{type(self).__name__} defines no ordering key")


class DealWon(Event, frozen=True, kw_only=True, tag="deal.won"):
    """Sent by the CRM poller when an opportunity reaches a won stage."""

    opportunity: Opportunity
    account: Account | None = None
    contacts: tuple[Contact, ...] = ()
    account_hierarchy: tuple[Account, ...] = ()
    """The account's parents, nearest first, as far as the CRM could read them."""

    def ordering_key(self) -> str:
        return f"opportunity:{self.opportunity.id}"


class AccountChanged(Event, frozen=True, kw_only=True, tag="account.changed"):
    """Sent by any system's poller when an account's fields change (checked by ownership)."""

    account: Account
    """The account as the source system now has it."""
    changes: tuple[FieldChange, ...] = ()

    def ordering_key(self) -> str:
        return f"account:{self.account.id}"

    def changed_fields(self) -> frozenset[str]:
        """The names of the fields that changed."""
        return frozenset(change.field for change in self.changes)


class ContractApproved(Event, frozen=True, kw_only=True, tag="contract.approved"):
    """Sent by the CRM poller when a contract is signed and approved."""

    contract: Contract

    def ordering_key(self) -> str:
        return f"contract:{self.contract.id}"


class ProjectActivated(Event, frozen=True, kw_only=True, tag="project.activated"):
    """Sent by the deal_to_project workflow once a project exists in every system."""

    project: Project
    refs: tuple[ExternalRef, ...] = ()
    """Where the project and its customer now live (PSA workspace, ERP job, billing customer)."""

    def ordering_key(self) -> str:
        return f"project:{self.project.id}"


class TimeApproved(Event, frozen=True, kw_only=True, tag="time.approved"):
    """Sent by the PSA poller for each time entry on an approved timesheet."""

    entry: TimeEntry

    def ordering_key(self) -> str:
        return f"project:{self.entry.project_id}"


class ExpenseApproved(Event, frozen=True, kw_only=True, tag="expense.approved"):
    """Sent by the PSA poller for each expense on an approved expense report."""

    entry: ExpenseEntry

    def ordering_key(self) -> str:
        return f"project:{self.entry.project_id}"


class MilestoneCompleted(Event, frozen=True, kw_only=True, tag="milestone.completed"):
    """Sent by the PSA poller when a milestone is completed or approved for billing."""

    milestone: Milestone

    def ordering_key(self) -> str:
        return f"project:{self.milestone.project_id}"


class InvoiceIssued(Event, frozen=True, kw_only=True, tag="invoice.issued"):
    """Sent by the billing poller when an invoice is finalized (gets a number)."""

    invoice: Invoice

    def ordering_key(self) -> str:
        return f"invoice:{self.invoice.id}"


class InvoiceStatusChanged(Event, frozen=True, kw_only=True, tag="invoice.status_changed"):
    """Sent by the billing poller when an invoice moves (open → paid, void, uncollectible)."""

    invoice_id: NonEmptyStr
    account_id: str | None = None
    previous: InvoiceStatus | None = None
    status: InvoiceStatus
    amount_due: Money | None = None
    amount_paid: Money | None = None
    changed_at: AwareDatetime | None = None

    def ordering_key(self) -> str:
        return f"invoice:{self.invoice_id}"


class PaymentReceived(Event, frozen=True, kw_only=True, tag="payment.received"):
    """Sent by the billing poller when a customer payment succeeds."""

    payment: Payment

    def ordering_key(self) -> str:
        # Ordered with its invoice's status changes when it pays one.
        if self.payment.invoice_id:
            return f"invoice:{self.payment.invoice_id}"
        return f"account:{self.payment.account_id}"


class ReconciliationRequested(Event, frozen=True, kw_only=True, tag="reconciliation.requested"):
    """Sent by the scheduler (or an operator) to compare PSA, ERP and billing totals."""

    period_start: date
    period_end: date
    project_ids: tuple[str, ...] = ()
    """Limit to these projects; empty means every active project."""
    requested_by: str = "schedule"

    def ordering_key(self) -> str:
        return f"reconcile:{self.period_start.isoformat()}..{self.period_end.isoformat()}"


BillingPeriod = Annotated[str, Meta(pattern=r"^\d{4}-(0[1-9]|1[0-2])$")]
"""A calendar month, ``YYYY-MM`` (UTC)."""


class BillingPeriodClosed(Event, frozen=True, kw_only=True, tag="billing_period.closed"):
    """Sent by the close scheduler once a month is over: issue its T&M draft invoices."""

    period: BillingPeriod
    requested_by: str = "schedule"

    def ordering_key(self) -> str:
        return f"period:{self.period}"


AnyEvent = (
    DealWon
    | AccountChanged
    | ContractApproved
    | ProjectActivated
    | TimeApproved
    | ExpenseApproved
    | MilestoneCompleted
    | InvoiceIssued
    | InvoiceStatusChanged
    | PaymentReceived
    | ReconciliationRequested
    | BillingPeriodClosed
)
"""The closed union of events; add new classes here (a test fails if one is left out)."""


def event_tag(event: Event | type[Event]) -> str:
    """The wire tag of an event or event class (``deal.won``)."""
    return event.__struct_config__.tag


EVENT_TYPES: Mapping[str, type[Event]] = tag_registry(AnyEvent)
"""Tag → event class, for every member of :data:`AnyEvent`."""
