"""customer_master end to end: Salesforce account snapshots → NetSuite, Kantata, Stripe.

Ownership is the sandbox config's: ``name`` and ``parent_account`` are the CRM's,
``tax_id``, ``billing_address`` and ``payment_terms`` the ERP's, ``invoice_email``
billing's. The customer is provisioned in the three systems (as deal_to_project does)
after pssync has seen the account once; edits are made in the Salesforce sandbox.
"""

from __future__ import annotations

from collections import Counter
from typing import Any
from urllib.parse import parse_qsl

import httpx
import msgspec
import trio

from actors.messages import Account, UpsertCustomer, decode_envelope
from actors.workflows import ReplaySelection, replay
from actors.workflows.customer_master import SPEC, field_value
from tests.e2e.stack import Stack, open_stack

from .test_invoice_feedback import until_exceptions


class Writes(httpx.AsyncBaseTransport):
    """Counts customer writes per system (creates and updates, not reads)."""

    PATHS = ("/record/v1/customer", "/v1/customers", "workspace_groups", "sobjects/Account")

    def __init__(
        self,
        system: str,
        inner: httpx.AsyncBaseTransport,
        counter: Counter,
        hold: Hold | None,
        bodies: list[tuple[str, httpx.Request]] | None = None,
    ) -> None:
        self.system, self.inner, self.counter, self.hold = system, inner, counter, hold
        self.bodies = bodies

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        path = request.url.path
        if request.method in ("POST", "PUT", "PATCH") and any(p in path for p in self.PATHS):
            self.counter[self.system] += 1
            if self.bodies is not None:
                self.bodies.append((self.system, request))
            if self.hold is not None and self.hold.system == self.system and self.hold.armed:
                self.hold.armed = False
                self.hold.reached.set()
                await self.hold.release.wait()  # the vendor has it; the step is not recorded
        return response


class Hold:
    """Holds the response of one system's next customer write until released."""

    def __init__(self, system: str) -> None:
        self.system = system
        self.armed = False
        self.reached = trio.Event()
        self.release = trio.Event()


def recording(
    counter: Counter,
    hold: Hold | None = None,
    bodies: list[tuple[str, httpx.Request]] | None = None,
):
    def wrap(system: str, transport: httpx.AsyncBaseTransport) -> httpx.AsyncBaseTransport:
        return Writes(system, transport, counter, hold, bodies)

    return wrap


async def seen_account(stack: Stack) -> Account:
    for record in await stack.events("account.changed"):
        account = decode_envelope(record.body).body.account
        if account.legal_entity == "PSF-US" and account.currency == "USD" and not account.parent_id:
            return account
    raise AssertionError("no USD account without a parent in the seed")


async def provision(stack: Stack, account: Account) -> None:
    for system in ("erp", "psa", "billing"):
        result = await stack.pipeline.deps.execute(
            system, UpsertCustomer(idempotency_key=f"test-{system}-{account.id}", account=account)
        )
        await stack.journal.map_id(
            "account", account.id, system, result.ids[account.id], stack.now()
        )


def salesforce(stack: Stack) -> Any:
    return stack.sandbox.vendors["salesforce"].state


def erp_customer(stack: Stack, account_id: str) -> dict[str, Any]:
    state = stack.sandbox.vendors["netsuite"].state
    internal = state.id_for_eid("customer", f"pssync-cus-{account_id}")
    return state.get("customer", internal)


def stripe_customer(stack: Stack, account_id: str) -> dict[str, Any]:
    customers = stack.sandbox.vendors["stripe"].state.objects["customer"].values()
    [found] = [c for c in customers if c["metadata"].get("pssync_id") == account_id]
    return found


def kantata_client(stack: Stack, account: Account) -> dict[str, Any]:
    groups = stack.sandbox.vendors["kantata"].state.tables["workspace_groups"].values()
    return next(g for g in groups if g.get("company"))


async def edit(stack: Stack, account_id: str, **values: Any) -> None:
    salesforce(stack).update("Account", account_id, values)
    stack.touched()


async def test_a_crm_owned_change_reaches_every_holder_once(tmp_path, autojump_clock) -> None:
    writes: Counter = Counter()
    async with open_stack(tmp_path, workflows=(SPEC,), wrap_transport=recording(writes)) as stack:
        await stack.until_idle()
        first = await stack.runs(workflow="customer_master")
        assert first
        assert {run.status for run in first} == {"completed"}
        assert writes == Counter()  # first sightings: nobody holds the customers yet
        account = await seen_account(stack)
        await provision(stack, account)
        writes.clear()

        await edit(stack, account.id, Name="Renamed Holdings Ltd")
        await stack.until_idle()

        assert writes == Counter({"erp": 1, "psa": 1, "billing": 1})
        assert erp_customer(stack, account.id)["companyName"] == "Renamed Holdings Ltd"
        assert stripe_customer(stack, account.id)["name"] == "Renamed Holdings Ltd"
        assert kantata_client(stack, account)["name"] == "Renamed Holdings Ltd"
        [run] = [r for r in await stack.runs(key=f"account:{account.id}") if r not in first]
        steps = await stack.journal.get_steps(run.id)
        assert {"propagate:erp", "propagate:psa", "propagate:billing"} <= set(steps)
        assert await stack.exceptions() == []

        # Replaying the account's history changes nothing anywhere.
        writes.clear()
        before = stack.counts()
        await replay(
            stack.journal, SPEC, ReplaySelection(key=f"account:{account.id}"), now=stack.now()
        )
        stack.pipeline.workflows["customer_master"].runner.notify()
        await stack.until_idle()
        assert stack.counts() == before
        assert stack.duplicates() == {}
        assert erp_customer(stack, account.id)["companyName"] == "Renamed Holdings Ltd"
        # The replayed change is sent again with the same values: Stripe and Kantata see
        # nothing to write; NetSuite's upsert by external id rewrites the same record.
        assert (writes["billing"], writes["psa"]) == (0, 0)
        assert writes["erp"] <= 1


