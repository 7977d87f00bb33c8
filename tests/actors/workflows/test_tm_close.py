"""tm_close: the month-end close issues the month's time-and-materials drafts, once.

The stack (tests/e2e/stack.py) runs deal_to_project, time_expense_to_erp, invoice_feedback
and tm_close against the sandbox, configured as time_expense_to_erp's own tests do. T&M
projects get January time approved (their January drafts in Stripe); the close of January
finalizes them and invoice_feedback posts each to NetSuite. The scheduler is tested on
its own over the mock clock, and once wired into the stack.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import msgspec
import pytest
import trio

from actors.messages import BillingPeriodClosed, decode_envelope
from actors.systems import event_record
from actors.workflows import ReplaySelection, replay
from actors.workflows.catalog import SPECS
from actors.workflows.schedule import (
    TmCloseScheduler,
    close_request,
    last_closable_period,
    request_close,
)
from actors.workflows.time_expense_to_erp import tm_invoice_id
from actors.workflows.tm_close import SPEC, Closing
from store import Journal
from tests.actors.workflows.test_invoice_feedback_tm import erp_invoices_of, stripe
from tests.actors.workflows.test_time_expense_to_erp import (
    FAST_VENDORS,
    GOOD_TIME,
    Wire,
    add_time,
    approve,
    approved_time,
    bill_amount,
    play_week,
    stack_config,
    tm_workspaces,
)
from tests.e2e.stack import OWNERS, START, Stack, open_stack

WORKFLOWS = ("deal_to_project", "time_expense_to_erp", "invoice_feedback", SPEC)
BUSY = {"new_deals_per_week": (8, 10), "wins_per_week": (8, 10)}
"""More deals won a week than the scenario's default: several T&M projects at once."""
JANUARY = "2026-01"


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


async def drafts_of(stack: Stack, count: int) -> list[tuple[str, dict[str, Any], Decimal]]:
    """``count`` T&M projects (USD) with January time approved on their January drafts:
    (project, Stripe draft, billed amount) each."""
    kantata = stack.sandbox.vendors["kantata"].state
    workspaces: list[str] = []
    for _ in range(2):  # the scenario approves no time before its third week
        await play_week(stack)
        assert not approved_time(stack)
        found = await tm_workspaces(stack)
        usd = [w for w in found if kantata.tables["workspaces"][w]["currency"] == "USD"]
        workspaces = sorted(usd, key=int)
        if len(workspaces) >= count:
            break
    assert len(workspaces) >= count, workspaces
    entries = {w: [add_time(stack, w, *spec) for spec in GOOD_TIME] for w in workspaces[:count]}
    approve(stack, [entry for batch in entries.values() for entry in batch])
    await stack.until_idle()
    found = []
    for workspace, batch in entries.items():
        project = await stack.journal.canonical_id("project", "psa", workspace)
        assert project is not None
        draft = tm_draft_of(stack, project, JANUARY)
        assert draft["status"] == "draft"
        billed = sum((bill_amount(entry).amount for entry in batch), Decimal(0))
        found.append((project, draft, billed))
    return found


def tm_draft_of(stack: Stack, project: str, period: str) -> dict[str, Any]:
    [draft] = [
        invoice
        for invoice in stripe(stack).objects["invoice"].values()
        if invoice["metadata"].get("pssync_id") == tm_invoice_id(project, period)
    ]
    return draft


async def close(stack: Stack, period: str) -> bool:
    """Append the close of ``period`` as the scheduler does; True if it was new."""
    result = await stack.journal.append([event_record(close_request(period, stack.now()))])
    stack.touched()
    return result.new_count == 1


async def closes(journal: Journal) -> list[str]:
    """The months whose close was requested, in journal order."""
    records = await journal.read_events(0, 1_000, ["billing_period.closed"])
    bodies = [decode_envelope(record.body).body for record in records]
    assert all(isinstance(body, BillingPeriodClosed) for body in bodies)
    return [body.period for body in bodies]


# -- the scheduler ----------------------------------------------------------------------


