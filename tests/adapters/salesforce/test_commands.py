"""Write-backs: deal status and ids, billing progress, account fields, customer upserts."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import msgspec
import pytest

from actors.errors import PermanentError
from actors.messages import (
    Contact,
    ExternalRef,
    FieldChange,
    FinalizeInvoice,
    Money,
    UpdateAccountFields,
    UpdateBillingProgress,
    UpdateDealStatus,
    UpsertCustomer,
)
from adapters.base import TotalsQuery
from adapters.governor import Lane
from adapters.salesforce import BatchWriteError, SalesforceAdapter
from adapters.sandbox import Sandbox
from adapters.sandbox.salesforce import SalesforceError

from .conftest import RecordingTransport, admin, customer, drain, feed


def sf_state(sandbox: Sandbox):
    return sandbox.vendors["salesforce"].state


def a_deal(sandbox: Sandbox) -> dict:
    return next(iter(sf_state(sandbox).records["Opportunity"].values()))


def status(opportunity_id: str, value: str = "active", **kwargs) -> UpdateDealStatus:
    return UpdateDealStatus(
        idempotency_key=f"deal:{opportunity_id}:{value}",
        correlation_id="corr-deal",
        opportunity_id=opportunity_id,
        status=value,
        **kwargs,
    )


async def test_deal_status_writes_status_ids_and_message(
    autojump_clock, sandbox: Sandbox, adapter: SalesforceAdapter
) -> None:
    deal = a_deal(sandbox)
    command = status(
        deal["Id"],
        "failed",
        message="no legal entity",
        refs=(
            ExternalRef(system="psa", id="WS-17"),
            ExternalRef(system="erp", id="JOB-9"),
            ExternalRef(system="erp", id="C-123", object_type="customer"),
            ExternalRef(system="ledger", id="x"),
        ),
    )
    result = await adapter.execute(command)
    record = sf_state(sandbox).records["Opportunity"][deal["Id"]]
    account = sf_state(sandbox).records["Account"][deal["AccountId"]]
    assert record["Project_Status__c"] == "failed"
    assert record["Sync_Error__c"] == "no legal entity"
    assert record["PSA_Project_Id__c"] == "WS-17"
    assert record["ERP_Project_Id__c"] == "JOB-9"
    assert account["ERP_Customer_Id__c"] == "C-123"
    assert result.ids == {"opportunity": deal["Id"], "account": deal["AccountId"]}
    assert result.details == {"skipped_refs": "ledger/-"}
    assert not result.created


async def test_repeated_deal_status_writes_nothing_the_second_time(
    autojump_clock, sandbox: Sandbox, adapter: SalesforceAdapter, transport: RecordingTransport
) -> None:
    deal = a_deal(sandbox)
    command = status(deal["Id"], refs=(ExternalRef(system="psa", id="WS-1"),))
    await adapter.execute(command)
    stamp = sf_state(sandbox).records["Opportunity"][deal["Id"]]["SystemModstamp"]
    writes_before = [r for r in transport.data_requests() if r.method == "PATCH"]
    second = await adapter.execute(command)
    writes_after = [r for r in transport.data_requests() if r.method == "PATCH"]
    assert len(writes_after) == len(writes_before) == 1
    # Unchanged: the won_deals feed does not report the deal again for a no-op.
    assert sf_state(sandbox).records["Opportunity"][deal["Id"]]["SystemModstamp"] == stamp
    assert second.ids == {"opportunity": deal["Id"]}
    assert not second.created


async def test_batched_deal_statuses_split_into_collections_of_200(
    autojump_clock, sandbox: Sandbox, adapter: SalesforceAdapter, transport: RecordingTransport
) -> None:
    state = sf_state(sandbox)
    account_id = next(iter(state.records["Account"]))
    deals = [
        state.insert(
            "Opportunity",
            {
                "Name": f"D{n}",
                "AccountId": account_id,
                "StageName": "Closed Won",
                "CloseDate": "2026-01-01",
            },
        )
        for n in range(450)
    ]
    results = await adapter.update_deal_statuses([status(d, "provisioning") for d in deals])
    assert len(results) == 450
    assert all(
        state.records["Opportunity"][d]["Project_Status__c"] == "provisioning" for d in deals
    )
    collection_calls = [
        r for r in transport.data_requests() if r.url.path.endswith("/composite/sobjects")
    ]
    assert len(collection_calls) == 3  # 200 + 200 + 50


async def test_partial_batch_failure_names_the_failed_records(
    autojump_clock, sandbox: Sandbox, adapter: SalesforceAdapter, monkeypatch
) -> None:
    good, bad = list(sf_state(sandbox).records["Opportunity"])[:2]
    original_update = sf_state(sandbox).update

    def refusing_update(type_name, record_id, values, **kwargs):
        # What a real org answers for e.g. a value too long for the field.
        if record_id == bad:
            raise SalesforceError(
                400,
                "STRING_TOO_LONG",
                "Project Status: data value too large",
                ["Project_Status__c"],
            )
        return original_update(type_name, record_id, values, **kwargs)

    monkeypatch.setattr(sf_state(sandbox), "update", refusing_update)
    with pytest.raises(BatchWriteError) as caught:
        await adapter.update_deal_statuses([status(good), status(bad)])
    assert caught.value.failed == {
        bad: "STRING_TOO_LONG: Project Status: data value too large [Project_Status__c]"
    }
    assert set(caught.value.succeeded) == {good}
    assert isinstance(caught.value, PermanentError)
    assert bad in str(caught.value)
    assert sf_state(sandbox).records["Opportunity"][good]["Project_Status__c"] == "active"
    assert sf_state(sandbox).records["Opportunity"][bad]["Project_Status__c"] is None


async def test_unknown_opportunity_is_permanent(autojump_clock, adapter: SalesforceAdapter) -> None:
    with pytest.raises(PermanentError, match="no Opportunity"):
        await adapter.execute(status("006Rs0000000ZZZZZZ"))
    with pytest.raises(PermanentError, match="not a Salesforce Opportunity id"):
        await adapter.execute(status("deal-1"))


async def test_upsert_customer_twice_leaves_one_account(
    autojump_clock, sandbox: Sandbox, adapter: SalesforceAdapter
) -> None:
    before = sf_state(sandbox).counts()["Account"]
    contact = Contact(id="CONT-1", first_name="Ada", last_name="Payables", email="ap@c1.example")
    command = UpsertCustomer(
        idempotency_key="cust-1",
        account=customer(1, external_refs=(ExternalRef(system="erp", id="C-77"),)),
        contacts=(contact,),
    )
    first = await adapter.execute(command)
    second = await adapter.execute(command)
    assert first.created
    assert not second.created
    assert first.ids == second.ids
    record = sf_state(sandbox).records["Account"][first.ids["CUST-0001"]]
    assert record["Source_Key__c"] == "CUST-0001"
    assert record["Name"] == "Customer 1"
    assert record["CurrencyIsoCode"] == "GBP"
    assert record["Payment_Terms__c"] == "Net 30"
    assert record["BillingStreet"] == "1 High Street\nFloor 2"
    assert record["ERP_Customer_Id__c"] == "C-77"
    contact_record = sf_state(sandbox).records["Contact"][first.ids["CONT-1"]]
    assert contact_record["AccountId"] == first.ids["CUST-0001"]
    assert sf_state(sandbox).counts()["Account"] == before + 1
    duplicates = (await admin(sandbox, "GET", "/duplicates")).json()["duplicates"]
    assert duplicates == []


async def test_upsert_customer_of_ours_updates_by_id(
    autojump_clock, sandbox: Sandbox, adapter: SalesforceAdapter
) -> None:
    account_id = next(iter(sf_state(sandbox).records["Account"]))
    before = sf_state(sandbox).counts()["Account"]
    account = customer(2, external_refs=(ExternalRef(system="crm", id=account_id),))
    result = await adapter.execute(UpsertCustomer(idempotency_key="c2", account=account))
    assert result.ids == {"CUST-0002": account_id}
    assert not result.created
    assert sf_state(sandbox).records["Account"][account_id]["Name"] == "Customer 2"
    assert sf_state(sandbox).counts()["Account"] == before


async def test_several_matches_are_permanent_and_write_nothing(
    autojump_clock, sandbox: Sandbox, adapter: SalesforceAdapter
) -> None:
    for name in ("Twin A", "Twin B"):
        sf_state(sandbox).insert("Account", {"Name": name, "Source_Key__c": "CUST-0003"})
    with pytest.raises(PermanentError) as caught:
        await adapter.execute(UpsertCustomer(idempotency_key="c3", account=customer(3)))
    assert caught.value.code == "MULTIPLE_CHOICES"


async def test_a_restricted_upsert_writes_only_the_named_fields_of_an_existing_account(
    autojump_clock, sandbox: Sandbox, adapter: SalesforceAdapter, transport: RecordingTransport
) -> None:
    first = await adapter.execute(UpsertCustomer(idempotency_key="c1", account=customer(1)))
    account_id = first.ids["CUST-0001"]
    sf_state(sandbox).update(
        "Account", account_id, {"Tax_Id__c": "GB-EDITED", "Website": "https://w"}
    )
    transport.requests.clear()

    result = await adapter.execute(
        UpsertCustomer(
            idempotency_key="c1-name",
            account=msgspec.structs.replace(
                customer(1, website="https://stale"), name="Customer One Renamed"
            ),
            fields=("name",),
        )
    )

    assert result.ids == {"CUST-0001": account_id}
    assert not result.created
    record = sf_state(sandbox).records["Account"][account_id]
    assert record["Name"] == "Customer One Renamed"
    assert record["Tax_Id__c"] == "GB-EDITED"
    assert record["Website"] == "https://w"
    [patch] = [r for r in transport.data_requests() if r.method == "PATCH"]
    assert patch.url.path.endswith(f"/sobjects/Account/{account_id}")
    assert json.loads(patch.content) == {"Name": "Customer One Renamed"}


async def test_a_restricted_upsert_of_a_missing_account_creates_it_whole(
    autojump_clock, sandbox: Sandbox, adapter: SalesforceAdapter
) -> None:
    result = await adapter.execute(
        UpsertCustomer(idempotency_key="c5", account=customer(5), fields=("name",))
    )

    assert result.created
    record = sf_state(sandbox).records["Account"][result.ids["CUST-0005"]]
    assert record["Tax_Id__c"] == "GB000111222"
    assert record["BillingCity"] == "Leeds"


async def test_restricted_upserts_are_not_batched(
    autojump_clock, adapter: SalesforceAdapter
) -> None:
    command = UpsertCustomer(idempotency_key="c6", account=customer(6), fields=("name",))
    with pytest.raises(ValueError, match="whole accounts"):
        await adapter.upsert_customers([command])


async def test_batched_customer_upserts(
    autojump_clock, sandbox: Sandbox, adapter: SalesforceAdapter, transport: RecordingTransport
) -> None:
    commands = [UpsertCustomer(idempotency_key=f"c{n}", account=customer(n)) for n in range(250)]
    first = await adapter.upsert_customers(commands)
    second = await adapter.upsert_customers(commands)
    assert all(r.created for r in first)
    assert not any(r.created for r in second)
    assert [r.ids for r in first] == [r.ids for r in second]
    assert (await admin(sandbox, "GET", "/duplicates")).json()["duplicates"] == []
    upserts = [r for r in transport.data_requests() if "/composite/sobjects/Account/" in r.url.path]
    assert len(upserts) == 4


async def test_update_account_fields_through_the_mapping(
    autojump_clock, sandbox: Sandbox, adapter: SalesforceAdapter
) -> None:
    account_id = next(iter(sf_state(sandbox).records["Account"]))
    changes = (
        FieldChange.of("payment_terms_days", 30, 60),
        FieldChange.of("tax_id", "", "DE811"),
        FieldChange.of("legal_entity", "PSF-EU", None),
    )
    result = await adapter.execute(
        UpdateAccountFields(idempotency_key="f1", account_id=account_id, changes=changes)
    )
    record = sf_state(sandbox).records["Account"][account_id]
    assert record["Payment_Terms__c"] == "Net 60"
    assert record["Tax_Id__c"] == "DE811"
    assert record["Legal_Entity__c"] is None
    assert result.details["updated_fields"] == "Legal_Entity__c,Payment_Terms__c,Tax_Id__c"
    with pytest.raises(PermanentError, match="read-only"):
        await adapter.execute(
            UpdateAccountFields(
                idempotency_key="f2",
                account_id=account_id,
                changes=(FieldChange.of("parent_id", None, "001x"),),
            )
        )
    with pytest.raises(PermanentError, match="payment_terms_days") as caught:
        await adapter.execute(
            UpdateAccountFields(
                idempotency_key="f3",
                account_id=account_id,
                changes=(FieldChange.of("payment_terms_days", 30, 17),),
            )
        )
    assert caught.value.code == "UNMAPPABLE_VALUE"


async def test_billing_progress_on_deal_and_account(
    autojump_clock, sandbox: Sandbox, adapter: SalesforceAdapter
) -> None:
    deal = a_deal(sandbox)
    currency = deal["CurrencyIsoCode"]
    amount = Decimal(repr(deal["Amount"]))
    account = sf_state(sandbox).records["Account"][deal["AccountId"]]
    command = UpdateBillingProgress(
        idempotency_key="bp1",
        account_id=deal["AccountId"],
        opportunity_id=deal["Id"],
        invoiced=Money(amount=amount / 4, currency=currency),
        paid=Money.of("100.10", currency),
        outstanding=Money.of("1234.56", account["CurrencyIsoCode"]),
    )
    result = await adapter.execute(command)
    record = sf_state(sandbox).records["Opportunity"][deal["Id"]]
    assert record["Billing_Progress__c"] == 25.0
    assert Decimal(repr(record["Invoiced_Amount__c"])) == amount / 4
    assert record["Paid_Amount__c"] == 100.1
    assert account["Balance_Due__c"] == 1234.56
    assert result.ids == {"opportunity": deal["Id"], "account": deal["AccountId"]}
    stamp = record["SystemModstamp"]
    again = await adapter.execute(command)
    assert again.details["updated_fields"] == ""
    assert sf_state(sandbox).records["Opportunity"][deal["Id"]]["SystemModstamp"] == stamp
    assert adapter.lane_for(command) is Lane.ANALYTICS


async def test_billing_progress_in_another_currency_is_refused(
    autojump_clock, sandbox: Sandbox, adapter: SalesforceAdapter
) -> None:
    deal = a_deal(sandbox)
    other = "JPY" if deal["CurrencyIsoCode"] != "JPY" else "USD"
    with pytest.raises(PermanentError) as caught:
        await adapter.execute(
            UpdateBillingProgress(
                idempotency_key="bp2",
                account_id=deal["AccountId"],
                opportunity_id=deal["Id"],
                invoiced=Money.of("10", other),
            )
        )
    assert caught.value.code == "CURRENCY_MISMATCH"
    assert sf_state(sandbox).records["Opportunity"][deal["Id"]]["Invoiced_Amount__c"] is None


async def test_unsupported_command_and_totals_are_permanent(adapter: SalesforceAdapter) -> None:
    with pytest.raises(PermanentError, match="salesforce does not handle finalize_invoice"):
        await adapter.execute(FinalizeInvoice(idempotency_key="k", invoice_id="in_1"))
    with pytest.raises(PermanentError, match="no project totals"):
        await adapter.totals(
            TotalsQuery(project_id="P", period_start=date(2026, 1, 1), period_end=date(2026, 1, 31))
        )
    assert adapter.lane_for(status("006Rs0000000001AAA")) is Lane.MASTER_DATA


async def test_writing_to_a_missing_account_is_permanent_not_found(
    autojump_clock, adapter: SalesforceAdapter
) -> None:
    with pytest.raises(PermanentError) as caught:
        await adapter.execute(
            UpdateAccountFields(
                idempotency_key="f4",
                account_id="001Rs0000000ZZZZZZ",
                changes=(FieldChange.of("tax_id", None, "X1"),),
            )
        )
    assert caught.value.status == 404
    assert caught.value.code == "NOT_FOUND"


async def test_a_write_back_that_changes_a_deal_reports_it_again(
    autojump_clock, sandbox: Sandbox, adapter: SalesforceAdapter, clock
) -> None:
    # Documented behaviour (see WonDealsFeed): a real change moves SystemModstamp.
    state = sf_state(sandbox)
    deal = a_deal(sandbox)
    state.update("Opportunity", deal["Id"], {"StageName": "Closed Won"})
    won = feed(adapter, "won_deals")
    first, watermark = await drain(won, None, limit=50)
    clock.advance(3600)
    await adapter.execute(status(deal["Id"], refs=(ExternalRef(system="psa", id="WS-5"),)))
    again, _ = await drain(won, watermark, limit=50)
    (envelope,) = [e for e in again if e.body.opportunity.id == deal["Id"]]
    assert envelope.id not in {e.id for e in first}
    assert ExternalRef(system="psa", id="WS-5") in envelope.body.opportunity.external_refs
