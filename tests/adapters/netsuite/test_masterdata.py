"""Customers and jobs: upsert by external id, dimensions, created only once."""

from __future__ import annotations

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
