"""Billing: schedules of what to invoice when, invoices and payments."""

from __future__ import annotations

import enum
from datetime import date
from decimal import Decimal
from typing import Literal

from msgspec import Struct

from .common import AwareDatetime, ExternalRef, NonEmptyStr
from .dimensions import FinancialDimensions
from .money import CurrencyCode, Money, check_currency, sum_money

__all__ = [
    "BillingSchedule",
    "BillingScheduleItem",
    "Invoice",
    "InvoiceLine",
    "InvoiceStatus",
    "Payment",
]


class BillingScheduleItem(Struct, frozen=True, kw_only=True):
    """One planned invoice amount: a milestone fee or one period of a subscription."""

    id: NonEmptyStr
    description: str = ""
    amount: Money
    bill_on: date | None = None
    """Planned invoice date; ``None`` for milestone items, which wait for approval."""
    milestone_id: str | None = None
    contract_line_id: str | None = None
    period_start: date | None = None
    period_end: date | None = None
    status: Literal["planned", "ready", "invoiced", "cancelled"] = "planned"
    invoice_id: str | None = None


class BillingSchedule(Struct, frozen=True, kw_only=True):
    """What a project bills and when, derived from its contract lines."""

    id: NonEmptyStr
    project_id: NonEmptyStr
    account_id: NonEmptyStr
    contract_id: str | None = None
    kind: Literal["milestone", "recurring", "time_and_materials"] = "milestone"
    currency: CurrencyCode
    items: tuple[BillingScheduleItem, ...] = ()
    external_refs: tuple[ExternalRef, ...] = ()

    def __post_init__(self) -> None:
        check_currency(self.currency)

    def total(self) -> Money:
        """The sum of all items that are not cancelled."""
        live = [item.amount for item in self.items if item.status != "cancelled"]
        return sum_money(live, self.currency)


class InvoiceStatus(enum.StrEnum):
    """An invoice's lifecycle state (Stripe's statuses; other systems map onto them)."""

    DRAFT = "draft"
    OPEN = "open"
    PAID = "paid"
    VOID = "void"
    UNCOLLECTIBLE = "uncollectible"


class InvoiceLine(Struct, frozen=True, kw_only=True):
    """One line of an invoice; ``amount`` is quantity x unit price before tax."""

    id: str = ""
    description: str = ""
    quantity: Decimal = Decimal(1)
    unit_price: Money
    amount: Money
    tax: Money | None = None
    project_id: str | None = None
    milestone_id: str | None = None
    billing_schedule_item_id: str | None = None
    time_entry_ids: tuple[str, ...] = ()
    dimensions: FinancialDimensions | None = None


class Invoice(Struct, frozen=True, kw_only=True):
    """An invoice to a customer; ``number`` stays empty until it is finalized."""

    id: NonEmptyStr
    account_id: NonEmptyStr
    number: str = ""
    project_id: str | None = None
    contract_id: str | None = None
    currency: CurrencyCode
    status: InvoiceStatus = InvoiceStatus.DRAFT
    issue_date: date | None = None
    due_date: date | None = None
    lines: tuple[InvoiceLine, ...] = ()
    total: Money | None = None
    """The vendor's total including tax, when it has computed one."""
    amount_due: Money | None = None
    amount_paid: Money | None = None
    legal_entity: str | None = None
    external_refs: tuple[ExternalRef, ...] = ()
    updated_at: AwareDatetime | None = None

    def __post_init__(self) -> None:
        check_currency(self.currency)

    def lines_total(self) -> Money:
        """The sum of line amounts plus line taxes."""
        amounts = [line.amount for line in self.lines]
        amounts += [line.tax for line in self.lines if line.tax is not None]
        return sum_money(amounts, self.currency)


class Payment(Struct, frozen=True, kw_only=True):
    """Money received from a customer, applied to an invoice where known."""

    id: NonEmptyStr
    account_id: NonEmptyStr
    amount: Money
    received_on: date
    invoice_id: str | None = None
    method: str = ""
    """``card``, ``ach``, ``wire``, … as the billing system reports it."""
    reference: str = ""
    fee: Money | None = None
    external_refs: tuple[ExternalRef, ...] = ()
