"""The stack itself: the sandbox's feeds reach the journal and trigger runs, crash-safely."""

from __future__ import annotations

from collections import Counter

import trio

from actors.messages import DealWon
from actors.workflows import RunContext, WorkflowSpec

from .stack import open_stack


async def note(ctx: RunContext) -> None:
    """Touches no vendor: records what triggered it as one step."""

    async def seen() -> str:
        return ",".join(envelope.id for envelope in ctx.events)

    await ctx.step("seen", seen, result_type=str)


NOTE_DEALS = WorkflowSpec(name="note_deals", triggers=(DealWon,), run=note, category="contract")


GATE: dict[str, trio.Event] = {}
"""The test's gate: the step of :func:`gated` waits for it (set up per test)."""


async def gated(ctx: RunContext) -> None:
    """A step that cannot finish before the test opens the gate (after the crash)."""

    async def wait() -> str:
        await GATE["open"].wait()
        return "done"

    await ctx.step("wait", wait, result_type=str)


GATED_DEALS = WorkflowSpec(name="gated_deals", triggers=(DealWon,), run=gated, category="contract")


async def test_feeds_reach_the_journal_and_runs_complete(tmp_path, autojump_clock) -> None:
    async with open_stack(tmp_path, workflows=(NOTE_DEALS,)) as stack:
        await stack.until_idle()
        # The seeded firm: accounts, no deal won yet.
        seeded = Counter(event.type for event in await stack.events())
        assert seeded["account.changed"] == stack.counts()["salesforce"]["Account"]
        assert await stack.runs() == []

        report = await stack.run_scenario_week()

        assert report.deals_won
        deals = await stack.events("deal.won")
        assert len(deals) >= len(report.deals_won)
        runs = await stack.runs(workflow="note_deals")
        assert len(runs) == len(deals)
        assert {run.status for run in runs} == {"completed"}
        assert stack.duplicates() == {}
        assert await stack.exceptions() == []


async def test_crash_mid_run_resumes_under_a_new_owner(tmp_path, autojump_clock) -> None:
    GATE["open"] = trio.Event()
    async with open_stack(tmp_path, workflows=(GATED_DEALS,)) as stack:
        stack.scenario.run_week()
        stack.touched()

        # Wait until some run is in flight (held at the gate), then crash.
        with trio.fail_after(600):
            while not await stack.runs(status="running"):
                await stack.changes.wait()
        held = await stack.runs(status="running")
        assert {run.lease_owner for run in held} == {"e2e-owner-1"}
        await stack.crash_and_restart()
        GATE["open"].set()

        await stack.until_idle()  # the dead owner's leases expire on the mock clock
        runs = {run.id: run for run in await stack.runs(workflow="gated_deals")}
        assert {run.status for run in runs.values()} == {"completed"}
        assert all(runs[run.id].attempts == 2 for run in held)
        assert stack.crashes == 1


async def test_two_erps_split_the_legal_entities(tmp_path, autojump_clock) -> None:
    erps = {"erp_us": ("PSF-US",), "erp_europe": ("PSF-UK", "PSF-EU")}
    async with open_stack(tmp_path, workflows=(NOTE_DEALS,), erp_systems=erps) as stack:
        deps = stack.pipeline.deps
        assert deps.roles["erp"] == ("erp_europe", "erp_us")
        assert deps.erp_for("PSF-US") == "erp_us"
        assert deps.erp_for("PSF-EU") == "erp_europe"
        assert deps.erp_for("PSF-CA") is None
        assert set(stack.pipeline.systems.mailboxes) == {"crm", "psa", "billing", *erps}
        await stack.until_idle()
