"""deal_to_project end to end: the sandbox's won deals through the real adapters.

Each test runs the pipeline of tests/e2e/stack.py with only this workflow enabled, so the
vendors' states show exactly what the workflow did. The scenario's first week wins a few
deals and plants three malformed ones; implementation deals (fixed-fee milestones and a
time-and-materials line) are added where a test needs milestones.
"""

from __future__ import annotations

import datetime as dt
import random
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import httpx
import msgspec
import pytest
import trio

from actors.messages import (
    Account,
    AnyCommand,
    Contact,
    DealWon,
    Envelope,
    Money,
    Opportunity,
    OpportunityLine,
    ProjectActivated,
    UpsertCustomer,
    decode_envelope,
)
from actors.messages.commands import CUSTOMER_FIELDS
from actors.workflows import ReplaySelection, replay
from actors.workflows.deal_to_project import (
    ACCOUNT,
    MILESTONE,
    PROJECT,
    SPEC,
    activated_milestone,
    customer_fields,
)
from actors.workflows.deal_validation import DealFacts, Problem, check_deal
from adapters.base import CommandResult
from adapters.sandbox.seed import add_opportunity
from store import ExceptionRecord
from tests.e2e.stack import OWNERS, Stack, open_stack

SUBSIDIARY = {"PSF-US": "1", "PSF-UK": "2", "PSF-EU": "3"}
"""The sandbox NetSuite's subsidiary internal id per legal entity."""

VENDOR_OBJECTS = {
    "netsuite": ("customer", "job"),
    "kantata": ("workspace_groups", "workspaces", "stories", "external_references"),
    "stripe": ("customer", "product", "price", "subscription"),
}


class Recorder:
    """An SLA recorder that keeps what it is told."""

    def __init__(self) -> None:
        self.activations: list[float] = []

    def observe_activation(self, seconds: float) -> None:
        self.activations.append(seconds)

    def observe_approval_to_posting(self, seconds: float) -> None:
        raise AssertionError("not deal_to_project's")

    def observe_milestone_to_invoice(self, seconds: float) -> None:
        raise AssertionError("not deal_to_project's")


# -- helpers ------------------------------------------------------------------------------


async def settle(stack: Stack) -> None:
    """Until the pipeline is idle; runs parked on an exception count as done."""
    with trio.fail_after(3_600):
        while True:
            busy = await stack._busy(True)
            if busy is None or busy.endswith("is waiting"):
                return
            await stack.changes.wait()


def salesforce(stack: Stack) -> Any:
    return stack.sandbox.vendors["salesforce"].state


def vendor_objects(stack: Stack) -> dict[str, int]:
    counts = stack.counts()
    return {
        f"{vendor}/{kind}": counts[vendor][kind]
        for vendor, kinds in VENDOR_OBJECTS.items()
        for kind in kinds
    }


def customer_accounts(stack: Stack, *, with_parent: bool) -> list[str]:
    """Valid customer accounts (entity, billing contact, billing currency), by id."""
    return sorted(
        account_id
        for account_id, record in salesforce(stack).records["Account"].items()
        if record.get("Legal_Entity__c") in SUBSIDIARY
        and record.get("Billing_Contact__c")
        and record.get("Type") == "Customer"
        and bool(record.get("ParentId")) == with_parent
    )


def win_implementation_deal(stack: Stack, account_id: str) -> str:
    """A won implementation deal: three fixed-fee milestones (20/40/40) and a T&M line."""
    today = dt.datetime.fromtimestamp(stack.now(), dt.UTC).date()
    deal = add_opportunity(
        salesforce(stack),
        random.Random(account_id),
        account_id,
        today,
        service_line="implementation",
        stage="Closed Won",
    )
    stack.touched()
    return deal


async def activations(stack: Stack) -> list[Envelope]:
    return [decode_envelope(record.body) for record in await stack.events("project.activated")]


async def deal_envelopes(stack: Stack) -> list[Envelope]:
    return [decode_envelope(record.body) for record in await stack.events("deal.won")]


def deal_of(exception: ExceptionRecord) -> str:
    """The opportunity an exception is about (its detail, as the workflow wrote it)."""
    return msgspec.json.decode(exception.detail)["detail"]["opportunity"]


