"""Change feeds over a business that keeps moving: paging, overlap, shifts, faults."""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime
from decimal import Decimal

import msgspec
import pytest

from actors.errors import PayloadError
from actors.messages import (
    Envelope,
    ExpenseApproved,
    ExternalRef,
    MarkEntriesExported,
    MilestoneCompleted,
    Money,
    TimeApproved,
    envelope_id,
)
from adapters.base import ChangeFeed
from adapters.kantata import KantataAdapter, KantataOptions
from adapters.sandbox import FaultConfig, Sandbox
from adapters.sandbox.kantata import KantataState
from adapters.sandbox.scenario import Scenario, WeekReport

from .conftest import Recorder, create_command, make_adapter


async def provision(adapter: KantataAdapter, projects: int = 3) -> list[str]:
    results = [await adapter.execute(create_command(n)) for n in range(1, projects + 1)]
    return [result.ids["workspace"] for result in results]


def play(sandbox: Sandbox, weeks: int, month_end_entries: int = 3000) -> list[WeekReport]:
    """Weekly time, approvals, month-end spike (week 5 holds 31 January), milestones."""
    scenario = Scenario(sandbox, seed=5, month_end_entries=month_end_entries)
    return [scenario.run_week() for _ in range(weeks)]


def feed(adapter: KantataAdapter, name: str) -> ChangeFeed:
    return next(f for f in adapter.feeds() if f.name == name)


async def sweep(
    feed: ChangeFeed, watermark: str | None, *, limit: int = 200, between=None
) -> tuple[list[Envelope], str | None, int]:
    """Poll until the feed has nothing more; returns envelopes, watermark, pages read."""
    envelopes: list[Envelope] = []
    pages = 0
    while True:
        page = await feed.poll(watermark, limit=limit)
        pages += 1
        envelopes.extend(page.envelopes)
        watermark = page.watermark
        if between is not None:
            between(pages)
        if not page.more:
            return envelopes, watermark, pages


def approved_ids(state: KantataState) -> set[str]:
    return {i for i, e in state.tables["time_entries"].items() if e["approved"]}


async def test_thousands_of_approved_entries_each_appear_once(
    autojump_clock, adapter: KantataAdapter, sandbox: Sandbox, state: KantataState
) -> None:
    await provision(adapter)
    reports = play(sandbox, weeks=5)
    assert reports[-1].month_end_spike > 3000
    approved = approved_ids(state)
    assert len(approved) > 2000, "the month-end spike is in"
    time_feed = feed(adapter, "approved_time")
    assert time_feed.workflow == "time_expense_to_erp"

    first, watermark, pages = await sweep(time_feed, None, limit=200)
    assert pages >= len(approved) // 200
    entry_ids = [env.body.entry.id for env in first]
    assert Counter(entry_ids).most_common(1)[0][1] == 1, "no entry twice within a sweep"
    assert set(entry_ids) == approved

    # A re-poll re-reads the overlap; the journal's unique envelope id drops the repeats.
    again, watermark, _ = await sweep(time_feed, watermark)
    assert again, "the overlap was re-read"
    assert {env.id for env in again} <= {env.id for env in first}

    # New approvals after that are found, old ones not re-emitted under new ids.
    play(sandbox, weeks=1, month_end_entries=0)
    newly = approved_ids(state) - approved
    later, _, _ = await sweep(time_feed, watermark)
    unique = {env.id: env for env in [*first, *again, *later]}
    counted = Counter(env.body.entry.id for env in unique.values())
    assert set(counted) == approved | newly
    assert max(counted.values()) == 1


async def test_the_overlap_recheck_skips_what_was_exported(
    autojump_clock,
    adapter: KantataAdapter,
    sandbox: Sandbox,
    state: KantataState,
    recorder: Recorder,
) -> None:
    await provision(adapter)
    play(sandbox, weeks=5)
    time_feed = feed(adapter, "approved_time")
    first, watermark, _ = await sweep(time_feed, None)
    # The month-end spike is in the overlap window: re-read while not yet exported ...
    recheck, _, pages = await sweep(time_feed, watermark)
    assert len(recheck) > 3000
    assert pages > 15
    # ... and no longer once the exporter has marked it (straight in the sandbox: quick).
    state.create(
        "external_references",
        [
            {
                "subject_type": "TimeEntry",
                "subject_id": env.body.entry.id,
                "service_name": "pssync",
                "service_model": "timebill",
                "service_model_ref": f"TB-{env.body.entry.id}",
            }
            for env in first
        ],
    )
    recorder.requests.clear()
    after_export, _, _ = await sweep(time_feed, watermark)
    assert after_export == []
    assert len(recorder.requests) == 2, "one recheck page, one forward page"
    assert "without_external_reference_service_name" in recorder.requests[0].url.params


