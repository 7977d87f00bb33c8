"""A won deal, checked and read as a delivery plan (the pure half of deal_to_project).

:func:`check_deal` returns either the :class:`DealFacts` the workflow provisions from
(account chain, billing contact, legal entity and its ERP, currency, amount) or the
:class:`Problem` list that stops it, each naming the record, the field and what to fix.
:func:`plan_project` then turns the facts into the canonical project (milestones from
fixed-fee lines, resource demand from time-and-materials lines), its milestone billing
schedule and its subscription lines. Everything here is deterministic in the deal, so a
resumed or replayed run derives the same ids and commands.
"""

from __future__ import annotations

import calendar
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from msgspec.structs import replace

from actors.messages import (
    Account,
    BillingSchedule,
    BillingScheduleItem,
    Contact,
    DealWon,
    FinancialDimensions,
    Milestone,
    Money,
    Opportunity,
    OpportunityLine,
    Project,
    ResourceDemand,
    SubscriptionLine,
)

from .spec import Category

__all__ = [
    "DealFacts",
    "DealPlan",
    "Problem",
    "check_deal",
    "deal_amount",
    "demand_id",
    "line_amount",
    "milestone_id",
    "plan_project",
    "project_id",
]

_HUNDRED = Decimal(100)
_MONTHS = {"month": 1, "quarter": 3, "year": 12}


def project_id(opportunity_id: str) -> str:
    """The canonical project of a won deal: one project per opportunity, for ever."""
    return f"PRJ-{opportunity_id}"


def milestone_id(line_id: str) -> str:
    """The canonical billing milestone of a fixed-fee deal line."""
    return f"MS-{line_id}"


def demand_id(line_id: str) -> str:
    """The canonical resource demand of a time-and-materials deal line."""
    return f"RD-{line_id}"


@dataclass(frozen=True)
class Problem:
    """One reason a deal cannot be activated, in words finance operations can act on."""

    category: Category
    message: str


@dataclass(frozen=True, kw_only=True)
class DealFacts:
    """What a valid deal resolves to: the records and routing the steps use."""

    deal: Opportunity
    account: Account
    """The deal's account, its legal entity and currency filled in from the deal."""
    ancestors: tuple[Account, ...]
    """The account's parents, nearest first, up to the top of its hierarchy."""
    billing_contact: Contact
    legal_entity: str
    erp: str
    currency: str
    amount: Money


@dataclass(frozen=True, kw_only=True)
class DealPlan:
    """The project, milestone schedule and subscriptions a valid deal becomes."""

    project: Project
    template: str
    schedule: BillingSchedule | None
    subscriptions: tuple[SubscriptionLine, ...]


def line_amount(line: OpportunityLine) -> Money:
    """The line's total: the CRM's, else quantity x unit price."""
    return line.total if line.total is not None else line.unit_price * line.quantity


def deal_amount(deal: Opportunity) -> Money | None:
    """The deal's amount (the CRM's rollup, else the sum of its lines) — the money at risk."""
    if deal.amount is not None:
        return deal.amount
    if not deal.lines:
        return None
    try:
        total = line_amount(deal.lines[0])
        for line in deal.lines[1:]:
            total = total + line_amount(line)
    except ValueError:  # lines in several currencies have no sum
        return line_amount(deal.lines[0])
    return total


def check_deal(
    event: DealWon,
    *,
    erp_for: Callable[[str | None], str | None],
    entity_currencies: Mapping[str, Collection[str]] | None = None,
) -> DealFacts | list[Problem]:
    """Check a won deal; the facts to provision from, or every problem found.

    ``entity_currencies`` (legal entity → currencies it bills in) is checked when given;
    without it the ERP's own currency table is the judge (see deal_to_project).
    """
    deal = event.opportunity
    what = _deal_name(deal)
    problems: list[Problem] = []
    account = event.account
    if account is None or account.id != deal.account_id:
        problems.append(
            Problem(
                "master_data",
                f"{what}: its account {deal.account_id} could not be read from the CRM; "
                "check that the account exists and that pssync's CRM user can see it.",
            )
        )
        return problems + _line_problems(deal, what)
    ancestors, hierarchy_problem = _ancestors(account, event.account_hierarchy)
    if hierarchy_problem:
        problems.append(Problem("master_data", f"{what}: {hierarchy_problem}"))
    contact = account.billing_contact or next(iter(event.contacts), None)
    if contact is None:
        problems.append(
            Problem(
                "master_data",
                f"{what}: account {_account_name(account)} has no billing contact; set the "
                "account's Billing Contact in the CRM so invoices have a recipient.",
            )
        )
    entity, erp = _legal_entity(deal, account, what, erp_for, problems)
    currency = _currency(deal, account, entity, what, entity_currencies, problems)
    problems += _line_problems(deal, what)
    if problems:
        return problems
    # No problem means each was found (the checks above append one for every None).
    assert contact is not None
    assert entity is not None
    assert erp is not None
    assert currency is not None
    amount = deal_amount(deal) or Money.zero(currency)
    provisioned = account
    if account.legal_entity is None or account.currency is None:
        # The deal says what the account does not: book the customer the deal's way.
        provisioned = replace(
            account,
            legal_entity=account.legal_entity or entity,
            currency=account.currency or currency,
        )
    return DealFacts(
        deal=deal,
        account=provisioned,
        ancestors=ancestors,
        billing_contact=contact,
        legal_entity=entity,
        erp=erp,
        currency=currency,
        amount=amount,
    )