async def test_an_erp_owned_field_changed_in_the_crm_is_an_exception(
    tmp_path, autojump_clock
) -> None:
    writes: Counter = Counter()
    async with open_stack(tmp_path, workflows=(SPEC,), wrap_transport=recording(writes)) as stack:
        await stack.until_idle()
        account = await seen_account(stack)
        await provision(stack, account)
        old_tax_id = erp_customer(stack, account.id).get("vatRegNumber")
        writes.clear()

        await edit(stack, account.id, Tax_Id__c="GB-999-NEW")
        [exception] = await until_exceptions(stack, 1)

        assert (exception.workflow, exception.category, exception.owner) == (
            "customer_master",
            "master_data",
            "mdm",
        )
        assert exception.amount is None
        assert "tax_id changed in crm" in exception.message
        assert "owned by erp" in exception.message
        assert "not overwritten" in exception.message
        assert "GB-999-NEW" in exception.message
        assert writes == Counter()
        assert erp_customer(stack, account.id).get("vatRegNumber") == old_tax_id
        detail = msgspec.json.decode(exception.detail)["detail"]
        assert detail["conflicts"][0]["field"] == "tax_id"

        # Decided by a person; a later CRM-owned change still never carries the tax id.
        await stack.journal.resolve_exception(exception.id, "mdm", "ERP is right", stack.now())
        stack.pipeline.workflows["customer_master"].runner.notify()
        await edit(stack, account.id, Name="After The Conflict plc")
        await stack.until_idle()

        customer = erp_customer(stack, account.id)
        assert customer["companyName"] == "After The Conflict plc"
        assert customer.get("vatRegNumber") == old_tax_id
        assert len(await stack.exceptions()) == 0


async def test_crash_between_propagations_resumes_without_repeating(
    tmp_path, autojump_clock
) -> None:
    writes: Counter = Counter()
    hold = Hold("erp")
    wrap = recording(writes, hold)
    async with open_stack(tmp_path, workflows=(SPEC,), wrap_transport=wrap) as stack:
        await stack.until_idle()
        account = await seen_account(stack)
        await provision(stack, account)
        writes.clear()

        hold.armed = True
        await edit(stack, account.id, Name="Crashy Co")
        with trio.fail_after(600):
            await hold.reached.wait()  # billing went first (systems in name order), then erp
        await stack.crash_and_restart(before_restart=hold.release.set)
        await stack.until_idle()

        assert writes["billing"] == 1
        assert erp_customer(stack, account.id)["companyName"] == "Crashy Co"
        assert kantata_client(stack, account)["name"] == "Crashy Co"
        assert stack.duplicates() == {}
        runs = await stack.runs(key=f"account:{account.id}")
        assert {run.status for run in runs} == {"completed"}
        assert runs[-1].attempts == 2  # resumed after the crash, billing step memoised


# -- only the propagated fields are written -----------------------------------------------


async def new_crm_account(stack: Stack, name: str) -> str:
    """A USD account of PSF-US in the Salesforce sandbox with a tax id and a billing
    contact (the seed's accounts have no tax id); its Salesforce id."""
    state = salesforce(stack)
    account_id = state.insert(
        "Account",
        {
            "Name": name,
            "Type": "Customer",
            "Industry": "Manufacturing",
            "BillingCountry": "US",
            "BillingCity": "Boston",
            "CurrencyIsoCode": "USD",
            "Legal_Entity__c": "PSF-US",
            "Payment_Terms__c": "Net 30",
            "Website": "https://www.fresh.example",
            "Tax_Id__c": "US-11-1111111",
        },
    )
    contact_id = state.insert(
        "Contact",
        {
            "FirstName": "Ada",
            "LastName": "Payables",
            "Email": "ada@fresh.example",
            "AccountId": account_id,
        },
    )
    state.update("Account", account_id, {"Billing_Contact__c": contact_id})
    stack.touched()
    return account_id


async def latest_seen(stack: Stack, account_id: str) -> Account:
    """The account as the newest AccountChanged of it reported it."""
    accounts = [
        decode_envelope(record.body).body.account
        for record in await stack.events("account.changed")
    ]
    found = [account for account in accounts if account.id == account_id]
    assert found, f"no account.changed for {account_id}"
    return found[-1]


