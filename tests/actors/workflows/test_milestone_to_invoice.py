"""milestone_to_invoice end to end: billing milestones of deal_to_project's projects,
completed in the simulated Kantata, invoiced in Stripe, posted to NetSuite, reported to
Salesforce. Stack configuration and helpers: test_time_expense_to_erp.py."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import trio

from actors.messages import (
    Envelope,
    Milestone,
    Money,
    Project,
    ProjectActivated,
    decode_envelope,
)
from actors.systems import event_record
from actors.workflows import ReplaySelection, replay
from actors.workflows.deal_to_project import activated_project, activation_envelope_id
from actors.workflows.milestone_to_invoice import SPEC
from tests.e2e.stack import OWNERS, Stack, open_stack

from .test_time_expense_to_erp import (
    FAST_VENDORS,
    WORKFLOWS,
    Wire,
    play_week,
    record_delays,
    stack_config,
    wait_for_exceptions,
)


async def billing_milestones(stack: Stack) -> dict[str, tuple[Milestone, Project]]:
    """PSA story id → its activated billing milestone and project, for every project."""
    found: dict[str, tuple[Milestone, Project]] = {}
    for record in await stack.events("project.activated"):
        project = (await activated_project(stack.journal, _project_of(record))).project
        for milestone in project.milestones:
            story = await stack.journal.system_id("milestone", milestone.id, "psa")
            assert story is not None
            found[story] = (milestone, project)
    return found


def _project_of(record: Any) -> str:
    body = decode_envelope(record.body).body
    assert isinstance(body, ProjectActivated)
    return body.project.id


def stripe_invoices(stack: Stack) -> dict[str, list[dict[str, Any]]]:
    """Canonical invoice id → the Stripe invoices carrying it."""
    stripe = stack.sandbox.vendors["stripe"].state
    found: dict[str, list[dict[str, Any]]] = {}
    for invoice in stripe.objects["invoice"].values():
        canonical = invoice["metadata"].get("pssync_id", "")
        found.setdefault(canonical, []).append(invoice)
    return found


def stripe_items(stack: Stack, invoice_id: str) -> list[dict[str, Any]]:
    stripe = stack.sandbox.vendors["stripe"].state
    return [i for i in stripe.objects["invoiceitem"].values() if i.get("invoice") == invoice_id]


def netsuite_invoices(stack: Stack) -> Counter[str]:
    netsuite = stack.sandbox.vendors["netsuite"].state
    return Counter(row["externalId"] for row in netsuite.records["invoice"].values())


def invoiced_on_deal(stack: Stack, opportunity_id: str) -> Any:
    salesforce = stack.sandbox.vendors["salesforce"].state
    return salesforce.records["Opportunity"][opportunity_id].get("Invoiced_Amount__c")


async def until_billing_milestones(stack: Stack, count: int) -> dict[str, Any]:
    """Play weeks until deals with at least ``count`` fixed-fee milestones are active."""
    for _ in range(8):
        await play_week(stack)
        milestones = await billing_milestones(stack)
        if len(milestones) >= count:
            return milestones
    raise AssertionError(f"fewer than {count} billing milestones after eight weeks")


async def fake_project(stack: Stack, name: str, workspace: str, *, amount: Money | None) -> str:
    """A project in USD with one billing milestone ``MS-<name>``, activated in the
    journal the way deal_to_project records one; returns the workspace."""
    project_id = f"PRJ-{name}"
    project = Project(
        id=project_id,
        name=f"Contract {name}",
        account_id=f"001{name}",
        currency="USD",
        milestones=(
            Milestone(id=f"MS-{name}", project_id=project_id, name="Acceptance", amount=amount),
        ),
    )
    now = stack.now()
    await stack.journal.map_id("project", project_id, "psa", workspace, now)
    at = datetime.fromtimestamp(now, UTC)
    activation = Envelope.new(
        ProjectActivated(project=project),
        source="pssync",
        object_id=project_id,
        version="activated",
        occurred_at=at,
        recorded_at=at,
    )
    assert activation.id == activation_envelope_id(project_id)
    await stack.journal.append([event_record(activation)])
    return workspace


async def complete(stack: Stack, stories: list[str]) -> None:
    kantata = stack.sandbox.vendors["kantata"].state
    for story in stories:
        kantata.complete_story(story)
    stack.touched()


async def test_each_completed_milestone_is_invoiced_once_and_reported(
    tmp_path, autojump_clock
) -> None:
    wire = Wire()
    async with open_stack(
        tmp_path,
        workflows=WORKFLOWS,
        config=stack_config(),
        sandbox_config=FAST_VENDORS,
        wrap_transport=wire.wrap,
    ) as stack:
        stack.scenario.malformed_added = True
        delays = record_delays(stack)
        milestones = await until_billing_milestones(stack, 2)
        kantata = stack.sandbox.vendors["kantata"].state
        # A template milestone no deal line claimed: a checkpoint, not a billing event.
        template_milestones = [
            story_id
            for story_id, story in kantata.tables["stories"].items()
            if story["story_type"] == "milestone"
            and story_id not in milestones
            and await stack.journal.canonical_id("project", "psa", story["workspace_id"])
        ]

        await complete(stack, sorted(milestones) + template_milestones[:1])
        await stack.until_idle()

        invoices = stripe_invoices(stack)
        posted = netsuite_invoices(stack)
        per_deal: dict[str, Decimal] = {}
        for milestone, project in milestones.values():
            [invoice] = invoices[f"ms-{milestone.id}"]
            assert invoice["status"] == "open"
            assert invoice["number"]
            [item] = stripe_items(stack, invoice["id"])
            assert milestone.amount is not None
            assert item["amount"] == milestone.amount.to_minor_units()
            assert posted[f"pssync-inv-ms-{milestone.id}"] == 1
            assert project.opportunity_id is not None
            per_deal.setdefault(project.opportunity_id, Decimal(0))
            per_deal[project.opportunity_id] += milestone.amount.amount
        assert sum(1 for key in invoices if key.startswith("ms-")) == len(milestones)
        for opportunity_id, total in per_deal.items():
            assert Decimal(str(invoiced_on_deal(stack, opportunity_id))) == total
        runs = await stack.runs(workflow="milestone_to_invoice")
        assert len(runs) == len(milestones) + min(1, len(template_milestones))
        assert {run.status for run in runs} == {"completed"}
        assert stack.duplicates() == {}
        assert await stack.exceptions() == []
        assert len(delays.milestone_to_invoice) == len(milestones)

        # Replaying every milestone run creates, finalizes and posts nothing new.
        stripe_posts = wire.total("billing", "POST")
        erp_puts = wire.total("erp", "PUT")
        result = await replay(stack.journal, SPEC, ReplaySelection(from_seq=1), now=stack.now())
        assert len(result.run_ids) == len(runs)
        stack.touched()
        await stack.until_idle()
        assert stripe_invoices(stack).keys() == invoices.keys()
        assert netsuite_invoices(stack) == posted
        assert wire.total("billing", "POST") == stripe_posts
        assert wire.total("erp", "PUT") == erp_puts
        assert len(delays.milestone_to_invoice) == len(milestones)
        assert stack.duplicates() == {}
        assert await stack.exceptions() == []


async def test_a_crash_between_create_and_finalize_resumes_at_finalize(
    tmp_path, autojump_clock
) -> None:
    wire = Wire()
    async with open_stack(
        tmp_path,
        workflows=WORKFLOWS,
        config=stack_config(),
        sandbox_config=FAST_VENDORS,
        wrap_transport=wire.wrap,
    ) as stack:
        stack.scenario.malformed_added = True
        milestones = await until_billing_milestones(stack, 1)
        story = sorted(milestones)[0]
        milestone, _ = milestones[story]
        wire.held, wire.release = trio.Event(), trio.Event()
        # Held after Stripe finalized the invoice, before the step could record it.
        wire.hold = lambda system, request: (
            system == "billing" and request.url.path.endswith("/finalize")
        )

        created_before = wire.total("billing", "POST", "invoices")
        await complete(stack, [story])
        with trio.fail_after(600):
            await wire.held.wait()
        [run] = await stack.runs(workflow="milestone_to_invoice")
        assert set(await stack.journal.get_steps(run.id)) == {"create_invoice"}
        await stack.crash_and_restart()
        wire.release.set()
        await stack.until_idle()

        [invoice] = stripe_invoices(stack)[f"ms-{milestone.id}"]
        assert invoice["status"] == "open"
        assert len(stripe_items(stack, invoice["id"])) == 1
        assert wire.total("billing", "POST", "invoices") == created_before + 1  # created once
        assert netsuite_invoices(stack)[f"pssync-inv-ms-{milestone.id}"] == 1
        [run] = await stack.runs(workflow="milestone_to_invoice")
        assert (run.status, run.attempts) == ("completed", 2)
        assert stack.duplicates() == {}
        assert await stack.exceptions() == []


async def test_milestones_that_cannot_be_invoiced_park_as_billing_exceptions(
    tmp_path, autojump_clock
) -> None:
    async with open_stack(
        tmp_path, workflows=WORKFLOWS, config=stack_config(), sandbox_config=FAST_VENDORS
    ) as stack:
        stack.scenario.malformed_added = True
        await play_week(stack)
        kantata = stack.sandbox.vendors["kantata"].state

        def workspace(title: str) -> str:
            [created] = kantata.create(
                "workspaces", [{"title": title, "currency": "USD", "creator_role": "maven"}]
            )
            return created["id"]

        def milestone_story(workspace_id: str, title: str) -> str:
            [created] = kantata.create(
                "stories",
                [{"workspace_id": workspace_id, "title": title, "story_type": "milestone"}],
            )
            return created["id"]

        # 1. A milestone of a PSA project pssync never provisioned.
        stray = workspace("Side project")
        stray_story = milestone_story(stray, "Go-live")
        # 2./3. Projects pssync knows whose billing milestone has no fee, or a fee in
        # another currency than the project's (recorded as deal_to_project would). Two
        # projects: a parked run holds back the later runs of its project.
        no_fee = await fake_project(stack, "nofee", workspace("No fee"), amount=None)
        in_euro = await fake_project(
            stack, "euro", workspace("Euro fee"), amount=Money.of("5000.00", "EUR")
        )
        stories = [milestone_story(ws, "Acceptance") for ws in (no_fee, in_euro)]
        for name, story in zip(("nofee", "euro"), stories, strict=True):
            await stack.journal.map_id("milestone", f"MS-{name}", "psa", story, stack.now())

        await complete(stack, [stray_story, *stories])
        found = await wait_for_exceptions(stack, "milestone_to_invoice", 3)

        assert {exc.category for exc in found} == {"billing"}
        assert {exc.owner for exc in found} == {OWNERS["billing"]}
        by_text = {
            "never provisioned": [e for e in found if stray_story in e.message],
            "no fee": [e for e in found if "no fee" in e.message],
            "currency": [e for e in found if "priced in EUR" in e.message],
        }
        assert {name: len(hits) for name, hits in by_text.items()} == dict.fromkeys(by_text, 1)
        assert stray in by_text["never provisioned"][0].message
        [euro] = by_text["currency"]
        assert (euro.amount, euro.currency) == (Decimal("5000.00"), "EUR")
        assert not [key for key in stripe_invoices(stack) if key.startswith("ms-MS-")]