async def test_the_scheduler_requests_each_months_close_once_after_close_after_days(
    journal: Journal, autojump_clock
) -> None:
    def wall() -> float:
        return START + trio.current_time()  # 2026-01-01T00:00Z

    async with trio.open_nursery() as nursery:
        # Ticks every 6 h, heartbeats every 12 h (each wake-up costs 20 ms of real time).
        scheduler = TmCloseScheduler(
            journal,
            interval_s=6 * 3_600,
            close_after_days=3,
            now=wall,
            heartbeat_interval_s=43_200,
            heartbeat_timeout_s=100_000,
        )
        await nursery.start(scheduler.run)
        # At start: November (closed on 4 December); December closes on 4 January.
        await trio.sleep(3 * 86_400 - 3_600)  # 3 January, 23:00
        assert await closes(journal) == ["2025-11"]
        await trio.sleep(3_660)  # 4 January, 00:01: ticked at 00:00, December is closable
        assert await closes(journal) == ["2025-11", "2025-12"]
        # A month of ticks (four a day): January only from 4 February, 00:00.
        await trio.sleep(31 * 86_400 - 120)  # 3 February, 23:59
        assert await closes(journal) == ["2025-11", "2025-12"]
        await trio.sleep(6 * 3_600)
        assert await closes(journal) == ["2025-11", "2025-12", JANUARY]
        scheduler.request_stop()

    # A restart (a new scheduler on the same day) requests nothing new.
    restarted = TmCloseScheduler(journal, interval_s=86_400, now=wall)
    assert await restarted.tick() is False
    assert await closes(journal) == ["2025-11", "2025-12", JANUARY]
    # Off (no interval): no tick at all.
    assert await TmCloseScheduler(journal, interval_s=None, now=wall).tick() is False


def test_a_month_is_closable_close_after_days_after_its_end() -> None:
    assert last_closable_period(at("2026-02-03T23:59:59"), 3) == "2025-12"
    assert last_closable_period(at("2026-02-04T00:00:00"), 3) == JANUARY
    assert last_closable_period(at("2026-02-01T00:00:00"), 0) == JANUARY
    assert last_closable_period(at("2026-01-31T23:59:59"), 0) == "2025-12"
    assert last_closable_period(at("2026-03-01T00:00:00"), 40) == "2025-12"
    # The envelope id depends on the month only: the journal drops a repeated request.
    first, later = (
        close_request(JANUARY, at("2026-02-04T00:00:00")),
        close_request(JANUARY, at("2026-02-20T10:00:00")),
    )
    assert first.id == later.id
    assert first.key == "period:2026-01"
    assert close_request("2026-02", at("2026-03-04T00:00:00")).id != first.id
    assert "tm_close" in SPECS


async def test_on_demand_closes_are_each_new_and_only_for_an_ended_month(
    journal: Journal, autojump_clock
) -> None:
    scheduled = close_request(JANUARY, at("2026-02-04T00:00:00"))
    assert (await journal.append([event_record(scheduled)])).new_count == 1
    # Before the scheduled close (the month is over) and twice after it: each is new.
    early = await request_close(journal, JANUARY, "ops", now=at("2026-02-01T00:00:00"))
    first = await request_close(journal, JANUARY, now=at("2026-02-05T09:00:00"))
    second = await request_close(journal, JANUARY, now=at("2026-02-05T09:00:01"))
    assert len({scheduled.id, early.id, first.id, second.id}) == 4
    assert {early.key, first.key, second.key} == {scheduled.key}
    assert first.body == BillingPeriodClosed(period=JANUARY, requested_by="operator")
    assert early.body.requested_by == "ops"

    for period, now, problem in (
        (JANUARY, at("2026-01-31T23:59:59"), "has not ended yet"),
        ("2026-02", at("2026-02-05T09:00:00"), "has not ended yet"),
        ("2026-13", at("2026-02-05T09:00:00"), "expected a month, YYYY-MM"),
        ("2026-1", at("2026-02-05T09:00:00"), "expected a month, YYYY-MM"),
        ("0000-01", at("2026-02-05T09:00:00"), "expected a month, YYYY-MM"),
    ):
        with pytest.raises(ValueError, match=problem):
            await request_close(journal, period, now=now)
    records = await journal.read_events(0, 100, ["billing_period.closed"])
    assert [decode_envelope(r.body).id for r in records] == [
        scheduled.id, early.id, first.id, second.id
    ]  # fmt: skip