def edit_in_targets(stack: Stack, account_id: str) -> None:
    """What the owners change directly in their systems, where pssync cannot see it:
    the ERP's tax id in NetSuite, billing's invoice email in Stripe."""
    netsuite = stack.sandbox.vendors["netsuite"].state
    internal = netsuite.id_for_eid("customer", f"pssync-cus-{account_id}")
    netsuite.update("customer", internal, {"vatRegNumber": "US-99-ERP-OWNED"})
    stripe = stack.sandbox.vendors["stripe"].state
    stripe.update(
        "customer", stripe_customer(stack, account_id)["id"], {"email": "ar@billing.example"}
    )


def netsuite_puts(bodies: list[tuple[str, httpx.Request]]) -> list[dict[str, Any]]:
    return [
        msgspec.json.decode(request.content)
        for system, request in bodies
        if system == "erp" and request.method == "PUT"
    ]


def stripe_updates(bodies: list[tuple[str, httpx.Request]]) -> list[dict[str, str]]:
    return [
        dict(parse_qsl(request.content.decode()))
        for system, request in bodies
        if system == "billing" and request.url.path.startswith("/v1/customers/")
    ]


async def test_a_field_the_target_owns_and_changed_there_survives_a_crm_change(
    tmp_path, autojump_clock
) -> None:
    writes: Counter = Counter()
    bodies: list[tuple[str, httpx.Request]] = []
    wrap = recording(writes, bodies=bodies)
    async with open_stack(tmp_path, workflows=(SPEC,), wrap_transport=wrap) as stack:
        await stack.until_idle()
        account_id = await new_crm_account(stack, "Fresh Holdings Ltd")
        await stack.until_idle()  # first sighting: nobody holds it yet
        account = await latest_seen(stack, account_id)
        assert account.tax_id == "US-11-1111111"
        assert field_value(account, "invoice_email") == "ada@fresh.example"
        await provision(stack, account)
        edit_in_targets(stack, account_id)
        writes.clear()
        bodies.clear()

        await edit(stack, account_id, Name="Fresh Holdings Group Ltd")
        await stack.until_idle()

        # The CRM-owned change arrives everywhere ...
        customer = erp_customer(stack, account_id)
        assert customer["companyName"] == "Fresh Holdings Group Ltd"
        assert stripe_customer(stack, account_id)["name"] == "Fresh Holdings Group Ltd"
        assert kantata_client(stack, account)["name"] == "Fresh Holdings Group Ltd"
        # ... and what the owners changed in their own systems is not rolled back to the
        # value pssync last agreed (the CRM's tax id and contact email).
        assert customer["vatRegNumber"] == "US-99-ERP-OWNED"
        assert stripe_customer(stack, account_id)["email"] == "ar@billing.example"
        assert writes == Counter({"erp": 1, "psa": 1, "billing": 1})
        [put] = netsuite_puts(bodies)
        assert set(put) == {"companyName", "custentity_pssync_source", "externalId"}
        [update] = stripe_updates(bodies)
        assert {key for key in update if not key.startswith("metadata[")} == {"name"}
        assert await stack.exceptions() == []


async def test_a_first_sighting_writes_only_the_fields_the_source_owns(
    tmp_path, autojump_clock
) -> None:
    writes: Counter = Counter()
    bodies: list[tuple[str, httpx.Request]] = []
    wrap = recording(writes, bodies=bodies)
    async with open_stack(tmp_path, workflows=(SPEC,), wrap_transport=wrap) as stack:
        await stack.until_idle()
        slot = stack.pipeline.workflows["customer_master"]
        await slot.pause()  # the account's first snapshot waits until it is provisioned
        account_id = await new_crm_account(stack, "Fresh Holdings Ltd")
        await stack.until_idle()
        assert await stack.runs(key=f"account:{account_id}")
        seen = await latest_seen(stack, account_id)
        # Provisioned under an older name (renamed in the CRM before pssync's first
        # snapshot), then edited by the owners in their systems.
        await provision(stack, msgspec.structs.replace(seen, name="Fresh Holdings (old)"))
        edit_in_targets(stack, account_id)
        bodies.clear()

        await slot.resume()
        await stack.until_idle()

        [run] = await stack.runs(key=f"account:{account_id}")
        assert run.status == "completed"
        customer = erp_customer(stack, account_id)
        assert customer["companyName"] == "Fresh Holdings Ltd"
        assert customer["vatRegNumber"] == "US-99-ERP-OWNED"
        assert stripe_customer(stack, account_id)["name"] == "Fresh Holdings Ltd"
        assert stripe_customer(stack, account_id)["email"] == "ar@billing.example"
        assert kantata_client(stack, seen)["name"] == "Fresh Holdings Ltd"
        # Only what the CRM owns (name; parent_account, unset here) was sent.
        [put] = netsuite_puts(bodies)
        assert set(put) == {"companyName", "custentity_pssync_source", "externalId"}
        [update] = stripe_updates(bodies)
        assert {key for key in update if not key.startswith("metadata[")} == {"name"}
        assert await stack.exceptions() == []
