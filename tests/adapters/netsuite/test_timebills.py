"""PostTimeEntries: one time bill per entry, look before create, bounded concurrency."""

from __future__ import annotations

from decimal import Decimal

import pytest
import trio

from actors.errors import PermanentError
from actors.messages import FinancialDimensions, PostTimeEntries
from adapters.netsuite import external_id
from adapters.sandbox import FaultConfig

from .builders import customer_and_job, time_entry, usd

SUITEQL = "/query/v1/suiteql"
TIMEBILL = "/record/v1/timebill/"


def post(entries, key: str = "k-time", **changes) -> PostTimeEntries:
    values = {
        "idempotency_key": key,
        "correlation_id": "corr-month-end",
        "project_id": "PRJ-1",
        "entries": tuple(entries),
        "dimensions": FinancialDimensions(department="Delivery", location="New York"),
    }
    return PostTimeEntries(**(values | changes))


async def test_each_entry_becomes_one_time_bill_with_its_values(harness):
    adapter = harness.adapter()
    _, job_id = await customer_and_job(adapter)
    entries = [
        time_entry(1),
        time_entry(2, billable=False, dimensions=FinancialDimensions(cost_centre="Advisory")),
    ]

    result = await adapter.execute(post(entries))

    assert result.created is True
    assert result.details == {"posted": "2", "skipped": "0"}
    first = harness.by_eid("timebill", external_id("pssync", "tb", "te-1"))
    assert result.ids == {
        "te-1": str(first["id"]),
        "te-2": str(harness.by_eid("timebill", external_id("pssync", "tb", "te-2"))["id"]),
    }
    assert first["hours"] == 7.25
    assert first["rate"] == 150.0
    assert first["isBillable"] is True
    assert first["tranDate"] == "2026-01-02"
    assert first["customer"] == {"id": job_id, "_type": "job"}
    assert first["employee"]["id"] == "101"  # consultant u1
    assert first["department"]["id"] == "2"  # command default
    assert first["location"]["id"] == "1"
    assert first["item"]["id"] == "1"
    assert first["memo"] == "work 1 [pssync:pssync-tb-te-1]"
    second = harness.by_eid("timebill", external_id("pssync", "tb", "te-2"))
    assert second["isBillable"] is False
    assert "rate" not in second
    assert second["class"]["id"] == "1"  # the entry's own dimension
    assert second["department"]["id"] == "2"  # merged over the command's


async def test_replay_posts_nothing_and_costs_one_query(harness):
    adapter = harness.adapter()
    await customer_and_job(adapter)
    command = post([time_entry(n) for n in range(20)])
    first = await adapter.execute(command)
    before = len(harness.transport.requests)

    again = await adapter.execute(command)

    assert again.created is False
    assert again.ids == first.ids
    assert again.details == {"posted": "0", "skipped": "20"}
    replay_requests = harness.transport.requests[before:]
    assert [r.method for r in replay_requests] == ["POST"]
    assert SUITEQL in replay_requests[0].url.path
    assert len(harness.records("timebill")) == 20
    assert harness.state.duplicates() == []


async def test_call_count_is_lookups_plus_missing_entries(make_harness):
    harness = make_harness()
    adapter = harness.adapter(suiteql_page_size=10, lookup_chunk_size=10)
    await customer_and_job(adapter)
    await adapter.execute(post([time_entry(n) for n in range(5)], key="part"))
    before = len(harness.transport.requests)

    result = await adapter.execute(post([time_entry(n) for n in range(25)]))

    requests = harness.transport.requests[before:]
    lookups = sum(1 for r in requests if SUITEQL in r.url.path)
    puts = sum(1 for r in requests if r.method == "PUT")
    assert (lookups, puts, len(requests)) == (3, 20, 23)  # ceil(25/10) + (25 - 5)
    assert result.created is True
    assert result.details == {"posted": "20", "skipped": "5"}
    assert len(result.ids) == 25
    assert len(harness.records("timebill")) == 25


async def test_every_request_carries_the_correlation_id(harness):
    adapter = harness.adapter()
    await customer_and_job(adapter)
    before = len(harness.transport.requests)
    await adapter.execute(post([time_entry(n) for n in range(3)]))
    requests = harness.transport.requests[before:]
    assert requests
    assert {r.headers["X-Correlation-ID"] for r in requests} == {"corr-month-end"}