def _deal_name(deal: Opportunity) -> str:
    return f"Deal {deal.name!r} ({deal.id})" if deal.name else f"Deal {deal.id}"


def _account_name(account: Account) -> str:
    return f"{account.name!r} ({account.id})"


def _ancestors(account: Account, hierarchy: tuple[Account, ...]) -> tuple[tuple[Account, ...], str]:
    """The parent chain from the event, and what is wrong with it ('' if nothing)."""
    by_id = {parent.id: parent for parent in hierarchy}
    chain: list[Account] = []
    seen = {account.id}
    current = account
    while current.parent_id:
        if current.parent_id in seen:
            return tuple(chain), (
                f"the hierarchy of account {_account_name(account)} loops back to account "
                f"{current.parent_id}; fix the Parent Account fields in the CRM so the "
                "hierarchy has a top."
            )
        parent = by_id.get(current.parent_id)
        if parent is None:
            return tuple(chain), (
                f"the parent {current.parent_id} of account {_account_name(current)} could "
                "not be read from the CRM (missing, not visible to pssync, or the hierarchy "
                "is deeper than the configured limit); fix the Parent Account or the access."
            )
        chain.append(parent)
        seen.add(parent.id)
        current = parent
    return tuple(chain), ""


def _legal_entity(
    deal: Opportunity,
    account: Account,
    what: str,
    erp_for: Callable[[str | None], str | None],
    problems: list[Problem],
) -> tuple[str | None, str | None]:
    entity = deal.legal_entity or account.legal_entity
    if entity is None:
        problems.append(
            Problem(
                "master_data",
                f"{what}: no legal entity — neither the deal nor account "
                f"{_account_name(account)} names one; set Legal Entity on the account "
                "(and the deal) in the CRM so the project is booked with the right company.",
            )
        )
        return None, None
    if account.legal_entity is not None and account.legal_entity != entity:
        problems.append(
            Problem(
                "master_data",
                f"{what}: the deal's legal entity {entity} differs from account "
                f"{_account_name(account)}'s {account.legal_entity}; make them the same "
                "in the CRM (a customer is booked with one company).",
            )
        )
    erp = erp_for(entity)
    if erp is None:
        problems.append(
            Problem(
                "master_data",
                f"{what}: legal entity {entity} is not booked in any configured ERP; correct "
                "the deal's Legal Entity, or add the entity to an ERP's legal_entities "
                "in pssync's configuration.",
            )
        )
    return entity, erp


def _currency(
    deal: Opportunity,
    account: Account,
    entity: str | None,
    what: str,
    entity_currencies: Mapping[str, Collection[str]] | None,
    problems: list[Problem],
) -> str | None:
    currencies = {line.unit_price.currency for line in deal.lines}
    if deal.amount is not None:
        currency = deal.amount.currency
    elif deal.lines:
        currency = deal.lines[0].unit_price.currency
    else:
        currency = account.currency
    if currency is None:
        problems.append(Problem("contract", f"{what}: no currency; set the deal's currency."))
        return None
    if currencies - {currency}:
        problems.append(
            Problem(
                "contract",
                f"{what}: lines are in {', '.join(sorted(currencies))} but the deal is in "
                f"{currency}; put every line in the deal's currency.",
            )
        )
    if account.currency is not None and account.currency != currency:
        problems.append(
            Problem(
                "contract",
                f"{what}: the deal is in {currency} but account {_account_name(account)} is "
                f"billed in {account.currency}; change the deal's currency, or the "
                "account's billing currency if the customer now pays in the other one.",
            )
        )
    if entity is not None and entity_currencies is not None:
        billed = entity_currencies.get(entity, ())
        if currency not in billed:
            problems.append(
                Problem(
                    "contract",
                    f"{what}: the deal is in {currency}, which legal entity {entity} does not "
                    f"bill in (it bills in {', '.join(sorted(billed)) or 'no currency'}); "
                    "re-price the deal in a billing currency or contract it with another "
                    "legal entity.",
                )
            )
    return currency


