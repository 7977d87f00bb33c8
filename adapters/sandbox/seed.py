"""Deterministic demo data for a professional-services firm (Salesforce and Kantata sides).

``seed_sandbox(sandbox, seed=0)`` fills whichever of the two vendors the sandbox has; the
same seed always gives the same records (ids included, since ids are counters). What it
creates:

- three legal entities (:data:`LEGAL_ENTITIES`): a US parent billing in USD, a UK entity
  in GBP and an EU entity in EUR — ``Legal_Entity__c`` on accounts and opportunities
  carries the entity code;
- ~25 customer groups in Salesforce: a parent account with one to three subsidiaries in
  other countries (so one hierarchy spans entities and currencies), a billing contact
  each, and an open pipeline of opportunities with line items per service line;
- ~100 Kantata consultants across roles with cost and bill rates in their home entity's
  currency;
- the service-line project templates of :data:`SERVICE_LINES` in Kantata, with phases,
  tasks, billing milestones and resource demand.

The NetSuite and Stripe sides (subsidiaries, items, customers) are seeded by their own
vendors.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass
from typing import Any

from .sandbox import Sandbox


@dataclass(frozen=True)
class LegalEntity:
    code: str
    name: str
    country: str
    currency: str
    cities: tuple[str, ...]


LEGAL_ENTITIES: dict[str, LegalEntity] = {
    entity.code: entity
    for entity in (
        LegalEntity(
            "PSF-US",
            "Northwind Advisory Inc.",
            "US",
            "USD",
            ("New York", "Chicago", "Austin", "Boston", "San Francisco"),
        ),
        LegalEntity(
            "PSF-UK",
            "Northwind Advisory Ltd",
            "GB",
            "GBP",
            ("London", "Manchester", "Edinburgh", "Bristol"),
        ),
        LegalEntity(
            "PSF-EU",
            "Northwind Advisory GmbH",
            "DE",
            "EUR",
            ("Berlin", "Munich", "Amsterdam", "Paris", "Dublin"),
        ),
    )
}

#: Which entity contracts with a customer in a country (EU countries go to PSF-EU).
COUNTRY_ENTITY = {
    "US": "PSF-US",
    "GB": "PSF-UK",
    "DE": "PSF-EU",
    "NL": "PSF-EU",
    "FR": "PSF-EU",
    "IE": "PSF-EU",
}

#: Role → (cost rate, bill rate) per hour in USD; other currencies scale by :data:`FX`.
ROLES: dict[str, tuple[int, int]] = {
    "Analyst": (55, 140),
    "Consultant": (75, 190),
    "Senior Consultant": (95, 240),
    "Manager": (120, 290),
    "Director": (150, 350),
    "Partner": (200, 450),
}
FX = {"USD": 1.0, "GBP": 0.8, "EUR": 0.92}


@dataclass(frozen=True)
class ServiceLine:
    code: str
    title: str
    phases: tuple[dict[str, Any], ...]
    resource_demand: tuple[dict[str, Any], ...]
    fee_usd: tuple[int, int]  # fixed fee or monthly fee range


SERVICE_LINES: dict[str, ServiceLine] = {
    line.code: line
    for line in (
        ServiceLine(
            "implementation",
            "Implementation",
            (
                {
                    "title": "Discover",
                    "duration_days": 15,
                    "tasks": [
                        {"title": "Stakeholder workshops", "hours": 40},
                        {"title": "Current-state assessment", "hours": 60},
                    ],
                    "milestones": [{"title": "Blueprint signed off", "billing_percent": 20}],
                },
                {
                    "title": "Build",
                    "duration_days": 45,
                    "tasks": [
                        {"title": "Configuration", "hours": 240},
                        {"title": "Integrations", "hours": 160},
                        {"title": "Data migration", "hours": 120},
                    ],
                    "milestones": [{"title": "Build complete", "billing_percent": 40}],
                },
                {
                    "title": "Deploy",
                    "duration_days": 20,
                    "tasks": [
                        {"title": "User acceptance testing", "hours": 80},
                        {"title": "Training", "hours": 40},
                    ],
                    "milestones": [{"title": "Go-live", "billing_percent": 40}],
                },
            ),
            (
                {"role": "Manager", "hours": 120},
                {"role": "Senior Consultant", "hours": 320},
                {"role": "Consultant", "hours": 400},
                {"role": "Analyst", "hours": 200},
            ),
            (80_000, 450_000),
        ),
        ServiceLine(
            "advisory_retainer",
            "Advisory retainer",
            (
                {
                    "title": "Quarter 1",
                    "duration_days": 90,
                    "tasks": [
                        {"title": "Monthly steering", "hours": 24},
                        {"title": "Advisory hours", "hours": 120},
                    ],
                    "milestones": [],
                },
                {
                    "title": "Quarter 2",
                    "duration_days": 90,
                    "tasks": [
                        {"title": "Monthly steering", "hours": 24},
                        {"title": "Advisory hours", "hours": 120},
                    ],
                    "milestones": [],
                },
            ),
            ({"role": "Partner", "hours": 48}, {"role": "Director", "hours": 120}),
            (8_000, 30_000),
        ),
        ServiceLine(
            "managed_services",
            "Managed services",
            (
                {
                    "title": "Transition",
                    "duration_days": 30,
                    "tasks": [{"title": "Runbooks and handover", "hours": 80}],
                    "milestones": [{"title": "Service acceptance", "billing_percent": 100}],
                },
                {
                    "title": "Steady state",
                    "duration_days": 335,
                    "tasks": [
                        {"title": "Service desk", "hours": 600},
                        {"title": "Monthly service review", "hours": 48},
                    ],
                    "milestones": [],
                },
            ),
            ({"role": "Manager", "hours": 60}, {"role": "Consultant", "hours": 700}),
            (12_000, 60_000),
        ),
    )
}

OPEN_STAGES = (
    "Prospecting",
    "Qualification",
    "Needs Analysis",
    "Proposal/Price Quote",
    "Negotiation/Review",
)
_COMPANY_STEMS = (
    "Acme",
    "Globex",
    "Initech",
    "Umbrella",
    "Stark",
    "Wayne",
    "Wonka",
    "Tyrell",
    "Cyberdyne",
    "Soylent",
    "Hooli",
    "Vandelay",
    "Aperture",
    "Massive Dynamic",
    "Gringotts",
    "Oscorp",
    "Monarch",
    "Nakatomi",
    "Pied Piper",
    "Dunder Mifflin",
    "Sterling Cooper",
    "Prestige",
    "Blue Sun",
    "Virtucon",
    "Zorg",
)
_SUFFIX = {"US": "Inc.", "GB": "Ltd", "DE": "GmbH", "NL": "B.V.", "FR": "SAS", "IE": "Ltd"}
_INDUSTRIES = (
    "Manufacturing",
    "Financial Services",
    "Healthcare",
    "Retail",
    "Technology",
    "Energy",
    "Public Sector",
)
_FIRST = (
    "Alex",
    "Sam",
    "Jordan",
    "Taylor",
    "Morgan",
    "Casey",
    "Riley",
    "Jamie",
    "Avery",
    "Quinn",
    "Robin",
    "Charlie",
    "Dana",
    "Elliot",
    "Frankie",
    "Harper",
    "Jesse",
    "Kai",
    "Logan",
    "Noor",
    "Priya",
    "Mateo",
    "Ingrid",
    "Yuki",
    "Olu",
    "Chen",
    "Fatima",
    "Lars",
)
_LAST = (
    "Smith",
    "Jones",
    "Garcia",
    "Müller",
    "Dubois",
    "Rossi",
    "Kowalski",
    "Okafor",
    "Tanaka",
    "Nguyen",
    "Patel",
    "O'Brien",
    "Jansen",
    "Svensson",
    "Cohen",
    "Silva",
    "Murphy",
    "Schmidt",
    "Martin",
    "Brown",
    "Wilson",
    "Khan",
    "Lopez",
    "Novak",
)


def _slug(text: str) -> str:
    return "".join(char for char in text.lower() if char.isalnum())


def seed_sandbox(sandbox: Sandbox, *, seed: int = 0) -> dict[str, int]:
    """Seed the Salesforce and Kantata states of ``sandbox``; returns counts per kind."""
    summary: dict[str, int] = {}
    if "salesforce" in sandbox.vendors:
        summary.update(seed_salesforce(sandbox.vendors["salesforce"].state, seed=seed))
    if "kantata" in sandbox.vendors:
        summary.update(seed_kantata(sandbox.vendors["kantata"].state, seed=seed))
    return summary


def seed_salesforce(state: Any, *, seed: int = 0, groups: int = 25) -> dict[str, int]:
    """Customer hierarchies, billing contacts and an open pipeline."""
    rng = random.Random(f"salesforce:{seed}")
    today = dt.datetime.fromtimestamp(state.clock.now(), tz=dt.UTC).date()
    accounts = opportunities = 0
    for index in range(groups):
        stem = _COMPANY_STEMS[index % len(_COMPANY_STEMS)]
        if index >= len(_COMPANY_STEMS):
            stem = f"{stem} {index // len(_COMPANY_STEMS) + 1}"
        home = rng.choice(("US", "US", "GB", "DE"))
        countries = [home, *rng.sample([c for c in COUNTRY_ENTITY if c != home], rng.randint(0, 2))]
        industry = rng.choice(_INDUSTRIES)
        parent_id: str | None = None
        for position, country in enumerate(countries):
            entity = LEGAL_ENTITIES[COUNTRY_ENTITY[country]]
            name = (
                f"{stem} {_SUFFIX[country]}"
                if position == 0
                else f"{stem} {country} {_SUFFIX[country]}"
            )
            account_id = state.insert(
                "Account",
                {
                    "Name": name,
                    "ParentId": parent_id,
                    "Type": "Customer",
                    "Industry": industry,
                    "BillingCountry": country,
                    "BillingCity": rng.choice(entity.cities),
                    "CurrencyIsoCode": entity.currency,
                    "Legal_Entity__c": entity.code,
                    "Payment_Terms__c": rng.choice(("Net 30", "Net 30", "Net 45", "Net 60")),
                    "Website": f"https://www.{_slug(stem)}.example",
                },
            )
            contact_id = _contact(state, rng, account_id, stem)
            state.update(
                "Account",
                account_id,
                {
                    "Billing_Contact__c": contact_id,
                    "Billing_Email__c": f"ap@{_slug(stem)}.example",
                },
            )
            accounts += 1
            parent_id = parent_id or account_id
            for _ in range(rng.randint(1, 2)):
                add_opportunity(state, rng, account_id, today)
                opportunities += 1
    return {"accounts": accounts, "opportunities": opportunities}


def _contact(state: Any, rng: random.Random, account_id: str, stem: str) -> str:
    first, last = rng.choice(_FIRST), rng.choice(_LAST)
    return state.insert(
        "Contact",
        {
            "FirstName": first,
            "LastName": last,
            "Title": rng.choice(("Finance Director", "Accounts Payable Lead", "CFO", "Controller")),
            "Email": f"{_slug(first)}.{_slug(last)}@{_slug(stem)}.example",
            "AccountId": account_id,
        },
    )


def add_opportunity(
    state: Any,
    rng: random.Random,
    account_id: str,
    today: dt.date,
    *,
    service_line: str | None = None,
    stage: str | None = None,
    validate: bool = True,
    overrides: dict[str, Any] | None = None,
) -> str:
    """One opportunity with line items shaped by its service line; returns its id."""
    account = state.records["Account"][account_id]
    line = SERVICE_LINES[service_line or rng.choice(list(SERVICE_LINES))]
    currency = account["CurrencyIsoCode"]
    rate = FX.get(currency, 1.0)
    start = today + dt.timedelta(days=rng.randint(14, 60))
    values = {
        "Name": f"{account['Name']} - {line.title} {start:%Y-%m}",
        "AccountId": account_id,
        "StageName": stage or rng.choice(OPEN_STAGES),
        "CloseDate": (today + dt.timedelta(days=rng.randint(7, 90))).isoformat(),
        "CurrencyIsoCode": currency,
        "Service_Line__c": line.code,
        "Legal_Entity__c": account["Legal_Entity__c"],
        "Contract_Start_Date__c": start.isoformat(),
        "Type": "New Business",
        **(overrides or {}),
    }
    opportunity_id = state.insert("Opportunity", values, validate=validate)
    low, high = line.fee_usd
    fee = round(rng.randint(low, high) * rate, -2)
    lines: list[dict[str, Any]] = []
    if line.code == "implementation":
        for phase in line.phases:
            for milestone in phase["milestones"]:
                lines.append(
                    {
                        "Name": milestone["title"],
                        "ProductCode": "IMPL-FF",
                        "Billing_Type__c": "fixed_fee",
                        "Billing_Frequency__c": "one_time",
                        "Quantity": 1.0,
                        "UnitPrice": round(fee * milestone["billing_percent"] / 100, 2),
                        "Milestone_Name__c": milestone["title"],
                        "Milestone_Percent__c": float(milestone["billing_percent"]),
                    }
                )
        hours = float(rng.choice((80, 120, 200)))
        lines.append(
            {
                "Name": "Change requests (T&M)",
                "ProductCode": "IMPL-TM",
                "Billing_Type__c": "time_and_materials",
                "Billing_Frequency__c": "monthly",
                "Quantity": hours,
                "UnitPrice": round(ROLES["Senior Consultant"][1] * rate, 2),
                "Role__c": "Senior Consultant",
                "Hours__c": hours,
            }
        )
    else:
        months = 12.0 if line.code == "managed_services" else 6.0
        lines.append(
            {
                "Name": f"{line.title} monthly fee",
                "ProductCode": f"{line.code.upper()[:4]}-SUB",
                "Billing_Type__c": "subscription",
                "Billing_Frequency__c": "monthly",
                "Quantity": months,
                "UnitPrice": fee,
                "ServiceDate": start.isoformat(),
            }
        )
        if line.code == "managed_services":
            lines.append(
                {
                    "Name": "Out-of-scope work (T&M)",
                    "ProductCode": "MS-TM",
                    "Billing_Type__c": "time_and_materials",
                    "Billing_Frequency__c": "monthly",
                    "Quantity": 40.0,
                    "UnitPrice": round(ROLES["Consultant"][1] * rate, 2),
                    "Role__c": "Consultant",
                    "Hours__c": 40.0,
                }
            )
    for sort_order, item in enumerate(lines, start=1):
        item.update(OpportunityId=opportunity_id, SortOrder=sort_order, CurrencyIsoCode=currency)
        item["External_Line_Id__c"] = f"{opportunity_id}-{sort_order}"
        state.insert("OpportunityLineItem", item, validate=validate)
    return opportunity_id


def seed_kantata(state: Any, *, seed: int = 0, consultants: int = 100) -> dict[str, int]:
    """Consultants with cost and bill rates, and the service-line project templates."""
    rng = random.Random(f"kantata:{seed}")
    weights = {
        "Analyst": 20,
        "Consultant": 30,
        "Senior Consultant": 22,
        "Manager": 15,
        "Director": 8,
        "Partner": 5,
    }
    roles = list(weights)
    for number in range(1, consultants + 1):
        role = rng.choices(roles, weights=[weights[r] for r in roles])[0]
        entity = rng.choices(list(LEGAL_ENTITIES), weights=(55, 25, 20))[0]
        currency = LEGAL_ENTITIES[entity].currency
        cost, bill = ROLES[role]
        jitter = rng.uniform(0.9, 1.1)
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        state.add_user(
            {
                "full_name": f"{first} {last}",
                "email_address": f"{_slug(first)}.{_slug(last)}.{number}@northwind.example",
                "headline": role,
                "role": role,
                "legal_entity": entity,
                "currency": currency,
                "cost_rate_in_cents": int(round(cost * FX[currency] * jitter, 0) * 100),
                "bill_rate_in_cents": int(round(bill * FX[currency], 0) * 100),
            }
        )
    for line in SERVICE_LINES.values():
        state.add_template(
            {
                "title": f"{line.title} template",
                "service_line": line.code,
                "description": f"Standard {line.title.lower()} engagement",
                "phases": [dict(phase) for phase in line.phases],
                "resource_demand": [dict(demand) for demand in line.resource_demand],
            }
        )
    return {"consultants": consultants, "project_templates": len(SERVICE_LINES)}
