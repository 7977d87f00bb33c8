"""Work done on projects: time entries and expenses, as the PSA records them."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from msgspec import Struct

from .common import AwareDatetime, ExternalRef, NonEmptyStr
from .dimensions import FinancialDimensions
from .money import Money

__all__ = ["ExpenseEntry", "TimeEntry"]


class TimeEntry(Struct, frozen=True, kw_only=True):
    """Hours a consultant worked on a project on one day.

    ``hours`` is an exact Decimal; vendors that count minutes (Kantata ``time_in_minutes``)
    convert with ``Decimal(minutes) / 60``. Rates are per hour.
    """

    id: NonEmptyStr
    project_id: NonEmptyStr
    consultant_id: NonEmptyStr
    date_performed: date
    hours: Decimal
    billable: bool = True
    approved: bool = False
    bill_rate: Money | None = None
    cost_rate: Money | None = None
    role: str = ""
    phase_id: str | None = None
    task_id: str | None = None
    notes: str = ""
    exported: bool = False
    """Already posted to the ERP (Kantata marks this with an external reference)."""
    dimensions: FinancialDimensions | None = None
    external_refs: tuple[ExternalRef, ...] = ()
    updated_at: AwareDatetime | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.hours, Decimal) or not self.hours.is_finite():
            raise TypeError(f"hours must be a finite Decimal, not {self.hours!r}")

    def bill_amount(self) -> Money | None:
        """Hours x bill rate, rounded to the currency's minor unit; ``None`` if non-billable."""
        if not self.billable or self.bill_rate is None:
            return None
        return (self.bill_rate * self.hours).rounded()

    def cost_amount(self) -> Money | None:
        """Hours x cost rate, rounded to the currency's minor unit; ``None`` without a rate."""
        if self.cost_rate is None:
            return None
        return (self.cost_rate * self.hours).rounded()


class ExpenseEntry(Struct, frozen=True, kw_only=True):
    """An expense a consultant incurred for a project."""

    id: NonEmptyStr
    project_id: NonEmptyStr
    consultant_id: NonEmptyStr
    date_incurred: date
    category: str = ""
    amount: Money
    tax: Money | None = None
    billable: bool = True
    reimbursable: bool = True
    approved: bool = False
    notes: str = ""
    receipt_url: str = ""
    exported: bool = False
    dimensions: FinancialDimensions | None = None
    external_refs: tuple[ExternalRef, ...] = ()
    updated_at: AwareDatetime | None = None
