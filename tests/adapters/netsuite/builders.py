"""Canonical messages for the NetSuite adapter tests."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from actors.messages import (
    Account,
    FinancialDimensions,
    Invoice,
    InvoiceLine,
    Money,
    Project,
    TimeEntry,
    UpsertCustomer,
    UpsertJob,
)
from adapters.netsuite import NetSuiteAdapter

DIMS = FinancialDimensions(legal_entity="PSF-US", department="Consulting", cost_centre="Advisory")


def usd(amount: str) -> Money:
    return Money.of(amount, "USD")


def account(account_id: str = "001A", **changes) -> Account:
    values = {
        "id": account_id,
        "name": "Acme Corp",
        "legal_entity": "PSF-US",
        "currency": "USD",
        "website": "https://acme.example",
    }
    return Account(**(values | changes))


def project(project_id: str = "PRJ-1", **changes) -> Project:
    values = {
        "id": project_id,
        "name": "Acme ERP rollout",
        "account_id": "001A",
        "currency": "USD",
        "start_date": date(2026, 1, 5),
        "end_date": date(2026, 6, 30),
    }
    return Project(**(values | changes))


def time_entry(n: int, project_id: str = "PRJ-1", **changes) -> TimeEntry:
    values = {
        "id": f"te-{n}",
        "project_id": project_id,
        "consultant_id": f"u{n % 3}",
        "date_performed": date(2026, 1, 1 + n % 28),
        "hours": Decimal("7.25") if n % 2 else Decimal("1.5"),
        "bill_rate": usd("150.00"),
        "approved": True,
        "notes": f"work {n}",
    }
    return TimeEntry(**(values | changes))


def invoice(invoice_id: str = "in_1", project_id: str | None = "PRJ-1", **changes) -> Invoice:
    line = InvoiceLine(
        id="il_1",
        description="Milestone 1: design",
        quantity=Decimal(1),
        unit_price=usd("12000.00"),
        amount=usd("12000.00"),
        milestone_id="ms-1",
    )
    values = {
        "id": invoice_id,
        "account_id": "001A",
        "number": "INV-0001",
        "project_id": project_id,
        "currency": "USD",
        "issue_date": date(2026, 1, 20),
        "due_date": date(2026, 2, 19),
        "lines": (line,),
    }
    return Invoice(**(values | changes))


async def customer_and_job(adapter: NetSuiteAdapter, project_id: str = "PRJ-1") -> tuple[str, str]:
    """Upsert the customer and its job; their internal ids."""
    customer = await adapter.execute(
        UpsertCustomer(idempotency_key="k-cus", correlation_id="corr-1", account=account())
    )
    customer_id = customer.ids["001A"]
    job = await adapter.execute(
        UpsertJob(
            idempotency_key="k-job",
            correlation_id="corr-1",
            project=project(project_id),
            customer_id=customer_id,
            dimensions=DIMS,
        )
    )
    return customer_id, job.ids[project_id]
