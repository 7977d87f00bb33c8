"""Projects as the PSA plans them: phases (the WBS), milestones and resource demand."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Literal

from msgspec import Struct

from .common import AwareDatetime, ExternalRef, NonEmptyStr
from .dimensions import FinancialDimensions
from .money import CurrencyCode, Money, check_currency

__all__ = ["Milestone", "MilestoneStatus", "Phase", "Project", "ResourceDemand"]

MilestoneStatus = Literal["planned", "completed", "approved"]
"""A milestone is invoiced once ``approved`` (completed and accepted by the customer)."""


class Phase(Struct, frozen=True, kw_only=True):
    """A node of the work breakdown structure; ``parent_id`` nests phases."""

    id: NonEmptyStr
    name: str = ""
    parent_id: str | None = None
    wbs_code: str = ""
    """The outline number (``1.2.3``) the ERP job tasks mirror."""
    start_date: date | None = None
    end_date: date | None = None
    budget: Money | None = None


class Milestone(Struct, frozen=True, kw_only=True):
    """A project milestone; billing ones carry the ``amount`` to invoice."""

    id: NonEmptyStr
    project_id: NonEmptyStr
    name: str = ""
    phase_id: str | None = None
    contract_line_id: str | None = None
    due_date: date | None = None
    completed_on: date | None = None
    status: MilestoneStatus = "planned"
    amount: Money | None = None
    """The fee invoiced when the milestone is approved; ``None`` for non-billing ones."""


class ResourceDemand(Struct, frozen=True, kw_only=True):
    """Hours of a role the project needs in a period (a placeholder until staffed)."""

    id: NonEmptyStr
    role: NonEmptyStr
    hours: Decimal
    start_date: date | None = None
    end_date: date | None = None
    phase_id: str | None = None
    consultant_id: str | None = None
    """Set once a named consultant is assigned."""
    bill_rate: Money | None = None


class Project(Struct, frozen=True, kw_only=True):
    """A delivery project: in the PSA a workspace, in the ERP a project or job."""

    id: NonEmptyStr
    name: NonEmptyStr
    account_id: NonEmptyStr
    opportunity_id: str | None = None
    contract_id: str | None = None
    template_id: str | None = None
    """The PSA service-line template it was created from."""
    status: str = "draft"
    currency: CurrencyCode
    start_date: date | None = None
    end_date: date | None = None
    budget: Money | None = None
    manager: str = ""
    dimensions: FinancialDimensions | None = None
    phases: tuple[Phase, ...] = ()
    milestones: tuple[Milestone, ...] = ()
    resource_demand: tuple[ResourceDemand, ...] = ()
    external_refs: tuple[ExternalRef, ...] = ()
    updated_at: AwareDatetime | None = None

    def __post_init__(self) -> None:
        check_currency(self.currency)