# -- the workflow -----------------------------------------------------------------------


async def test_the_close_issues_the_months_drafts_and_each_is_posted_once(
    tmp_path, autojump_clock
) -> None:
    wire = Wire()
    async with open_stack(
        tmp_path,
        workflows=WORKFLOWS,
        config=stack_config(),
        sandbox_config=FAST_VENDORS,
        wrap_transport=wire.wrap,
        scenario_options=BUSY,
    ) as stack:
        stack.scenario.malformed_added = True  # deal_to_project's business, not ours
        (first, january_1, billed), (second, january_2, _) = await drafts_of(stack, 2)
        # The first project also has a February draft; finance already closed the second's
        # January by hand (and invoice_feedback posted it).
        workspace = await stack.journal.system_id("project", first, "psa")
        assert workspace is not None
        approve(stack, [add_time(stack, workspace, "100002", "2026-02-02", 60)])
        await stack.until_idle()
        february = tm_draft_of(stack, first, "2026-02")
        stripe(stack).finalize_invoice(january_2["id"])
        stack.touched()
        await stack.until_idle()
        [posted_2] = erp_invoices_of(stack, tm_invoice_id(second, JANUARY))
        assert erp_invoices_of(stack, tm_invoice_id(first, JANUARY)) == []

        wire.calls.clear()
        assert await close(stack, JANUARY)
        await stack.until_idle()

        [run] = await stack.runs(workflow="tm_close")
        assert (run.status, run.key) == ("completed", "period:2026-01")
        steps = await stack.journal.get_steps(run.id)
        assert {name for name in steps if name.startswith("finalize:")} == {
            f"finalize:{first}",
            f"finalize:{second}",
        }
        finalized = {
            project: msgspec.msgpack.decode(steps[f"finalize:{project}"].result, type=Closing)
            for project in (first, second)
        }
        # The first is issued here; the second was open already: nothing sent for it.
        assert (finalized[first].finalized, finalized[second].finalized) == (True, False)
        assert {closing.problem for closing in finalized.values()} == {""}
        assert wire.total("billing", "POST", "finalize") == 1
        invoices = stripe(stack).objects["invoice"]
        issued = invoices[january_1["id"]]
        assert issued["status"] != "draft"
        assert finalized[first].number == issued["number"]
        canonical = tm_invoice_id(first, JANUARY)
        [posted] = erp_invoices_of(stack, canonical)  # invoice_feedback posted it, once
        assert Decimal(str(posted["total"])) == billed
        assert posted["otherRefNum"] == issued["number"]
        assert await stack.journal.system_id("invoice", canonical, "erp") == str(posted["id"])
        assert erp_invoices_of(stack, tm_invoice_id(second, JANUARY)) == [posted_2]
        # Another month's draft is not this close's business.
        assert invoices[february["id"]]["status"] == "draft"
        assert erp_invoices_of(stack, tm_invoice_id(first, "2026-02")) == []
        assert await stack.exceptions() == []
        assert stack.duplicates() == {}

        # The same close again is dropped by the journal; a replay issues nothing twice.
        assert not await close(stack, JANUARY)
        counts = stack.counts()
        wire.calls.clear()
        result = await replay(stack.journal, SPEC, ReplaySelection(from_seq=1), now=stack.now())
        assert len(result.run_ids) == 1
        stack.pipeline.workflows["tm_close"].runner.notify()
        await stack.until_idle()
        runs = await stack.runs(workflow="tm_close")
        assert [(r.status, r.replay) for r in runs] == [("completed", False), ("completed", True)]
        assert wire.total("billing", "POST", "finalize") == 0
        assert sum(n for (s, m, _), n in wire.calls.items() if s == "erp" and m != "GET") == 0
        assert stack.counts() == counts
        for project in (first, second):
            assert len(erp_invoices_of(stack, tm_invoice_id(project, JANUARY))) == 1
        assert invoices[february["id"]]["status"] == "draft"
        assert await stack.exceptions() == []
        assert stack.duplicates() == {}


