"""What was sold: opportunities and contracts with their lines."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Literal

from msgspec import Struct

from .common import AwareDatetime, ExternalRef, NonEmptyStr
from .dimensions import FinancialDimensions
from .money import CurrencyCode, Money, check_currency

__all__ = [
    "Contract",
    "ContractLine",
    "ContractLineKind",
    "ContractMilestone",
    "FixedFeeLine",
    "Opportunity",
    "OpportunityLine",
    "Rate",
    "RateCard",
    "SubscriptionLine",
    "TimeAndMaterialsLine",
]


class OpportunityLine(Struct, frozen=True, kw_only=True):
    """One product or service line of an opportunity (Salesforce OpportunityLineItem)."""

    id: NonEmptyStr
    name: str = ""
    product_code: str = ""
    service_line: str = ""
    """The practice or service line; picks the PSA project template."""
    quantity: Decimal = Decimal(1)
    unit_price: Money
    total: Money | None = None
    service_date: date | None = None
    description: str = ""
    billing_type: Literal["fixed_fee", "time_and_materials", "subscription"] | None = None
    """How the line is billed; None when the CRM does not say (the deal is then invalid)."""
    billing_frequency: Literal["one_time", "month", "quarter", "year"] | None = None
    milestone_name: str = ""
    milestone_due_date: date | None = None
    milestone_percent: Decimal | None = None
    """The share of the line billed at this milestone, in percent (0-100)."""
    role: str = ""
    """For time-and-materials lines: the role whose rate applies."""
    hours: Decimal | None = None
    """For time-and-materials lines: the estimated hours."""


class Opportunity(Struct, frozen=True, kw_only=True):
    """A CRM deal; ``is_won`` comes from the stage's metadata, never from its label."""

    id: NonEmptyStr
    account_id: NonEmptyStr
    name: str = ""
    stage: str = ""
    is_won: bool = False
    is_closed: bool = False
    close_date: date | None = None
    amount: Money | None = None
    service_line: str = ""
    project_template_id: str | None = None
    legal_entity: str | None = None
    primary_contact_id: str | None = None
    owner: str = ""
    lines: tuple[OpportunityLine, ...] = ()
    external_refs: tuple[ExternalRef, ...] = ()
    updated_at: AwareDatetime | None = None


class ContractMilestone(Struct, frozen=True, kw_only=True):
    """A billable milestone of a fixed-fee line: ``amount`` is invoiced when it completes."""

    id: NonEmptyStr
    name: str = ""
    amount: Money
    due_date: date | None = None


class Rate(Struct, frozen=True, kw_only=True):
    """The hourly bill (and optionally cost) rate of one role."""

    role: NonEmptyStr
    bill_rate: Money
    cost_rate: Money | None = None


class RateCard(Struct, frozen=True, kw_only=True):
    """Bill rates by role for time-and-materials work."""

    id: NonEmptyStr
    name: str = ""
    rates: tuple[Rate, ...] = ()

    def rate_for(self, role: str) -> Rate | None:
        """The rate of ``role``, or ``None`` if the card has none."""
        return next((rate for rate in self.rates if rate.role == role), None)


class ContractLine(Struct, frozen=True, kw_only=True, tag_field="kind"):
    """Base of the contract line kinds; decode the :data:`ContractLineKind` union."""

    id: NonEmptyStr
    description: str = ""
    service_line: str = ""
    dimensions: FinancialDimensions | None = None


class FixedFeeLine(ContractLine, frozen=True, kw_only=True, tag="fixed_fee"):
    """A fixed price, invoiced by milestone."""

    amount: Money
    milestones: tuple[ContractMilestone, ...] = ()


class TimeAndMaterialsLine(ContractLine, frozen=True, kw_only=True, tag="time_and_materials"):
    """Hours billed at the rate card's rates, optionally capped (not-to-exceed)."""

    rate_card: RateCard
    cap: Money | None = None


class SubscriptionLine(ContractLine, frozen=True, kw_only=True, tag="subscription"):
    """A recurring charge (retainer, managed service), billed every ``interval_count`` intervals."""

    amount: Money
    """The price per interval."""
    interval: Literal["month", "quarter", "year"] = "month"
    interval_count: int = 1
    quantity: Decimal = Decimal(1)
    start_date: date
    end_date: date | None = None


ContractLineKind = FixedFeeLine | TimeAndMaterialsLine | SubscriptionLine
"""The closed union of contract line kinds, tagged by ``kind``."""


class Contract(Struct, frozen=True, kw_only=True):
    """A signed agreement with a customer; its lines say how the work is billed."""

    id: NonEmptyStr
    account_id: NonEmptyStr
    opportunity_id: str | None = None
    number: str = ""
    status: str = ""
    currency: CurrencyCode
    legal_entity: str | None = None
    start_date: date | None = None
    end_date: date | None = None
    signed_on: date | None = None
    payment_terms_days: int | None = None
    lines: tuple[ContractLineKind, ...] = ()
    external_refs: tuple[ExternalRef, ...] = ()
    updated_at: AwareDatetime | None = None

    def __post_init__(self) -> None:
        check_currency(self.currency)
