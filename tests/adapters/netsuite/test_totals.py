"""Reconciliation totals and SuiteQL paging."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from actors.errors import PayloadError
from actors.messages import PostTimeEntries
from adapters.base import TotalsQuery
from adapters.governor import Lane
from adapters.netsuite.wire import RecordService
from adapters.sandbox import FaultConfig

from .builders import customer_and_job, time_entry, usd

JANUARY = TotalsQuery(
    project_id="PRJ-1", period_start=date(2026, 1, 1), period_end=date(2026, 1, 31)
)


async def test_time_totals_sum_hours_amount_and_count(harness):
    adapter = harness.adapter()
    await customer_and_job(adapter)
    entries = [
        time_entry(1),  # 7.25 h at 150
        time_entry(2),  # 1.5 h at 150
        time_entry(3, bill_rate=usd("99.99")),  # 7.25 h at 99.99
        time_entry(4, billable=False),  # 1.5 h, no amount
        time_entry(5, date_performed=date(2026, 2, 1)),  # outside the period
    ]
    await adapter.execute(
        PostTimeEntries(idempotency_key="k", project_id="PRJ-1", entries=tuple(entries))
    )

    totals = await adapter.totals(JANUARY)

    assert totals.system == "erp"
    assert totals.hours == Decimal("17.5")
    assert totals.entries == 4
    # 8.75 h x 150 = 1312.50; 7.25 h x 99.99 = 724.9275 → 724.93
    assert totals.amount == usd("2037.43")
    for request in harness.transport.requests[-2:]:
        assert "/suiteql" in request.url.path


async def test_unknown_project_has_zero_totals(harness):
    adapter = harness.adapter()
    totals = await adapter.totals(JANUARY)
    assert (totals.hours, totals.amount, totals.entries) == (Decimal(0), None, 0)


async def test_suiteql_pages_to_the_end_each_row_once(harness):
    adapter = harness.adapter()
    await customer_and_job(adapter)
    await adapter.execute(
        PostTimeEntries(
            idempotency_key="k",
            project_id="PRJ-1",
            entries=tuple(time_entry(n) for n in range(23)),
        )
    )
    records = RecordService(harness.client(), page_size=5)
    before = len(harness.transport.requests)

    rows = await records.suiteql(
        "SELECT id, externalid FROM timebill ORDER BY id", lane=Lane.ANALYTICS, correlation_id="c"
    )

    assert len(rows) == 23
    assert len({row["id"] for row in rows}) == 23
    assert all("links" not in row for row in rows)
    offsets = [r.url.params["offset"] for r in harness.transport.requests[before:]]
    assert offsets == ["0", "5", "10", "15", "20"]


async def test_malformed_suiteql_body_is_a_payload_error(harness):
    adapter = harness.adapter()
    await customer_and_job(adapter)
    harness.sandbox.injectors["netsuite"].configure(FaultConfig(malformed_rate=1.0))
    with pytest.raises(PayloadError, match="netsuite"):
        await adapter.totals(JANUARY)


async def test_undecodable_row_value_is_a_payload_error_naming_the_field(harness):
    adapter = harness.adapter()
    with pytest.raises(PayloadError) as caught:
        adapter._context.fields.read(
            "timebill_totals", {"hours": "lots", "entries": "1"}, dict, record_id="row-1"
        )
    assert "timebill_totals.hours" in str(caught.value)
    assert "row-1" in str(caught.value)