def _line_problems(deal: Opportunity, what: str) -> list[Problem]:
    if not deal.lines:
        return [
            Problem(
                "contract",
                f"{what}: has no product lines; add the contract lines (fixed fee, time and "
                "materials or subscription) before closing it as won.",
            )
        ]
    problems: list[Problem] = []
    if not (deal.project_template_id or deal.service_line):
        problems.append(
            Problem(
                "contract",
                f"{what}: no service line; set Service Line so the project gets its template.",
            )
        )
    percents: dict[str, list[Decimal | None]] = {}
    for line in deal.lines:
        where = f"{what} line {line.name!r} ({line.id})" if line.name else f"{what} line {line.id}"
        if line.billing_type is None:
            problems.append(
                Problem(
                    "contract",
                    f"{where}: Billing Type is empty; set fixed_fee, time_and_materials or "
                    "subscription.",
                )
            )
            continue
        if line.unit_price.amount <= 0 or line.quantity <= 0 or line_amount(line).amount <= 0:
            problems.append(
                Problem(
                    "contract",
                    f"{where}: amount {line_amount(line)} (quantity {line.quantity} x "
                    f"{line.unit_price}) is not positive; correct the quantity or price.",
                )
            )
        if line.billing_type == "fixed_fee":
            group = line.product_code or line.service_line or ""
            percents.setdefault(group, []).append(line.milestone_percent)
        elif line.billing_type == "subscription":
            if line.billing_frequency not in _MONTHS:
                problems.append(
                    Problem(
                        "contract",
                        f"{where}: a subscription needs a recurring Billing Frequency "
                        "(monthly, quarterly or annual).",
                    )
                )
            if line.quantity != line.quantity.to_integral_value():
                problems.append(
                    Problem(
                        "contract",
                        f"{where}: quantity {line.quantity} is the subscription's term in "
                        "billing periods and must be whole.",
                    )
                )
    for group, shares in percents.items():
        named = f" {group}" if group else ""
        if all(share is None for share in shares):
            continue  # the lines' amounts are the milestone amounts
        if any(share is None for share in shares):
            problems.append(
                Problem(
                    "contract",
                    f"{what}: fixed-fee lines{named} mix milestones with and without a "
                    "Milestone Percent; give every milestone of the fee its percent.",
                )
            )
            continue
        total = sum((share for share in shares if share is not None), Decimal(0))
        if total != _HUNDRED:
            problems.append(
                Problem(
                    "contract",
                    f"{what}: the milestone percents of fixed-fee lines{named} add up to "
                    f"{total}%, not 100%; correct the Milestone Percent of those lines.",
                )
            )
    return problems


def plan_project(
    facts: DealFacts, *, won_on: date, dimensions: FinancialDimensions | None = None
) -> DealPlan:
    """The canonical project, milestone schedule and subscriptions of a valid deal.

    The project starts at the earliest line service date, else the close date, else
    ``won_on`` (the day the CRM reported the deal won). ``dimensions`` are defaults (the
    service line's department and class) under the deal's own legal entity.
    """
    deal = facts.deal
    pid = project_id(deal.id)
    starts = [line.service_date for line in deal.lines if line.service_date is not None]
    start = min(starts) if starts else (deal.close_date or won_on)
    milestones = tuple(
        Milestone(
            id=milestone_id(line.id),
            project_id=pid,
            name=line.milestone_name or line.name or line.id,
            contract_line_id=line.id,
            due_date=line.milestone_due_date,
            amount=line_amount(line),
        )
        for line in deal.lines
        if line.billing_type == "fixed_fee"
    )
    demand = tuple(
        ResourceDemand(
            id=demand_id(line.id),
            role=line.role,
            hours=line.hours if line.hours is not None else line.quantity,
            start_date=start,
            bill_rate=line.unit_price,
        )
        for line in deal.lines
        if line.billing_type == "time_and_materials" and line.role
    )
    own = FinancialDimensions(
        legal_entity=facts.legal_entity, subsidiary=facts.legal_entity, project_code=pid
    )
    project = Project(
        id=pid,
        name=deal.name or pid,
        account_id=facts.account.id,
        opportunity_id=deal.id,
        template_id=deal.project_template_id or deal.service_line,
        status="active",
        currency=facts.currency,
        start_date=start,
        budget=facts.amount,
        manager=deal.owner,
        dimensions=own.merged_over(dimensions) if dimensions is not None else own,
        milestones=milestones,
        resource_demand=demand,
    )
    schedule = None
    if milestones:
        schedule = BillingSchedule(
            id=f"{pid}-milestones",
            project_id=pid,
            account_id=facts.account.id,
            kind="milestone",
            currency=facts.currency,
            items=tuple(
                BillingScheduleItem(
                    id=milestone.id,
                    description=milestone.name,
                    amount=milestone.amount or Money.zero(facts.currency),
                    milestone_id=milestone.id,
                    contract_line_id=milestone.contract_line_id,
                )
                for milestone in milestones
            ),
        )
    subscriptions = tuple(
        _subscription(line, start) for line in deal.lines if line.billing_type == "subscription"
    )
    return DealPlan(
        project=project,
        template=deal.project_template_id or deal.service_line,
        schedule=schedule,
        subscriptions=subscriptions,
    )


def _subscription(line: OpportunityLine, default_start: date) -> SubscriptionLine:
    # A CRM subscription line is "N periods at the unit price": N is the term, not a seat
    # count, so the subscription bills the unit price once per period until the end date.
    interval = line.billing_frequency
    assert interval in ("month", "quarter", "year")
    start = line.service_date or default_start
    periods = int(line.quantity)
    return SubscriptionLine(
        id=line.id,
        description=line.name or line.description,
        service_line=line.service_line,
        amount=line.unit_price,
        interval=interval,
        start_date=start,
        end_date=_add_months(start, _MONTHS[interval] * periods),
    )


def _add_months(day: date, months: int) -> date:
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))
