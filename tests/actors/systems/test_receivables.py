"""Receivables requests to real system actors over the in-process sandbox.

The stack of tests/e2e/stack.py runs the daemon's system actors in front of the real
adapters (NetSuite, Kantata, Salesforce, Stripe over ``httpx.ASGITransport``). NetSuite's
actor answers a receivables request with the invoices it holds for the project's job;
every other system's actor refuses it, naming the system and the vendor.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from actors.errors import PermanentError
from actors.messages import (
    Account,
    FinancialDimensions,
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    Money,
    PostInvoice,
    Project,
    UpsertCustomer,
    UpsertJob,
)
from actors.systems import ReceivablesNotOffered, query_receivables, system_status
from adapters.base import TotalsQuery
from tests.e2e.stack import open_stack

DIMENSIONS = FinancialDimensions(legal_entity="PSF-US")
JANUARY = TotalsQuery(
    project_id="PRJ-AR1", period_start=date(2026, 1, 1), period_end=date(2026, 1, 31)
)


def invoice(number: int, amount: str, issued: date) -> Invoice:
    price = Money.of(amount, "USD")
    return Invoice(
        id=f"ms-AR{number}",
        account_id="ACC-AR",
        number=f"INV-AR{number}",
        project_id="PRJ-AR1",
        currency="USD",
        status=InvoiceStatus.OPEN,
        issue_date=issued,
        legal_entity="PSF-US",
        lines=(InvoiceLine(id=f"AR{number}", unit_price=price, amount=price),),
    )


async def test_netsuite_answers_receivables_and_other_vendors_refuse_them(
    tmp_path, journal_clock
) -> None:
    async with open_stack(tmp_path, workflows=()) as stack:
        deps = stack.pipeline.deps
        account = Account(
            id="ACC-AR", name="Receivables Ltd", legal_entity="PSF-US", currency="USD"
        )
        customer = await deps.execute(
            "erp", UpsertCustomer(idempotency_key="ar-customer", account=account)
        )
        project = Project(
            id="PRJ-AR1",
            name="Receivables project",
            account_id=account.id,
            currency="USD",
            start_date=date(2026, 1, 1),
            dimensions=DIMENSIONS,
        )
        customer_id = customer.ids[account.id]
        await deps.execute(
            "erp",
            UpsertJob(
                idempotency_key="ar-job",
                project=project,
                customer_id=customer_id,
                dimensions=DIMENSIONS,
            ),
        )
        mailboxes = deps.mailboxes
        before = await query_receivables(mailboxes["erp"], JANUARY, timeout_s=600)
        for number, amount, issued in (
            (1, "1200.00", date(2026, 1, 9)),
            (2, "345.67", date(2026, 1, 30)),
            (3, "999.00", date(2026, 2, 2)),  # outside the period
        ):
            await deps.execute(
                "erp",
                PostInvoice(
                    idempotency_key=f"ar-invoice-{number}",
                    invoice=invoice(number, amount, issued),
                    customer_id=customer_id,
                    dimensions=DIMENSIONS,
                ),
            )

        totals = await query_receivables(mailboxes["erp"], JANUARY, timeout_s=600)

        refusals = {}
        for system in ("crm", "psa", "billing"):
            with pytest.raises(ReceivablesNotOffered) as caught:
                await query_receivables(mailboxes[system], JANUARY, timeout_s=600)
            refusals[system] = caught.value
        status = await system_status(mailboxes["psa"], timeout_s=600)

    assert (before.amount, before.entries) == (None, 0)  # the job has no invoice yet
    assert (totals.system, totals.project_id) == ("erp", "PRJ-AR1")
    assert totals.amount == Money.of("1545.67", "USD")
    assert totals.amount.amount == Decimal("1545.67")
    assert totals.entries == 2
    vendors = {system: error.vendor for system, error in refusals.items()}
    assert vendors == {"crm": "salesforce", "psa": "kantata", "billing": "stripe"}
    for system, error in refusals.items():
        assert isinstance(error, PermanentError)
        assert error.system == system
        assert str(error).startswith(f"{system}: the {vendors[system]} adapter offers no")
    assert status.failed >= 1  # the refusal is an answer, counted, and the actor lives on