async def test_time_approved_maps_hours_rates_and_keys(
    autojump_clock, adapter: KantataAdapter, sandbox: Sandbox, state: KantataState
) -> None:
    (workspace_id,) = await provision(adapter, projects=1)
    play(sandbox, weeks=2, month_end_entries=0)
    envelopes, _, _ = await sweep(feed(adapter, "approved_time"), None)
    assert envelopes
    for envelope in envelopes:
        assert isinstance(envelope.body, TimeApproved)
        entry = envelope.body.entry
        raw = state.tables["time_entries"][entry.id]
        assert envelope.key == f"project:{workspace_id}" == f"project:{entry.project_id}"
        assert envelope.source == "psa"
        assert envelope.id == envelope_id(
            source="psa",
            event_type="time.approved",
            object_id=f"time_entry:{entry.id}",
            version=raw["updated_at"],
        )
        assert envelope.occurred_at == datetime.fromisoformat(raw["updated_at"])
        assert entry.hours == Decimal(raw["time_in_minutes"]) / 60
        assert entry.bill_rate == Money.from_minor_units(raw["rate_in_cents"], "USD")
        assert entry.cost_rate == Money.from_minor_units(raw["cost_rate_in_cents"], "USD")
        assert entry.date_performed == date.fromisoformat(raw["date_performed"])
        assert entry.consultant_id == raw["user_id"]
        assert entry.billable is raw["billable"]
        assert entry.approved
        assert entry.task_id == raw["story_id"]


async def test_a_shifting_result_set_loses_nothing(
    autojump_clock, adapter: KantataAdapter, sandbox: Sandbox, state: KantataState
) -> None:
    await provision(adapter)
    play(sandbox, weeks=5, month_end_entries=400)
    approved = approved_ids(state)
    read: list[str] = []

    def shift(pages: int) -> None:
        if pages == 2:
            # 60 records already read change: they move to the end and every later
            # record moves 60 places forward, past the feed's re-read margin.
            sandbox.clock.advance(60)
            for entry_id in read[:60]:
                state.touch("time_entries", state.tables["time_entries"][entry_id])

    time_feed = feed(adapter, "approved_time")
    envelopes: list[Envelope] = []
    watermark = None
    pages = 0
    while True:
        page = await time_feed.poll(watermark, limit=100)
        pages += 1
        envelopes.extend(page.envelopes)
        read.extend(env.body.entry.id for env in page.envelopes)
        shift(pages)
        watermark = page.watermark
        if not page.more:
            break
    assert pages > 5
    assert {env.body.entry.id for env in envelopes} == approved


async def test_the_last_record_read_moving_costs_no_restart(
    autojump_clock,
    adapter: KantataAdapter,
    sandbox: Sandbox,
    state: KantataState,
    recorder: Recorder,
) -> None:
    await provision(adapter)
    play(sandbox, weeks=4, month_end_entries=0)
    time_feed = feed(adapter, "approved_time")
    page = await time_feed.poll(None, limit=50)
    sandbox.clock.advance(60)
    moved = page.envelopes[-1].body.entry.id
    state.touch("time_entries", state.tables["time_entries"][moved])
    recorder.requests.clear()
    rest, _, _ = await sweep(time_feed, page.watermark, limit=50)
    offsets = [int(r.url.params["offset"]) for r in recorder.requests]
    assert 0 not in offsets, "the place was found again"
    ids = [env.body.entry.id for env in [*page.envelopes, *rest]]
    assert set(ids) == approved_ids(state)
    assert Counter(ids)[moved] == 2, "read again at its new place (a new version)"


async def test_expenses_and_milestones(
    autojump_clock, adapter: KantataAdapter, sandbox: Sandbox, state: KantataState
) -> None:
    await provision(adapter)
    reports = play(sandbox, weeks=10, month_end_entries=0)
    assert any(report.milestones_completed for report in reports)
    expenses, _, _ = await sweep(feed(adapter, "approved_expenses"), None)
    approved_expenses = {i for i, e in state.tables["expenses"].items() if e["approved"]}
    assert approved_expenses
    assert {env.body.entry.id for env in expenses} == approved_expenses
    sample = expenses[0].body
    assert isinstance(sample, ExpenseApproved)
    raw = state.tables["expenses"][sample.entry.id]
    assert sample.entry.amount == Money.from_minor_units(raw["amount_in_cents"], "USD")
    assert sample.entry.date_incurred == date.fromisoformat(raw["date"])
    assert sample.entry.category == raw["category"]

    milestones_feed = feed(adapter, "completed_milestones")
    assert milestones_feed.workflow == "milestone_to_invoice"
    completed, watermark, _ = await sweep(milestones_feed, None)
    done = {
        i
        for i, s in state.tables["stories"].items()
        if s["story_type"] == "milestone" and s["state"] == "completed"
    }
    assert done
    assert {env.body.milestone.id for env in completed} == done
    event = completed[0].body
    assert isinstance(event, MilestoneCompleted)
    story = state.tables["stories"][event.milestone.id]
    assert event.milestone.status == "completed"
    assert event.milestone.project_id == story["workspace_id"]
    assert event.milestone.phase_id == story["parent_id"]
    assert event.milestone.name == story["title"]
    # An edit after completion is no second completion (it would invoice twice).
    state.touch("stories", story)
    edited, _, _ = await sweep(milestones_feed, watermark)
    assert {env.id for env in edited} <= {env.id for env in completed}


