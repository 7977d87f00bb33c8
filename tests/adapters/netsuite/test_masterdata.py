"""Customers and jobs: upsert by external id, dimensions, created only once."""

from __future__ import annotations

import json

import pytest

from actors.errors import PermanentError
from actors.messages import FinancialDimensions, UpsertCustomer, UpsertJob
from adapters.netsuite import external_id

from .builders import DIMS, account, customer_and_job, project


async def test_customer_is_created_once_then_updated(harness):
    adapter = harness.adapter()
    command = UpsertCustomer(idempotency_key="k1", correlation_id="c1", account=account())

    first = await adapter.execute(command)
    again = await adapter.execute(command)

    assert first.created is True
    assert again.created is False
    assert first.ids == again.ids
    eid = external_id("pssync", "cus", "001A")
    record = harness.by_eid("customer", eid)
    assert first.ids == {"001A": str(record["id"])}
    assert record["companyName"] == "Acme Corp"
    assert record["url"] == "https://acme.example"
    assert record["subsidiary"]["id"] == "1"  # legal entity PSF-US
    assert record["currency"]["id"] == "1"  # USD
    assert record["custentity_pssync_source"] == "001A"
    assert len(harness.records("customer")) == 1
    assert harness.state.duplicates() == []

    renamed = UpsertCustomer(
        idempotency_key="k2", account=account(name="Acme Corporation", currency="GBP")
    )
    result = await adapter.execute(renamed)
    assert result.created is False
    assert harness.by_eid("customer", eid)["companyName"] == "Acme Corporation"
    assert harness.by_eid("customer", eid)["currency"]["id"] == "2"
    assert len(harness.records("customer")) == 1


async def test_sub_customer_references_its_parent_by_external_id(harness):
    adapter = harness.adapter()
    parent = await adapter.execute(UpsertCustomer(idempotency_key="p", account=account("P1")))
    child = await adapter.execute(
        UpsertCustomer(
            idempotency_key="c",
            account=account("C1", name="Acme UK", parent_id="P1", legal_entity="PSF-UK"),
        )
    )
    record = harness.state.records["customer"][int(child.ids["C1"])]
    assert record["parent"]["id"] == parent.ids["P1"]
    assert record["subsidiary"]["id"] == "2"


async def test_job_carries_customer_and_financial_dimensions(harness):
    adapter = harness.adapter()
    customer_id, job_id = await customer_and_job(adapter)

    record = harness.state.records["job"][int(job_id)]
    assert record["externalId"] == external_id("pssync", "job", "PRJ-1")
    assert record["parent"]["id"] == customer_id
    assert record["subsidiary"]["id"] == "1"
    assert record["department"]["id"] == "1"
    assert record["class"]["id"] == "1"
    assert record["startDate"] == "2026-01-05"
    assert record["projectedEndDate"] == "2026-06-30"
    assert record["currency"]["id"] == "1"

    again = await adapter.execute(
        UpsertJob(
            idempotency_key="k-job",
            project=project(),
            customer_id=customer_id,
            dimensions=FinancialDimensions(department="Delivery"),
        )
    )
    assert again.created is False
    assert again.ids == {"PRJ-1": job_id}
    assert harness.state.records["job"][int(job_id)]["department"]["id"] == "2"
    assert len(harness.records("job")) == 1


async def test_unmapped_dimension_fails_before_any_call(harness):
    adapter = harness.adapter()
    command = UpsertJob(
        idempotency_key="k",
        project=project(),
        customer_id="999",
        dimensions=FinancialDimensions(legal_entity="PSF-US", department="Marketing"),
    )
    with pytest.raises(PermanentError, match="departments"):
        await adapter.execute(command)
    assert harness.transport.requests == []