async def test_a_refused_draft_opens_one_exception_and_the_others_are_still_issued(
    tmp_path, autojump_clock
) -> None:
    async with open_stack(
        tmp_path,
        workflows=WORKFLOWS,
        config=stack_config(),
        sandbox_config=FAST_VENDORS,
        scenario_options=BUSY,
    ) as stack:
        stack.scenario.malformed_added = True
        (refused, gone, _), (fine, draft, billed) = await drafts_of(stack, 2)
        # Someone deletes the first project's draft in Stripe: the id map still names it.
        stripe(stack).delete_invoice(gone["id"])
        stack.touched()
        await stack.until_idle()

        assert await close(stack, JANUARY)
        await stack.until_idle()

        [run] = await stack.runs(workflow="tm_close")
        assert run.status == "completed"  # one refusal does not stop the close
        [exception] = await stack.exceptions(workflow="tm_close")
        assert (exception.category, exception.owner) == ("billing", OWNERS["billing"])
        canonical = tm_invoice_id(refused, JANUARY)
        assert canonical in exception.message
        assert gone["id"] in exception.message
        assert "could not be issued" in exception.message
        detail = msgspec.json.decode(exception.detail)
        assert detail["tm_close"] == f"{refused}|{JANUARY}"
        assert detail["project_id"] == refused
        assert erp_invoices_of(stack, canonical) == []
        # The other project's draft is issued and posted all the same.
        assert stripe(stack).objects["invoice"][draft["id"]]["status"] != "draft"
        [posted] = erp_invoices_of(stack, tm_invoice_id(fine, JANUARY))
        assert Decimal(str(posted["total"])) == billed
        assert await stack.exceptions() == [exception]

        # Replaying the close does not open a second exception for the same draft.
        await replay(stack.journal, SPEC, ReplaySelection(from_seq=1), now=stack.now())
        stack.pipeline.workflows["tm_close"].runner.notify()
        await stack.until_idle()
        assert {run.status for run in await stack.runs(workflow="tm_close")} == {"completed"}
        assert await stack.exceptions() == [exception]
        assert len(erp_invoices_of(stack, tm_invoice_id(fine, JANUARY))) == 1
        assert stack.duplicates() == {}


async def test_the_wired_scheduler_closes_january_on_4_february(tmp_path, autojump_clock) -> None:
    config = stack_config()  # config/pssync.sandbox.toml: 3 days after the month end …
    assert config.workflows["tm_close"].close_after_days == 3
    workflows = dict(config.workflows)  # … looking every 5 minutes (fewer idle polls)
    workflows["tm_close"] = msgspec.structs.replace(workflows["tm_close"], interval_s=300.0)
    async with open_stack(
        tmp_path,
        workflows=WORKFLOWS,
        config=msgspec.structs.replace(config, workflows=workflows),
        sandbox_config=FAST_VENDORS,
        schedule_tm_close=True,
    ) as stack:
        stack.scenario.malformed_added = True
        [(project, draft, billed)] = await drafts_of(stack, 1)
        assert await closes(stack.journal) == ["2025-11"]  # at start: a month without drafts
        assert stripe(stack).objects["invoice"][draft["id"]]["status"] == "draft"

        # Shortly before 4 February nothing closes January; shortly after, it is closed.
        stack.clock.advance(at("2026-02-03T23:30:00") - stack.now())
        await trio.sleep(300)
        await stack.until_idle()
        assert stack.now() < at("2026-02-04T00:00:00")
        assert await closes(stack.journal) == ["2025-11", "2025-12"]
        assert stripe(stack).objects["invoice"][draft["id"]]["status"] == "draft"
        await trio.sleep(at("2026-02-04T00:10:00") - stack.now())
        await stack.until_idle()
        assert await closes(stack.journal) == ["2025-11", "2025-12", JANUARY]
        assert stripe(stack).objects["invoice"][draft["id"]]["status"] != "draft"
        [posted] = erp_invoices_of(stack, tm_invoice_id(project, JANUARY))
        assert Decimal(str(posted["total"])) == billed
        runs = await stack.runs(workflow="tm_close")
        assert [run.key for run in runs] == ["period:2025-11", "period:2025-12", "period:2026-01"]
        assert {run.status for run in runs} == {"completed"}
        assert await stack.exceptions(workflow="tm_close") == []
