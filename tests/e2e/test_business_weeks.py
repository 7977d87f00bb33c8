"""The six workflows together over the sandbox's business weeks: nothing twice, nothing lost.

Workflow-specific outcomes are tested with each workflow (tests/actors/workflows); here the
pipeline as a whole: everything the feeds bring is handled, every vendor object exists
once, malformed deals land on the exception queue with their owners, and a crash of every
runner in the middle of provisioning repeats no vendor effect.
"""

from __future__ import annotations

from collections import Counter

import trio

from actors.messages import decode_envelope
from daemon.metrics import Metrics

from .stack import ALL_WORKFLOWS, OWNERS, Stack, load_sandbox_config, open_stack


async def won_deals(stack: Stack) -> int:
    """Distinct opportunities won (a deal's new versions are new events)."""
    events = await stack.events("deal.won")
    return len({decode_envelope(e.body).body.opportunity.id for e in events})


async def test_two_weeks_of_business_create_nothing_twice(tmp_path, autojump_clock) -> None:
    async with open_stack(tmp_path, workflows=ALL_WORKFLOWS) as stack:
        first = await stack.run_scenario_week()
        await stack.run_scenario_week()

        assert stack.duplicates() == {}
        parked = await stack.exceptions(workflow="deal_to_project")
        # The scenario's three malformed deals (first week): no billing contact, a
        # currency no legal entity bills in, no legal entity.
        assert len(first.malformed_deals) == 3
        assert Counter(e.category for e in parked) == {"master_data": 2, "contract": 1}
        assert all(e.owner == OWNERS[e.category] for e in parked)
        deals = await stack.events("deal.won")
        runs = await stack.runs(workflow="deal_to_project")
        assert {run.trigger_seqs[0] for run in runs} == {event.seq for event in deals}
        statuses = Counter(run.status for run in runs)
        # A deal's later versions (the CRM write-back is one) queue behind its parked run.
        assert set(statuses) <= {"completed", "waiting", "pending"}
        assert statuses["waiting"] == 3
        assert len(await stack.events("project.activated")) == await won_deals(stack) - 3


async def test_the_pipeline_records_its_metrics(tmp_path, autojump_clock) -> None:
    config = load_sandbox_config()
    metrics = Metrics.from_config(config)
    async with open_stack(tmp_path, workflows=("deal_to_project",), metrics=metrics) as stack:
        await stack.run_scenario_week()
        won = len(await stack.events("deal.won"))

    def sample(name: str, **labels: str) -> float:
        return metrics.registry.get_sample_value(name, labels) or 0.0

    assert sample("pssync_events_appended_total", system="crm", type="deal.won") == won
    completed = sample("pssync_runs_total", workflow="deal_to_project", outcome="completed")
    parked = sample("pssync_runs_total", workflow="deal_to_project", outcome="parked")
    assert (completed, parked) == (won - 3, 3)
    assert sample("pssync_activation_cycle_time_seconds_count") > 0
    assert sample("pssync_governor_tokens", system="crm") > 0


async def test_a_crash_in_the_middle_of_provisioning_repeats_nothing(
    tmp_path, autojump_clock
) -> None:
    async with open_stack(tmp_path, workflows=("deal_to_project",)) as stack:
        await stack.run_scenario_week(idle=False)

        # Crash once some run has made a vendor effect but not finished.
        async def mid_flight() -> list:
            running = await stack.runs(status="running")
            return [run for run in running if await stack.journal.get_steps(run.id)]

        with trio.fail_after(600):
            while not await mid_flight():
                await stack.changes.wait()
        [interrupted, *_] = await mid_flight()
        await stack.crash_and_restart()
        await stack.until_idle()

        assert stack.duplicates() == {}
        after = {run.id: run for run in await stack.runs(workflow="deal_to_project")}
        assert after[interrupted.id].status == "completed"
        assert len(await stack.events("project.activated")) == await won_deals(stack) - 3