def subscription_lines(envelope: Envelope) -> int:
    body = envelope.body
    assert isinstance(body, DealWon)
    return sum(1 for line in body.opportunity.lines if line.billing_type == "subscription")


# -- the happy path ---------------------------------------------------------------------


async def test_won_deals_become_active_projects_everywhere(tmp_path, autojump_clock) -> None:
    async with open_stack(tmp_path, workflows=(SPEC,)) as stack:
        sla = Recorder()
        stack.pipeline.deps.sla = sla
        report = stack.scenario.run_week()
        child = customer_accounts(stack, with_parent=True)[0]
        top = customer_accounts(stack, with_parent=False)[0]
        built = [win_implementation_deal(stack, child), win_implementation_deal(stack, top)]
        await settle(stack)

        valid = [*report.deals_won, *built]
        published = await activations(stack)
        by_deal = Counter(e.body.project.opportunity_id for e in published)
        assert by_deal == dict.fromkeys(valid, 1)
        assert len(sla.activations) == len(valid)
        assert all(seconds >= 0 for seconds in sla.activations)

        # Every vendor object exactly once, and as many as the deals call for.
        assert stack.duplicates() == {}
        objects = vendor_objects(stack)
        assert objects["netsuite/job"] == len(valid)
        assert objects["kantata/workspaces"] == len(valid)
        deals = {e.body.opportunity.id: e for e in await deal_envelopes(stack)}
        firsts = {e.body.opportunity.id: e for e in reversed(await deal_envelopes(stack))}
        assert objects["stripe/subscription"] == sum(subscription_lines(deals[d]) for d in valid)
        accounts = {e.body.project.account_id for e in published}
        assert objects["stripe/customer"] == objects["kantata/workspace_groups"] == len(accounts)
        # The subsidiary account's parent is the ERP customer's parent, upserted first.
        assert objects["netsuite/customer"] > len(accounts)

        sf = salesforce(stack)
        netsuite = stack.sandbox.vendors["netsuite"].state
        for envelope in published:
            activated = envelope.body
            assert isinstance(activated, ProjectActivated)
            project = activated.project
            refs = {(ref.system, ref.object_type): ref.id for ref in activated.refs}
            # The CRM shows the project active with the other systems' ids.
            opportunity = sf.records["Opportunity"][project.opportunity_id]
            assert opportunity["Project_Status__c"] == "active"
            assert opportunity["PSA_Project_Id__c"] == refs["psa", "project"]
            assert opportunity["ERP_Project_Id__c"] == refs["erp", "job"]
            account = sf.records["Account"][project.account_id]
            assert account["ERP_Customer_Id__c"] == refs["erp", "customer"]
            assert account["PSA_Client_Id__c"] == refs["psa", "customer"]
            assert account["Billing_Customer_Id__c"] == refs["billing", "customer"]
            # The id map agrees, and the ERP job carries the entity's subsidiary.
            ids = await stack.journal.ids_of(PROJECT, project.id)
            assert ids == {
                "crm": project.opportunity_id,
                "erp": refs["erp", "job"],
                "psa": refs["psa", "project"],
            }
            assert await stack.journal.ids_of(ACCOUNT, project.account_id) == {
                "billing": refs["billing", "customer"],
                "erp": refs["erp", "customer"],
                "psa": refs["psa", "customer"],
            }
            assert project.dimensions is not None
            job = netsuite.records["job"][int(refs["erp", "job"])]
            assert job["subsidiary"]["id"] == SUBSIDIARY[project.dimensions.legal_entity]
            # Caused by the deal's first DealWon, in its flow.
            first = firsts[project.opportunity_id]
            assert envelope.causation_id == first.id
            assert envelope.correlation_id == first.correlation_id

        # The implementation deals: milestones with amounts, mapped to PSA stories.
        kantata = stack.sandbox.vendors["kantata"].state
        for deal_id in built:
            activated = next(e.body for e in published if e.body.project.opportunity_id == deal_id)
            project = activated.project
            assert [m.name for m in project.milestones] == [
                "Blueprint signed off",
                "Build complete",
                "Go-live",
            ]
            assert [d.role for d in project.resource_demand] == ["Senior Consultant"]
            workspace = await stack.journal.system_id(PROJECT, project.id, "psa")
            assert workspace is not None
            for milestone in project.milestones:
                story = await stack.journal.system_id(MILESTONE, milestone.id, "psa")
                assert story is not None
                assert kantata.tables["stories"][story]["title"] == milestone.name
                found = await activated_milestone(
                    stack.journal, psa_system="psa", workspace_id=workspace, story_id=story
                )
                assert found is not None
                assert found.milestone.amount == milestone.amount
                assert found.customer_ids["billing"].startswith("cus_")
                assert found.project_ids["erp"] == await stack.journal.system_id(
                    PROJECT, project.id, "erp"
                )
            total = sum((m.amount.amount for m in project.milestones if m.amount), Decimal(0))
            fixed = [
                line
                for line in deals[deal_id].body.opportunity.lines
                if line.billing_type == "fixed_fee"
            ]
            assert total == sum((line.unit_price.amount for line in fixed), Decimal(0))

        # Our write-back makes the CRM report a deal once more (once the poller has seen
        # it); that run changed nothing, and there is never a third version: the CRM
        # adapter compared before writing.
        versions = Counter(e.body.opportunity.id for e in await deal_envelopes(stack))
        assert all(versions[deal_id] in (1, 2) for deal_id in valid), versions
        reported_again = sum(versions[deal_id] == 2 for deal_id in valid)
        assert reported_again >= 1
        runs = await stack.runs(workflow="deal_to_project", status="completed")
        untouched = [run for run in runs if not await stack.journal.get_steps(run.id)]
        assert len(untouched) == reported_again