async def test_refused_record_surfaces_netsuite_detail_and_path(harness):
    adapter = harness.adapter()
    command = UpsertJob(
        idempotency_key="k", project=project(), customer_id="99999", dimensions=DIMS
    )
    with pytest.raises(PermanentError) as caught:
        await adapter.execute(command)
    error = caught.value
    assert error.status == 400
    assert error.code == "INVALID_CONTENT"
    assert "Invalid value for field parent" in str(error)
    assert "(at parent)" in str(error)
    assert harness.records("job") == []


# -- restricted upserts (UpsertCustomer.fields) -------------------------------------------


def _put_bodies(harness) -> list[dict]:
    return [
        json.loads(r.content)
        for r in harness.transport.requests
        if r.method == "PUT" and "/record/v1/customer/" in r.url.path
    ]


async def test_restricted_upsert_leaves_other_fields_of_an_existing_customer_alone(harness):
    adapter = harness.adapter()
    await adapter.execute(UpsertCustomer(idempotency_key="k1", account=account(tax_id="GB-1")))
    eid = external_id("pssync", "cus", "001A")
    internal = harness.state.id_for_eid("customer", eid)
    # Edited in NetSuite by the people who own them (NetSuite has no change feed).
    harness.state.update(
        "customer", internal, {"vatRegNumber": "GB-ERP-2", "url": "https://erp.example"}
    )
    harness.transport.requests.clear()

    result = await adapter.execute(
        UpsertCustomer(
            idempotency_key="k2",
            account=account(name="Acme Renamed", tax_id="GB-1", currency="GBP"),
            fields=("name",),
        )
    )

    record = harness.by_eid("customer", eid)
    assert record["companyName"] == "Acme Renamed"
    assert record["vatRegNumber"] == "GB-ERP-2"
    assert record["url"] == "https://erp.example"
    assert record["currency"]["id"] == "1"  # not named: still USD
    assert result.created is False
    assert result.ids == {"001A": str(internal)}
    [body] = _put_bodies(harness)
    assert set(body) == {"companyName", "custentity_pssync_source", "externalId"}
    assert result.details["updated_fields"] == "companyName"


async def test_restricted_upsert_of_a_missing_customer_creates_it_whole(harness):
    adapter = harness.adapter()

    result = await adapter.execute(
        UpsertCustomer(idempotency_key="k", account=account(tax_id="GB-1"), fields=("name",))
    )

    assert result.created is True
    record = harness.by_eid("customer", external_id("pssync", "cus", "001A"))
    assert record["companyName"] == "Acme Corp"
    assert record["vatRegNumber"] == "GB-1"
    assert record["url"] == "https://acme.example"
    assert record["subsidiary"]["id"] == "1"
    assert record["currency"]["id"] == "1"


async def test_restricted_upsert_naming_nothing_netsuite_holds_writes_nothing(harness):
    adapter = harness.adapter()
    await adapter.execute(UpsertCustomer(idempotency_key="k1", account=account()))
    before = dict(harness.by_eid("customer", external_id("pssync", "cus", "001A")))
    harness.transport.requests.clear()

    result = await adapter.execute(
        UpsertCustomer(
            idempotency_key="k2", account=account(name="Other"), fields=("invoice_email",)
        )
    )

    assert result.created is False
    assert harness.transport.count("PUT") == 0
    assert harness.transport.count("POST", "suiteql") == 1  # the look only
    assert harness.by_eid("customer", external_id("pssync", "cus", "001A")) == before


async def test_restricted_upsert_naming_active_reactivates_the_customer(harness):
    adapter = harness.adapter()
    await adapter.execute(UpsertCustomer(idempotency_key="k1", account=account(active=False)))
    eid = external_id("pssync", "cus", "001A")
    assert harness.by_eid("customer", eid)["isInactive"] is True

    await adapter.execute(
        UpsertCustomer(idempotency_key="k2", account=account(name="Other"), fields=("active",))
    )

    record = harness.by_eid("customer", eid)
    assert record["isInactive"] is False
    assert record["companyName"] == "Acme Corp"
