"""invoice_feedback end to end: Stripe invoice events → NetSuite payments and voids, CRM.

The stack (tests/e2e/stack.py) runs only invoice_feedback. Invoices are issued the way
milestone_to_invoice issues them (CreateInvoice, FinalizeInvoice, PostInvoice through the
system actors, ids mapped under ``invoice``), for a customer provisioned in NetSuite and
Stripe the way deal_to_project does it; the customers pay (or not) in the Stripe sandbox
and the feed brings the events.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import msgspec
import pytest
import trio

from actors.messages import (
    Account,
    AccountChanged,
    CreateInvoice,
    FinalizeInvoice,
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    Money,
    PostInvoice,
    UpsertCustomer,
    decode_envelope,
)
from actors.workflows import ReplaySelection, replay
from actors.workflows.invoice_feedback import SPEC, recurring_invoice_id
from adapters.sandbox.seed import add_opportunity
from tests.e2e.stack import Stack, open_stack


class Gate(httpx.AsyncBaseTransport):
    """The ERP's transport; holds the response of a customer payment create once armed.

    ``needle`` picks the record type held (``/invoice/`` for invoice posts).
    """

    def __init__(self, inner: httpx.AsyncBaseTransport, needle: str = "customerpayment") -> None:
        self.inner = inner
        self.needle = needle
        self.armed = False
        self.reached = trio.Event()
        self.release = trio.Event()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if self.armed and request.method in ("PUT", "POST") and self.needle in str(request.url):
            self.armed = False
            self.reached.set()
            await self.release.wait()
        return response


async def crm_account(stack: Stack) -> Account:
    """A seeded Salesforce account with a legal entity booked in USD."""
    for record in await stack.events("account.changed"):
        body = decode_envelope(record.body).body
        assert isinstance(body, AccountChanged)
        account = body.account
        if account.legal_entity == "PSF-US" and account.currency == "USD" and not account.parent_id:
            return account
    raise AssertionError("no USD account in the seed")


async def provision(stack: Stack, account: Account) -> dict[str, str]:
    """The account as a customer in the ERP and billing, mapped (deal_to_project's part)."""
    ids = {}
    for system in ("erp", "billing"):
        result = await stack.pipeline.deps.execute(
            system,
            UpsertCustomer(idempotency_key=f"test-customer-{system}-{account.id}", account=account),
        )
        ids[system] = result.ids[account.id]
        await stack.journal.map_id("account", account.id, system, ids[system], stack.now())
    return ids


async def issue(
    stack: Stack, account: Account, customers: dict[str, str], number: int, amount: str
) -> str:
    """An invoice issued as milestone_to_invoice issues it; returns the Stripe id."""
    deps, journal = stack.pipeline.deps, stack.journal
    price = Money.of(amount, "USD")
    invoice = Invoice(
        id=f"ms-T{number}",
        account_id=account.id,
        currency="USD",
        legal_entity=account.legal_entity,
        lines=(
            InvoiceLine(id=f"T{number}", description="milestone", unit_price=price, amount=price),
        ),
    )
    key = f"test-invoice-{number}"
    created = await deps.execute(
        "billing",
        CreateInvoice(
            idempotency_key=f"{key}-c", invoice=invoice, customer_id=customers["billing"]
        ),
    )
    stripe_id = created.ids["invoice"]
    await journal.map_id("invoice", invoice.id, "billing", stripe_id, stack.now())
    finalized = await deps.execute(
        "billing", FinalizeInvoice(idempotency_key=f"{key}-f", invoice_id=stripe_id)
    )
    issued = msgspec.structs.replace(
        invoice,
        number=finalized.details.get("number", ""),
        status=InvoiceStatus.OPEN,
        issue_date=datetime.fromtimestamp(stack.now(), UTC).date(),
    )
    posted = await deps.execute(
        "erp",
        PostInvoice(idempotency_key=f"{key}-p", invoice=issued, customer_id=customers["erp"]),
    )
    await journal.map_id("invoice", invoice.id, "erp", posted.ids[invoice.id], stack.now())
    return stripe_id


def stripe(stack: Stack) -> Any:
    return stack.sandbox.vendors["stripe"].state


def netsuite(stack: Stack) -> Any:
    return stack.sandbox.vendors["netsuite"].state


def payments(stack: Stack) -> list[dict[str, Any]]:
    return list(netsuite(stack).records["customerpayment"].values())


def balance_due(stack: Stack, account_id: str) -> Any:
    salesforce = stack.sandbox.vendors["salesforce"].state
    return salesforce.get("Account", account_id).get("Balance_Due__c")


async def settle(stack: Stack, action: Callable[[], object]) -> None:
    action()
    stack.touched()
    await stack.until_idle()


async def until_exceptions(stack: Stack, count: int) -> list:
    """Wait for ``count`` open exceptions (a parked run keeps ``until_idle`` waiting)."""
    with trio.fail_after(3_600):
        while len(found := await stack.exceptions()) < count:
            await stack.changes.wait()
    return found


async def test_paid_late_and_never_paid_invoices(tmp_path, autojump_clock) -> None:
    async with open_stack(tmp_path, workflows=(SPEC,)) as stack:
        await stack.until_idle()
        account = await crm_account(stack)
        customers = await provision(stack, account)
        on_time = await issue(stack, account, customers, 1, "1000.00")
        late = await issue(stack, account, customers, 2, "250.50")
        never = await issue(stack, account, customers, 3, "99.99")
        await settle(stack, lambda: stripe(stack).pay_invoice(on_time))

        assert len(payments(stack)) == 1
        assert balance_due(stack, account.id) == pytest.approx(350.49)

        await settle(stack, lambda: stripe(stack).pay_invoice(late))

        paid = payments(stack)
        assert len(paid) == 2  # one ERP payment per Stripe payment, the never-paid has none
        assert sorted(Decimal(str(p["payment"])) for p in paid) == [
            Decimal("250.50"),
            Decimal("1000.00"),
        ]
        assert balance_due(stack, account.id) == pytest.approx(99.99)
        assert stack.duplicates() == {}
        assert await stack.exceptions() == []
        runs = await stack.runs(workflow="invoice_feedback")
        assert {run.status for run in runs} == {"completed"}
        # finalize x3 (issued + open each), paid x2 (status + payment each)
        assert len(runs) == 10
        mapped = [
            await stack.journal.system_id("payment", pid, "erp") for pid in _payment_ids(stack)
        ]
        assert all(mapped)
        assert never in stripe(stack).open_invoice_ids()


def _payment_ids(stack: Stack) -> list[str]:
    ids = []
    for invoice in stripe(stack).objects["invoice"].values():
        if invoice["status"] == "paid":
            ids.append(invoice.get("charge") or invoice.get("payment_intent"))
    return [pid for pid in ids if pid]


async def test_void_posts_a_reversal_and_replay_duplicates_nothing(
    tmp_path, autojump_clock
) -> None:
    async with open_stack(tmp_path, workflows=(SPEC,)) as stack:
        await stack.until_idle()
        account = await crm_account(stack)
        customers = await provision(stack, account)
        voided = await issue(stack, account, customers, 1, "400.00")
        paid = await issue(stack, account, customers, 2, "120.00")
        await settle(stack, lambda: stripe(stack).void_invoice(voided))
        await settle(stack, lambda: stripe(stack).pay_invoice(paid))

        journals = list(netsuite(stack).records["journalentry"].values())
        assert len(journals) == 1
        assert len(payments(stack)) == 1
        before = stack.counts()

        result = await replay(stack.journal, SPEC, ReplaySelection(from_seq=1), now=stack.now())
        assert result.run_ids
        stack.pipeline.workflows["invoice_feedback"].runner.notify()
        await stack.until_idle()

        assert stack.counts() == before
        assert stack.duplicates() == {}
        runs = await stack.runs(workflow="invoice_feedback")
        assert {run.status for run in runs} == {"completed"}
        assert await stack.exceptions() == []


async def test_an_invoice_pssync_never_issued_is_a_billing_exception(
    tmp_path, autojump_clock
) -> None:
    async with open_stack(tmp_path, workflows=(SPEC,)) as stack:
        await stack.until_idle()
        account = await crm_account(stack)
        customers = await provision(stack, account)
        deps = stack.pipeline.deps
        # Raised in Stripe by hand: never mapped, never posted to the ERP.
        price = Money.of("75.00", "USD")
        foreign = Invoice(
            id="manual-1",
            account_id=account.id,
            currency="USD",
            lines=(InvoiceLine(id="x", unit_price=price, amount=price),),
        )
        created = await deps.execute(
            "billing",
            CreateInvoice(
                idempotency_key="manual-c", invoice=foreign, customer_id=customers["billing"]
            ),
        )
        stripe_id = created.ids["invoice"]
        await deps.execute(
            "billing", FinalizeInvoice(idempotency_key="manual-f", invoice_id=stripe_id)
        )
        stripe(stack).pay_invoice(stripe_id)
        stack.touched()

        [exception] = await until_exceptions(stack, 1)
        assert (exception.workflow, exception.category, exception.owner) == (
            "invoice_feedback",
            "billing",
            "billing-ops",
        )
        assert (exception.amount, exception.currency) == (Decimal("75.00"), "USD")
        assert stripe_id in exception.message
        assert "never issued" in exception.message
        assert payments(stack) == []


async def test_crash_after_the_erp_payment_before_its_record(tmp_path, autojump_clock) -> None:
    gates: dict[str, Gate] = {}

    def wrap(system: str, transport: httpx.AsyncBaseTransport) -> httpx.AsyncBaseTransport:
        if system != "erp":
            return transport
        gates[system] = Gate(transport)
        return gates[system]

    async with open_stack(tmp_path, workflows=(SPEC,), wrap_transport=wrap) as stack:
        await stack.until_idle()
        account = await crm_account(stack)
        customers = await provision(stack, account)
        invoice = await issue(stack, account, customers, 1, "500.00")
        gate = gates["erp"]
        gate.armed = True
        stripe(stack).pay_invoice(invoice)
        stack.touched()
        with trio.fail_after(600):
            await gate.reached.wait()
        assert len(payments(stack)) == 1  # NetSuite has it; the step is not recorded

        await stack.crash_and_restart(before_restart=gate.release.set)
        await stack.until_idle()

        assert len(payments(stack)) == 1
        assert stack.duplicates() == {}
        runs = await stack.runs(workflow="invoice_feedback")
        assert {run.status for run in runs} == {"completed"}
        assert max(run.attempts for run in runs) >= 2


# -- recurring revenue: invoices Stripe raises from pssync's subscriptions ----------------


def win_subscription_deal(stack: Stack) -> str:
    """A won managed-services deal (a monthly subscription line) for a US customer."""
    salesforce = stack.sandbox.vendors["salesforce"].state
    account = next(
        account_id
        for account_id, record in sorted(salesforce.records["Account"].items())
        if record.get("Legal_Entity__c") == "PSF-US"
        and record.get("Billing_Contact__c")
        and record.get("Type") == "Customer"
        and not record.get("ParentId")
    )
    today = datetime.fromtimestamp(stack.now(), UTC).date()
    deal = add_opportunity(
        salesforce,
        random.Random(account),
        account,
        today,
        service_line="managed_services",
        stage="Closed Won",
    )
    stack.touched()
    return deal


async def settle_parked(stack: Stack) -> None:
    """Until idle; runs parked on an exception (other deals' problems) count as done."""
    with trio.fail_after(3_600):
        while True:
            busy = await stack._busy(True)
            if busy is None or busy.endswith("is waiting"):
                return
            await stack.changes.wait()


def erp_invoices(stack: Stack) -> list[dict[str, Any]]:
    return list(netsuite(stack).records["invoice"].values())


async def test_subscription_invoices_become_erp_receivables_and_payments(
    tmp_path, autojump_clock
) -> None:
    async with open_stack(tmp_path, workflows=("deal_to_project", SPEC)) as stack:
        await settle_parked(stack)
        before_invoices = len(erp_invoices(stack))
        before_exceptions = {e.id for e in await stack.exceptions()}
        deal = win_subscription_deal(stack)
        await settle_parked(stack)

        subscriptions = [
            sub
            for sub in stripe(stack).objects["subscription"].values()
            if deal in sub["metadata"].get("pssync_project", "")
        ]
        assert len(subscriptions) == 1, "deal_to_project created one subscription"
        [billed] = [
            inv
            for inv in stripe(stack).objects["invoice"].values()
            if inv["subscription"] == subscriptions[0]["id"]
        ]
        canonical = recurring_invoice_id(billed["id"])
        erp_id = await stack.journal.system_id("invoice", canonical, "erp")
        assert erp_id is not None
        assert len(erp_invoices(stack)) == before_invoices + 1
        posted = netsuite(stack).records["invoice"][int(erp_id)]
        assert Decimal(str(posted["total"])) == Decimal(billed["amount_due"]) / 100
        # Its line is the subscription item's line as Stripe billed it.
        [item] = subscriptions[0]["items"]["data"]
        [stripe_line] = billed["lines"]["data"]
        [line] = posted["item"]
        assert line["description"] == stripe_line["description"]
        assert Decimal(str(line["quantity"])) == item["quantity"]
        assert Decimal(str(line["rate"])) == Decimal(item["price"]["unit_amount"]) / 100
        assert Decimal(str(line["amount"])) == Decimal(stripe_line["amount"]) / 100

        await settle(stack, lambda: stripe(stack).pay_invoice(billed["id"]))

        [payment] = payments(stack)
        assert Decimal(str(payment["payment"])) == Decimal(billed["amount_due"]) / 100
        assert posted["amountRemaining"] == 0
        new = [e for e in await stack.exceptions() if e.id not in before_exceptions]
        assert new == []
        assert stack.duplicates() == {}
        runs = await stack.runs(workflow="invoice_feedback")
        assert {run.status for run in runs} == {"completed"}
        counts = stack.counts()

        result = await replay(stack.journal, SPEC, ReplaySelection(from_seq=1), now=stack.now())
        assert result.run_ids
        stack.pipeline.workflows["invoice_feedback"].runner.notify()
        await stack.until_idle()

        assert stack.counts() == counts
        assert stack.duplicates() == {}
        assert len(erp_invoices(stack)) == before_invoices + 1
        assert len(payments(stack)) == 1
        assert {run.status for run in await stack.runs(workflow="invoice_feedback")} == {
            "completed"
        }


async def test_an_invoice_of_a_subscription_pssync_did_not_create_still_parks(
    tmp_path, autojump_clock
) -> None:
    async with open_stack(tmp_path, workflows=(SPEC,)) as stack:
        await stack.until_idle()
        account = await crm_account(stack)
        customers = await provision(stack, account)
        # Set up in Stripe by hand: its subscription is not in pssync's id map.
        state = stripe(stack)
        product = state.create_product({"name": "hand-made plan"})
        price = state.create_price(
            {
                "product": product["id"],
                "currency": "usd",
                "unit_amount": 4_200,
                "recurring": {"interval": "month", "interval_count": 1},
            }
        )
        subscription = state.create_subscription(
            {
                "customer": customers["billing"],
                "items": [{"price": price["id"], "quantity": 1}],
                "collection_method": "send_invoice",
                "days_until_due": 30,
            }
        )
        stack.touched()
        await stack.until_idle()
        assert erp_invoices(stack) == []

        stripe_id = subscription["latest_invoice"]
        state.pay_invoice(stripe_id)
        stack.touched()

        [exception] = await until_exceptions(stack, 1)
        assert (exception.workflow, exception.category) == ("invoice_feedback", "billing")
        assert (exception.amount, exception.currency) == (Decimal("42.00"), "USD")
        assert stripe_id in exception.message
        assert "never issued" in exception.message
        assert erp_invoices(stack) == []
        assert payments(stack) == []


async def test_crash_after_the_recurring_erp_invoice_before_its_record(
    tmp_path, autojump_clock
) -> None:
    gates: dict[str, Gate] = {}

    def wrap(system: str, transport: httpx.AsyncBaseTransport) -> httpx.AsyncBaseTransport:
        if system != "erp":
            return transport
        gates[system] = Gate(transport, needle="/invoice/")
        return gates[system]

    async with open_stack(
        tmp_path, workflows=("deal_to_project", SPEC), wrap_transport=wrap
    ) as stack:
        await settle_parked(stack)
        before = len(erp_invoices(stack))
        gate = gates["erp"]
        gate.armed = True
        win_subscription_deal(stack)
        with trio.fail_after(3_600):
            await gate.reached.wait()
        assert len(erp_invoices(stack)) == before + 1  # NetSuite has it; no step record yet

        await stack.crash_and_restart(before_restart=gate.release.set)
        await settle_parked(stack)

        assert len(erp_invoices(stack)) == before + 1
        assert stack.duplicates() == {}
        runs = await stack.runs(workflow="invoice_feedback")
        assert {run.status for run in runs} == {"completed"}
        assert max(run.attempts for run in runs) >= 2