async def test_upserts_stay_under_the_account_limit(make_harness, autojump_clock):
    in_flight: list[int] = []

    async def hook(request):
        in_flight.append(harness.sandbox.vendors["netsuite"].app.gate.active)

    harness = make_harness(concurrency_limit=5, processing_ms=(5.0, 40.0), request_hook=hook)
    adapter = harness.adapter(client=harness.client(max_concurrency=4), max_parallel_upserts=8)
    await customer_and_job(adapter)

    result = await adapter.execute(post([time_entry(n) for n in range(50)]))

    assert len(result.ids) == 50
    assert harness.throttled == 0
    assert max(in_flight) == 4  # the governor's cap, reached and never passed
    assert len(harness.records("timebill")) == 50
    assert harness.state.duplicates() == []


async def test_governor_above_the_limit_gets_429s_that_retries_absorb(make_harness, autojump_clock):
    harness = make_harness(concurrency_limit=5, processing_ms=(5.0, 40.0))
    adapter = harness.adapter(
        client=harness.client(max_concurrency=12, max_attempts=10), max_parallel_upserts=12
    )
    await customer_and_job(adapter)

    result = await adapter.execute(post([time_entry(n) for n in range(50)]))

    assert harness.throttled > 0
    assert len(result.ids) == 50
    records = harness.records("timebill")
    assert len(records) == 50
    assert sorted(r["externalId"] for r in records) == sorted(
        external_id("pssync", "tb", f"te-{n}") for n in range(50)
    )
    assert harness.state.duplicates() == []


async def test_injected_429_bursts_and_5xx_lose_and_double_nothing(harness, autojump_clock):
    adapter = harness.adapter(client=harness.client(max_attempts=8))
    await customer_and_job(adapter)
    harness.sandbox.injectors["netsuite"].configure(
        FaultConfig(burst_429_every=7, burst_429_length=3, error_rate=0.2, error_status=503, seed=3)
    )

    result = await adapter.execute(post([time_entry(n) for n in range(40)]))

    stats = harness.sandbox.injectors["netsuite"].stats
    assert stats.throttled > 0
    assert stats.errors > 0
    assert len(result.ids) == 40
    assert len(harness.records("timebill")) == 40
    assert harness.state.duplicates() == []
    again = await adapter.execute(post([time_entry(n) for n in range(40)]))
    assert again.created is False
    assert len(harness.records("timebill")) == 40


async def test_a_refused_entry_fails_the_step_but_the_others_are_posted(harness):
    adapter = harness.adapter()
    await customer_and_job(adapter)
    entries = [time_entry(n) for n in range(6)]
    entries[3] = time_entry(3, hours=Decimal("25"))  # NetSuite refuses more than 24 h

    with pytest.raises(PermanentError) as caught:
        await adapter.execute(post(entries))

    assert "1 of 6 time entries not posted; te-3" in str(caught.value)
    assert "(at hours)" in str(caught.value)
    assert len(harness.records("timebill")) == 5
    fixed = [*entries[:3], time_entry(3), *entries[4:]]
    result = await adapter.execute(post(fixed))
    assert result.details == {"posted": "1", "skipped": "5"}
    assert len(harness.records("timebill")) == 6


async def test_entry_with_erp_employee_reference_uses_it(harness):
    from actors.messages import ExternalRef

    adapter = harness.adapter()
    await customer_and_job(adapter)
    entry = time_entry(
        1,
        consultant_id="someone-new",
        external_refs=(ExternalRef(system="erp", id="105", object_type="employee"),),
        bill_rate=usd("99.50"),
    )
    await adapter.execute(post([entry]))
    record = harness.by_eid("timebill", external_id("pssync", "tb", "te-1"))
    assert record["employee"]["id"] == "105"
    assert record["rate"] == 99.5


async def test_cancellation_is_not_swallowed(harness, autojump_clock):
    adapter = harness.adapter()
    await customer_and_job(adapter)
    with trio.move_on_after(0) as scope:
        await adapter.execute(post([time_entry(n) for n in range(5)]))
    assert scope.cancelled_caught
