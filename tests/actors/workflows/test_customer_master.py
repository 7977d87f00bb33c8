"""customer_master end to end: Salesforce account snapshots → NetSuite, Kantata, Stripe.

Ownership is the sandbox config's: ``name`` and ``parent_account`` are the CRM's,
``tax_id``, ``billing_address`` and ``payment_terms`` the ERP's, ``invoice_email``
billing's. The customer is provisioned in the three systems (as deal_to_project does)
after pssync has seen the account once; edits are made in the Salesforce sandbox.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import httpx
import msgspec
import trio

from actors.messages import Account, UpsertCustomer, decode_envelope
from actors.workflows import ReplaySelection, replay
from actors.workflows.customer_master import SPEC
from tests.e2e.stack import Stack, open_stack

from .test_invoice_feedback import until_exceptions


class Writes(httpx.AsyncBaseTransport):
    """Counts customer writes per system (creates and updates, not reads)."""

    PATHS = ("/record/v1/customer", "/v1/customers", "workspace_groups", "sobjects/Account")

    def __init__(
        self, system: str, inner: httpx.AsyncBaseTransport, counter: Counter, hold: Hold | None
    ) -> None:
        self.system, self.inner, self.counter, self.hold = system, inner, counter, hold

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        path = request.url.path
        if request.method in ("POST", "PUT", "PATCH") and any(p in path for p in self.PATHS):
            self.counter[self.system] += 1
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


def recording(counter: Counter, hold: Hold | None = None):
    def wrap(system: str, transport: httpx.AsyncBaseTransport) -> httpx.AsyncBaseTransport:
        return Writes(system, transport, counter, hold)

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