async def test_exported_entries_are_skipped(
    autojump_clock, adapter: KantataAdapter, sandbox: Sandbox, state: KantataState
) -> None:
    await provision(adapter, projects=1)
    play(sandbox, weeks=2, month_end_entries=0)
    time_feed = feed(adapter, "approved_time")
    before, _, _ = await sweep(time_feed, None)
    posted = [env.body.entry.id for env in before[:25]]
    await adapter.execute(
        MarkEntriesExported(
            idempotency_key="mark",
            time_entry_ids=tuple(posted),
            exported_to=ExternalRef(system="erp", id="TB-1", object_type="timebill"),
        )
    )
    after, _, _ = await sweep(time_feed, None)
    assert {env.body.entry.id for env in after} == {env.body.entry.id for env in before} - set(
        posted
    )


async def test_a_429_burst_and_5xx_are_absorbed(
    autojump_clock, adapter: KantataAdapter, sandbox: Sandbox, state: KantataState
) -> None:
    await provision(adapter)
    play(sandbox, weeks=5)
    sandbox.injectors["kantata"].configure(
        FaultConfig(burst_429_every=4, burst_429_length=3, error_rate=0.1, seed=2)
    )
    envelopes, _, _ = await sweep(feed(adapter, "approved_time"), None)
    stats = sandbox.injectors["kantata"].stats
    assert stats.throttled >= 3
    assert stats.errors > 0
    assert {env.body.entry.id for env in envelopes} == approved_ids(state)
    assert adapter.client.governor.snapshot().throttle_count >= 3


async def test_a_cut_body_is_read_again(
    autojump_clock, adapter: KantataAdapter, sandbox: Sandbox, recorder: Recorder, state
) -> None:
    await provision(adapter, projects=1)
    play(sandbox, weeks=2, month_end_entries=0)
    recorder.truncate.add(("GET", "/api/v1/time_entries.json"))
    envelopes, _, _ = await sweep(feed(adapter, "approved_time"), None)
    assert {env.body.entry.id for env in envelopes} == approved_ids(state)


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [("time_in_minutes", "lots", "hours"), ("updated_at", "yesterday", "updated_at")],
)
async def test_a_bad_vendor_value_is_a_payload_error_naming_record_and_field(
    autojump_clock,
    adapter: KantataAdapter,
    sandbox: Sandbox,
    state: KantataState,
    field: str,
    value: str,
    named: str,
) -> None:
    await provision(adapter, projects=1)
    play(sandbox, weeks=2, month_end_entries=0)
    entry_id = max(approved_ids(state), key=int)
    state.tables["time_entries"][entry_id][field] = value
    state.changed()
    with pytest.raises(PayloadError) as caught:
        await sweep(feed(adapter, "approved_time"), None)
    assert "kantata" in str(caught.value)
    assert entry_id in str(caught.value)
    assert named in str(caught.value)


@pytest.mark.parametrize("limit", [1, 7])
async def test_small_pages_as_a_poller_hunting_a_bad_record_asks_for(
    autojump_clock, adapter: KantataAdapter, sandbox: Sandbox, state: KantataState, limit: int
) -> None:
    await provision(adapter, projects=1)
    play(sandbox, weeks=2, month_end_entries=0)
    envelopes, _, _ = await sweep(feed(adapter, "approved_time"), None, limit=limit)
    ids = [env.body.entry.id for env in envelopes]
    assert len(ids) == len(set(ids))
    assert set(ids) == approved_ids(state)


async def test_start_watermark_and_feed_requests(
    autojump_clock, sandbox: Sandbox, mappings, recorder: Recorder, state: KantataState
) -> None:
    adapter = make_adapter(sandbox, mappings, recorder, start_watermark="2030-01-01T00:00:00Z")
    await provision(adapter, projects=1)
    play(sandbox, weeks=2, month_end_entries=0)
    recorder.requests.clear()
    envelopes, _watermark, _ = await sweep(feed(adapter, "approved_time"), None)
    assert envelopes == []
    (request,) = recorder.requests
    params = dict(request.url.params)
    assert params["updated_after"] == "2030-01-01T00:00:00Z"
    assert params["order"] == "updated_at:asc"
    assert params["approved"] == "true"
    assert int(params["limit"]) <= 200
    await adapter.aclose()


def test_options_are_checked() -> None:
    with pytest.raises(ValueError, match="per_page"):
        KantataOptions(per_page=201)
    with pytest.raises(ValueError, match="creator_role"):
        KantataOptions(creator_role="owner")
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"page_size": 10}, KantataOptions)
    assert KantataOptions(start_watermark="2026-01-01T00:00:00Z").per_page == 200