async def test_a_new_version_of_an_active_deal_creates_nothing(tmp_path, autojump_clock) -> None:
    async with open_stack(tmp_path, workflows=(SPEC,)) as stack:
        deal = win_implementation_deal(stack, customer_accounts(stack, with_parent=False)[0])
        await settle(stack)
        before = vendor_objects(stack)
        assert before["netsuite/job"] == 1
        versions = len(await stack.events("deal.won"))

        # Someone edits the won deal: the CRM reports it again.
        salesforce(stack).update("Opportunity", deal, {"Description": "kick-off moved"})
        stack.touched()
        await settle(stack)

        assert len(await stack.events("deal.won")) == versions + 1
        assert vendor_objects(stack) == before
        assert stack.duplicates() == {}
        assert len(await activations(stack)) == 1
        runs = await stack.runs(workflow="deal_to_project")
        assert {run.status for run in runs} == {"completed"}
        assert not await stack.journal.get_steps(runs[-1].id)


async def test_billed_amounts_changed_after_activation_park_for_the_deal_desk(
    tmp_path,
    autojump_clock,
) -> None:
    async with open_stack(tmp_path, workflows=(SPEC,)) as stack:
        deal = win_implementation_deal(stack, customer_accounts(stack, with_parent=False)[0])
        await settle(stack)
        before = vendor_objects(stack)
        sf = salesforce(stack)
        line = sf.lines_of(deal)[0]
        sf.update("OpportunityLineItem", line, {"UnitPrice": 1.0})
        stack.touched()
        await settle(stack)

        [exception] = await stack.exceptions()
        assert exception.category == "contract"
        assert exception.owner == OWNERS["contract"]
        assert f"changed after project PRJ-{deal} was activated" in exception.message
        assert f"MS-{line}" in exception.message
        assert vendor_objects(stack) == before


# -- fields the targets own ------------------------------------------------------------

ERP_OWNED = frozenset({"tax_id", "billing_address", "payment_terms", "payment_terms_days"})
"""What the sandbox config's ``[governance.customer_master]`` gives the ERP, every name."""
BILLING_OWNED = frozenset({"invoice_email", "billing_contact"})
"""What it gives billing: ``invoice_email``, which the billing contact carries."""


def record_customer_commands(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> list[tuple[str, UpsertCustomer]]:
    """Every UpsertCustomer the workflow sends from now on, with its system."""
    sent: list[tuple[str, UpsertCustomer]] = []
    deps = stack.pipeline.deps
    execute = deps.execute

    async def recording(system: str, command: AnyCommand) -> CommandResult:
        if isinstance(command, UpsertCustomer):
            sent.append((system, command))
        return await execute(system, command)

    monkeypatch.setattr(deps, "execute", recording)
    return sent


def with_tax_ids(stack: Stack, account_id: str) -> tuple[str, str]:
    """Give a seeded account (which has a parent) and its parent tax ids in the CRM (the
    seed's have none); (account, parent)."""
    sf = salesforce(stack)
    parent = sf.records["Account"][account_id]["ParentId"]
    sf.update("Account", account_id, {"Tax_Id__c": "GB-111-CHILD"})
    sf.update("Account", parent, {"Tax_Id__c": "US-22-PARENT"})
    stack.touched()
    return account_id, parent


def erp_customer(stack: Stack, account_id: str) -> dict[str, Any]:
    netsuite = stack.sandbox.vendors["netsuite"].state
    return netsuite.get("customer", netsuite.id_for_eid("customer", f"pssync-cus-{account_id}"))


def stripe_customer(stack: Stack, account_id: str) -> dict[str, Any]:
    customers = stack.sandbox.vendors["stripe"].state.objects["customer"].values()
    [found] = [c for c in customers if c["metadata"].get("pssync_id") == account_id]
    return found


def assert_restricted_by_ownership(sent: list[tuple[str, UpsertCustomer]]) -> None:
    """ERP and billing were sent all but the fields they own; the PSA, owning none, the
    whole account."""
    assert {system for system, _ in sent} == {"erp", "psa", "billing"}
    for system, command in sent:
        if system == "erp":
            assert set(command.fields) == CUSTOMER_FIELDS - ERP_OWNED
        elif system == "billing":
            assert set(command.fields) == CUSTOMER_FIELDS - BILLING_OWNED
        else:
            assert command.fields == ()


async def test_a_repeat_customer_keeps_what_its_targets_own_and_changed_there(
    tmp_path, autojump_clock, monkeypatch
) -> None:
    async with open_stack(tmp_path, workflows=(SPEC,)) as stack:
        child, parent = with_tax_ids(stack, customer_accounts(stack, with_parent=True)[0])
        first = win_implementation_deal(stack, child)
        await settle(stack)
        assert erp_customer(stack, child)["vatRegNumber"] == "GB-111-CHILD"
        assert erp_customer(stack, parent)["vatRegNumber"] == "US-22-PARENT"
        # The owners change their fields in their own systems, where pssync cannot see it:
        # the ERP's tax ids in NetSuite, billing's invoice email in Stripe.
        netsuite = stack.sandbox.vendors["netsuite"].state
        for account_id, tax_id in ((child, "GB-999-ERP-OWNED"), (parent, "US-99-ERP-OWNED")):
            internal = netsuite.id_for_eid("customer", f"pssync-cus-{account_id}")
            netsuite.update("customer", internal, {"vatRegNumber": tax_id})
        stripe = stack.sandbox.vendors["stripe"].state
        stripe.update("customer", stripe_customer(stack, child)["id"], {"email": "ar@bill.example"})
        # The CRM renames the account (a field it owns) before winning the second deal.
        salesforce(stack).update("Account", child, {"Name": "Renamed For Deal Two Ltd"})
        before = vendor_objects(stack)
        sent = record_customer_commands(stack, monkeypatch)

        today = dt.datetime.fromtimestamp(stack.now(), dt.UTC).date()
        second = add_opportunity(
            salesforce(stack),
            random.Random(f"{child}:second"),
            child,
            today,
            service_line="implementation",
            stage="Closed Won",
        )
        stack.touched()
        await settle(stack)

        # What the owners changed survives the second deal's provisioning ...
        assert erp_customer(stack, child)["vatRegNumber"] == "GB-999-ERP-OWNED"
        assert erp_customer(stack, parent)["vatRegNumber"] == "US-99-ERP-OWNED"
        assert stripe_customer(stack, child)["email"] == "ar@bill.example"
        # ... while what they do not own still arrives (the CRM's new name) ...
        assert erp_customer(stack, child)["companyName"] == "Renamed For Deal Two Ltd"
        assert stripe_customer(stack, child)["name"] == "Renamed For Deal Two Ltd"
        sent_to = Counter(system for system, _ in sent)
        assert sent_to == {"erp": 2, "psa": 1, "billing": 1}  # the parent, then the account
        assert_restricted_by_ownership(sent)
        # ... and the second project is created as any other, reusing the customers.
        published = await activations(stack)
        assert Counter(e.body.project.opportunity_id for e in published) == {first: 1, second: 1}
        after = vendor_objects(stack)
        for kind in ("netsuite/customer", "stripe/customer", "kantata/workspace_groups"):
            assert after[kind] == before[kind], kind
        for kind in ("netsuite/job", "kantata/workspaces"):
            assert after[kind] == before[kind] + 1, kind
        assert salesforce(stack).records["Opportunity"][second]["Project_Status__c"] == "active"
        assert stack.duplicates() == {}
        assert await stack.exceptions() == []


async def test_a_first_time_customer_is_created_with_every_field(
    tmp_path, autojump_clock, monkeypatch
) -> None:
    async with open_stack(tmp_path, workflows=(SPEC,)) as stack:
        child, parent = with_tax_ids(stack, customer_accounts(stack, with_parent=True)[0])
        sent = record_customer_commands(stack, monkeypatch)
        win_implementation_deal(stack, child)
        await settle(stack)

        account = (await deal_envelopes(stack))[-1].body.account
        assert account.id == child
        contact = account.billing_contact
        assert contact is not None
        assert contact.email
        assert account.billing_address is not None
        # Restricted commands (the ERP's and billing's fields held back) ...
        assert_restricted_by_ownership(sent)
        # ... yet the customers they did not find were created from the whole account,
        # the fields the targets own included.
        customer = erp_customer(stack, child)
        assert customer["companyName"] == account.name
        assert customer["vatRegNumber"] == "GB-111-CHILD"
        assert customer["url"] == account.website
        assert customer["parent"]["id"] == str(netsuite_id(stack, parent))
        assert erp_customer(stack, parent)["vatRegNumber"] == "US-22-PARENT"
        billing = stripe_customer(stack, child)
        assert (billing["name"], billing["email"]) == (account.name, contact.email)
        assert billing["address"]["city"] == account.billing_address.city
        assert billing["address"]["country"] == account.billing_address.country
        assert stack.duplicates() == {}


def netsuite_id(stack: Stack, account_id: str) -> int:
    return stack.sandbox.vendors["netsuite"].state.id_for_eid(
        "customer", f"pssync-cus-{account_id}"
    )


def test_a_system_is_sent_every_customer_field_but_its_own_under_any_name() -> None:
    owners = {
        "name": "crm",
        "parent_account": "erp",
        "payment_terms_days": "erp",
        "invoice_email": "billing",
    }
    erp = customer_fields(owners, "erp")
    assert set(erp) == CUSTOMER_FIELDS - {
        "parent_account",
        "parent_id",
        "payment_terms",
        "payment_terms_days",
    }
    billing = customer_fields(owners, "billing")
    assert set(billing) == CUSTOMER_FIELDS - {"invoice_email", "billing_contact"}
    account = Account(id="001A", name="Acme Inc.")
    to_billing = UpsertCustomer(idempotency_key="k", account=account, fields=billing)
    assert not to_billing.writes("invoice_email")
    assert not to_billing.writes("billing_contact")
    assert to_billing.writes("name")
    to_erp = UpsertCustomer(idempotency_key="k", account=account, fields=erp)
    assert not to_erp.writes("parent_id")
    assert not to_erp.writes("payment_terms")
    assert to_erp.writes("tax_id")
    # Owning the contact owns its email; owning nothing (or no customer field) is the
    # whole account.
    assert set(customer_fields({"billing_contact": "billing"}, "billing")) == (
        CUSTOMER_FIELDS - {"invoice_email", "billing_contact"}
    )
    assert customer_fields(owners, "psa") == ()
    assert customer_fields({"no_such_field": "psa"}, "psa") == ()


# -- malformed deals --------------------------------------------------------------------


async def test_malformed_deals_park_with_category_owner_and_amount(
    tmp_path, autojump_clock
) -> None:
    async with open_stack(tmp_path, workflows=(SPEC,)) as stack:
        report = stack.scenario.run_week()
        stack.touched()
        await settle(stack)
        before = vendor_objects(stack)

        exceptions = {deal_of(e): e for e in await stack.exceptions()}
        assert sorted(exceptions) == sorted(report.malformed_deals)
        no_contact, odd_currency, no_entity = (exceptions[d] for d in report.malformed_deals)
        sf = salesforce(stack)
        for deal_id, exception in exceptions.items():
            amount = Decimal(str(sf.records["Opportunity"][deal_id]["Amount"]))
            assert Decimal(exception.amount) == amount
            assert deal_id in exception.message
        assert (no_contact.category, no_contact.owner) == ("master_data", OWNERS["master_data"])
        assert "no billing contact" in no_contact.message
        assert "Billing Contact" in no_contact.message
        assert (odd_currency.category, odd_currency.owner) == ("contract", OWNERS["contract"])
        assert odd_currency.currency == "ZAR"
        assert "ZAR" in odd_currency.message
        assert "PSF-EU" in odd_currency.message
        assert (no_entity.category, no_entity.owner) == ("master_data", OWNERS["master_data"])
        assert "no legal entity" in no_entity.message
        # Refused before any vendor object was made for them.
        assert stack.duplicates() == {}
        assert before["netsuite/job"] == len(report.deals_won)
        assert len(await activations(stack)) == len(report.deals_won)


async def test_a_fixed_deal_activates_once_its_exception_is_resolved(
    tmp_path, autojump_clock
) -> None:
    async with open_stack(tmp_path, workflows=(SPEC,)) as stack:
        report = stack.scenario.run_week()
        stack.touched()
        await settle(stack)
        deal = report.malformed_deals[0]  # the account without a billing contact
        [exception] = [e for e in await stack.exceptions() if deal_of(e) == deal]

        # The stale run holds its customer group's key: ops resolve it, sales fix the data.
        await stack.journal.resolve_exception(exception.id, "ops", "contact added", stack.now())
        sf = salesforce(stack)
        account = sf.records["Opportunity"][deal]["AccountId"]
        contact = sf.insert("Contact", {"LastName": "Payables", "AccountId": account})
        sf.update("Account", account, {"Billing_Contact__c": contact})
        sf.update("Opportunity", deal, {"Description": "billing contact added"})
        stack.touched()
        await settle(stack)

        assert [e.body.project.opportunity_id for e in await activations(stack)].count(deal) == 1
        assert sf.records["Opportunity"][deal]["Project_Status__c"] == "active"
        assert stack.duplicates() == {}


async def test_the_currency_check_uses_the_entities_billing_currencies(
    tmp_path, autojump_clock
) -> None:
    async with open_stack(tmp_path, workflows=(SPEC,)) as stack:
        stack.pipeline.deps.entity_currencies = {"PSF-US": {"USD"}, "PSF-EU": {"EUR"}}
        report = stack.scenario.run_week()
        stack.touched()
        await settle(stack)
        exceptions = {deal_of(e): e for e in await stack.exceptions()}
        odd_currency = exceptions[report.malformed_deals[1]]
        assert odd_currency.category == "contract"
        assert "legal entity PSF-EU does not bill in (it bills in EUR)" in odd_currency.message
        # Checked before the ERP was asked: no ERP step ran.
        steps = await stack.journal.get_steps(odd_currency.run_id)
        assert "erp_customer" not in steps


# -- crashes and replays ----------------------------------------------------------------


class Gate(httpx.AsyncBaseTransport):
    """Holds the first request ``match`` accepts, before or after the vendor applied it."""

    def __init__(
        self,
        inner: httpx.AsyncBaseTransport,
        match: Callable[[httpx.Request], bool],
        *,
        after: bool,
    ) -> None:
        self.inner = inner
        self.match = match
        self.after = after
        self.reached = trio.Event()
        self.release = trio.Event()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        hold = not self.reached.is_set() and self.match(request)
        if hold and not self.after:
            self.reached.set()
            await self.release.wait()
        response = await self.inner.handle_async_request(request)
        if hold and self.after:
            self.reached.set()
            await self.release.wait()
        return response


def job_upsert(request: httpx.Request) -> bool:
    return request.method == "PUT" and "/record/v1/job/" in request.url.path


def customer_create(request: httpx.Request) -> bool:
    return request.method == "POST" and request.url.path == "/v1/customers"


@pytest.mark.parametrize(
    ("system", "match", "after", "recorded", "unrecorded"),
    [
        pytest.param(
            "erp", job_upsert, True, "psa_project", "erp_job", id="after-the-erp-wrote-the-job"
        ),
        pytest.param(
            "billing",
            customer_create,
            False,
            "erp_job",
            "billing_customer",
            id="between-erp-job-and-billing",
        ),
    ],
)
async def test_a_crash_mid_run_resumes_without_a_second_effect(
    tmp_path,
    autojump_clock,
    system: str,
    match: Callable[[httpx.Request], bool],
    after: bool,
    recorded: str,
    unrecorded: str,
) -> None:
    gates: list[Gate] = []

    def wrap(name: str, transport: httpx.AsyncBaseTransport) -> httpx.AsyncBaseTransport:
        if name != system:
            return transport
        gates.append(Gate(transport, match, after=after))
        return gates[-1]

    async with open_stack(tmp_path, workflows=(SPEC,), wrap_transport=wrap) as stack:
        [gate] = gates
        win_implementation_deal(stack, customer_accounts(stack, with_parent=False)[0])
        with trio.fail_after(600):
            await gate.reached.wait()
        [held] = await stack.runs(status="running")
        await stack.crash_and_restart(before_restart=gate.release.set)
        steps = await stack.journal.get_steps(held.id)
        assert recorded in steps
        assert unrecorded not in steps
        await settle(stack)

        [run] = [r for r in await stack.runs() if r.id == held.id]
        assert run.status == "completed"
        assert run.attempts >= 2
        assert stack.duplicates() == {}
        objects = vendor_objects(stack)
        assert objects["netsuite/job"] == 1
        assert objects["stripe/customer"] == 1
        assert objects["kantata/workspaces"] == 1
        assert len(await activations(stack)) == 1


async def test_replaying_every_deal_creates_nothing_new(tmp_path, autojump_clock) -> None:
    async with open_stack(tmp_path, workflows=(SPEC,)) as stack:
        sla = Recorder()
        stack.pipeline.deps.sla = sla
        stack.scenario.run_week()
        win_implementation_deal(stack, customer_accounts(stack, with_parent=True)[0])
        await settle(stack)
        before = vendor_objects(stack)
        activated = len(await activations(stack))
        observed = len(sla.activations)
        # The operator closes the three malformed deals' exceptions, then replays it all.
        for exception in await stack.exceptions():
            await stack.journal.resolve_exception(exception.id, "ops", "seen", stack.now())

        result = await replay(stack.journal, SPEC, ReplaySelection(from_seq=1), now=stack.now())
        stack.pipeline.workflows["deal_to_project"].notify()
        await settle(stack)

        assert len(result.runs) == len(await stack.events("deal.won"))
        replays = await stack.runs(workflow="deal_to_project")
        replays = [run for run in replays if run.replay]
        assert Counter(run.status for run in replays) == {
            "completed": len(replays) - 3,
            "waiting": 3,
        }
        assert vendor_objects(stack) == before
        assert stack.duplicates() == {}
        assert len(await activations(stack)) == activated
        assert len(sla.activations) == observed


# -- ERP routing ------------------------------------------------------------------------


async def test_two_erps_are_routed_by_legal_entity(tmp_path, autojump_clock) -> None:
    routes = {"erp": ("PSF-US",), "erp_intl": ("PSF-UK", "PSF-EU")}
    async with open_stack(tmp_path, workflows=(SPEC,), erp_systems=routes) as stack:
        by_entity: dict[str, str] = {}
        for account_id in customer_accounts(stack, with_parent=False):
            entity = salesforce(stack).records["Account"][account_id]["Legal_Entity__c"]
            by_entity.setdefault(entity, account_id)
        for account_id in by_entity.values():
            win_implementation_deal(stack, account_id)
        await settle(stack)

        published = await activations(stack)
        assert len(published) == len(by_entity) >= 2
        erp_of = {entity: erp for erp, entities in routes.items() for entity in entities}
        seen = set()
        for envelope in published:
            project = envelope.body.project
            entity = project.dimensions.legal_entity
            erp, other = erp_of[entity], ({*routes} - {erp_of[entity]}).pop()
            seen.add(erp)
            assert await stack.journal.system_id(PROJECT, project.id, erp) is not None
            assert await stack.journal.system_id(PROJECT, project.id, other) is None
            assert await stack.journal.system_id(ACCOUNT, project.account_id, erp) is not None
            assert {ref.system for ref in envelope.body.refs if ref.object_type == "job"} == {erp}
        assert seen == set(routes)
        assert stack.duplicates() == {}


# -- the checks on their own ------------------------------------------------------------


def _deal(*lines: OpportunityLine, **changes: Any) -> DealWon:
    contact = Contact(id="003C", last_name="Payables")
    account = Account(
        id="001A",
        name="Acme Inc.",
        legal_entity="PSF-US",
        currency="USD",
        billing_contact=contact,
        parent_id=changes.pop("parent_id", None),
    )
    opportunity = Opportunity(
        id="006D",
        account_id="001A",
        name="Acme - Build",
        service_line="implementation",
        legal_entity="PSF-US",
        lines=lines,
    )
    return DealWon(
        opportunity=opportunity,
        account=account,
        contacts=(contact,),
        account_hierarchy=changes.pop("hierarchy", ()),
    )


def _line(line_id: str, billing_type: Any, price: str = "100", **values: Any) -> OpportunityLine:
    return OpportunityLine(
        id=line_id,
        name=f"Line {line_id}",
        unit_price=Money.of(price, "USD"),
        billing_type=billing_type,
        **values,
    )


def _problems(event: DealWon, **kwargs: Any) -> list[Problem]:
    found = check_deal(event, erp_for=lambda entity: "erp" if entity else None, **kwargs)
    assert isinstance(found, list), "expected problems"
    return found


def test_a_sound_deal_resolves_its_entity_erp_and_currency() -> None:
    facts = check_deal(
        _deal(
            _line("1", "fixed_fee", milestone_percent=Decimal(60)),
            _line("2", "fixed_fee", milestone_percent=Decimal(40)),
            _line("3", "subscription", billing_frequency="month", quantity=Decimal(12)),
        ),
        erp_for=lambda entity: "erp",
        entity_currencies={"PSF-US": {"USD"}},
    )
    assert isinstance(facts, DealFacts)
    assert (facts.legal_entity, facts.erp, facts.currency) == ("PSF-US", "erp", "USD")


def test_line_problems_name_the_line_and_the_fix() -> None:
    problems = _problems(
        _deal(
            _line("1", "fixed_fee", milestone_percent=Decimal(60)),
            _line("2", "fixed_fee", milestone_percent=Decimal(30)),
            _line("3", None),
            _line("4", "subscription", billing_frequency="one_time"),
            _line("5", "time_and_materials", price="0", role="Analyst"),
        )
    )
    messages = "\n".join(p.message for p in problems)
    assert {p.category for p in problems} == {"contract"}
    assert "add up to 90%, not 100%" in messages
    assert "line 'Line 3' (3): Billing Type is empty" in messages
    assert "line 'Line 4' (4): a subscription needs a recurring Billing Frequency" in messages
    assert "line 'Line 5' (5): amount 0 USD" in messages


def test_a_deal_without_lines_or_with_an_unbilled_currency_is_refused() -> None:
    [problem] = _problems(_deal())
    assert (problem.category, "has no product lines" in problem.message) == ("contract", True)
    [problem] = _problems(
        _deal(_line("1", "time_and_materials", role="Analyst")),
        entity_currencies={"PSF-US": {"EUR"}},
    )
    assert "PSF-US does not bill in (it bills in EUR)" in problem.message


def test_a_hierarchy_that_loops_or_breaks_is_master_data() -> None:
    parent = Account(id="001P", name="Parent", parent_id="001A")
    line = _line("1", "time_and_materials", role="Analyst")
    [problem] = _problems(_deal(line, parent_id="001P", hierarchy=(parent,)))
    assert problem.category == "master_data"
    assert "loops back to account 001A" in problem.message
    [problem] = _problems(_deal(line, parent_id="001X"))
    assert "parent 001X of account 'Acme Inc.' (001A) could not be read" in problem.message
