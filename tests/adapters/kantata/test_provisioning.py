"""Clients and workspaces: look before create, references, templates, faults."""

from __future__ import annotations

from collections import Counter
from datetime import date

import msgspec
import pytest

from actors.errors import PermanentError, RetryableError
from actors.messages import (
    Milestone,
    Phase,
    PostTimeEntries,
    ResourceDemand,
    UpsertCustomer,
    UpsertProject,
)
from adapters.governor import Lane
from adapters.kantata import KantataAdapter
from adapters.sandbox import FaultConfig, Sandbox
from adapters.sandbox.kantata import KantataState

from .conftest import Recorder, account, create_command, make_adapter, project


def upsert_customer(number: int = 1, **fields) -> UpsertCustomer:
    return UpsertCustomer(
        idempotency_key=f"customer:{number}",
        correlation_id=f"corr-customer-{number}",
        account=account(number, **fields),
    )


def clients(state: KantataState) -> list[dict]:
    return [g for g in state.tables["workspace_groups"].values() if g.get("company")]


async def execute_until_done(adapter: KantataAdapter, command, attempts: int = 20):
    """What a workflow step does: repeat a retryable failure until the command lands."""
    for _ in range(attempts):
        try:
            return await adapter.execute(command)
        except RetryableError:
            continue
    raise AssertionError("the command never succeeded")


# -- clients ---------------------------------------------------------------------------


async def test_upsert_customer_twice_leaves_one_client(
    autojump_clock, adapter: KantataAdapter, state: KantataState, recorder: Recorder
) -> None:
    first = await adapter.execute(upsert_customer())
    recorder.requests.clear()
    second = await adapter.execute(upsert_customer())
    assert {r.method for r in recorder.requests} == {"GET"}, "a repeat only looks"
    assert first.created
    assert not second.created
    assert (
        first.ids == second.ids == {"001ACC1": first.ids["client"], "client": first.ids["client"]}
    )
    (client,) = clients(state)
    assert client["name"] == "Customer 1 plc"
    refs = state.external_references_of("WorkspaceGroup", client["id"])
    assert [(r["service_name"], r["service_model"], r["service_model_ref"]) for r in refs] == [
        ("pssync", "account", "001ACC1")
    ]
    assert state.duplicates() == []


async def test_upsert_customer_renames_the_client(
    autojump_clock, adapter: KantataAdapter, state: KantataState
) -> None:
    first = await adapter.execute(upsert_customer())
    renamed = await adapter.execute(
        UpsertCustomer(
            idempotency_key="c:2",
            account=account(1).__class__(
                id="001ACC1", name="Customer One Group plc", currency="USD"
            ),
        )
    )
    assert renamed.ids == first.ids
    assert not renamed.created
    assert state.tables["workspace_groups"][first.ids["client"]]["name"] == "Customer One Group plc"


async def test_a_client_created_before_a_crash_is_adopted_by_name(
    autojump_clock, adapter: KantataAdapter, state: KantataState
) -> None:
    # Given the client was created but the process died before its reference was written
    orphan = state.create("workspace_groups", [{"name": "Customer 1 plc", "company": True}])[0]
    result = await adapter.execute(upsert_customer())
    assert result.ids["client"] == orphan["id"]
    assert not result.created
    assert len(clients(state)) == 1


async def test_a_client_another_account_claims_is_not_adopted(
    autojump_clock, adapter: KantataAdapter, state: KantataState
) -> None:
    await adapter.execute(upsert_customer(1))
    # Same name, different account: a second client.
    other = UpsertCustomer(
        idempotency_key="c:9",
        account=account(1).__class__(id="001ACC9", name="Customer 1 plc", currency="USD"),
    )
    result = await adapter.execute(other)
    assert result.created
    assert len(clients(state)) == 2


async def test_a_restricted_upsert_leaves_a_field_it_does_not_name_alone(
    autojump_clock, adapter: KantataAdapter, state: KantataState, recorder: Recorder
) -> None:
    first = await adapter.execute(upsert_customer())
    client_id = first.ids["client"]
    state.update("workspace_groups", client_id, {"name": "Customer One (renamed in Kantata)"})
    recorder.requests.clear()

    # The account still carries the old name, but the command writes only the tax id,
    # which Kantata does not hold: nothing is sent.
    result = await adapter.execute(
        UpsertCustomer(
            idempotency_key="customer:1:tax", account=account(1, tax_id="GB-1"), fields=("tax_id",)
        )
    )

    assert result.ids == first.ids
    assert not result.created
    assert {r.method for r in recorder.requests} == {"GET"}
    assert state.tables["workspace_groups"][client_id]["name"] == (
        "Customer One (renamed in Kantata)"
    )


async def test_a_restricted_upsert_naming_the_name_puts_only_the_name(
    autojump_clock, adapter: KantataAdapter, state: KantataState, recorder: Recorder
) -> None:
    first = await adapter.execute(upsert_customer())
    recorder.requests.clear()

    await adapter.execute(
        UpsertCustomer(
            idempotency_key="customer:1:name",
            account=msgspec.structs.replace(account(1), name="Customer One Group plc"),
            fields=("name",),
        )
    )

    [put] = [r for r in recorder.requests if r.method == "PUT"]
    assert put.url.path.endswith(f"workspace_groups/{first.ids['client']}.json")
    assert msgspec.json.decode(put.content) == {
        "workspace_group": {"name": "Customer One Group plc"}
    }
    client = state.tables["workspace_groups"][first.ids["client"]]
    assert client["name"] == "Customer One Group plc"
    assert client["company"] is True


async def test_a_restricted_upsert_of_a_missing_client_creates_it(
    autojump_clock, adapter: KantataAdapter, state: KantataState
) -> None:
    result = await adapter.execute(
        UpsertCustomer(idempotency_key="customer:1", account=account(1), fields=("tax_id",))
    )

    assert result.created
    (client,) = clients(state)
    assert client["name"] == "Customer 1 plc"


# -- workspaces from templates ----------------------------------------------------------


async def test_create_project_from_template_builds_the_plan(
    autojump_clock, adapter: KantataAdapter, state: KantataState
) -> None:
    await adapter.execute(upsert_customer())
    result = await adapter.execute(create_command())
    assert result.created
    workspace = state.tables["workspaces"][result.ids["workspace"]]
    assert result.ids["PRJ-1"] == workspace["id"]
    assert workspace["title"] == "Implementation 1"
    assert workspace["creator_role"] == "maven"
    assert workspace["currency"] == "USD"
    assert workspace["price_in_cents"] == 25_000_000
    assert workspace["start_date"] == "2026-01-05"
    assert workspace["due_date"] == "2026-03-31"
    assert workspace["workspace_group_ids"] == [result.ids["client"]]
    template = state.tables["project_templates"][result.ids["template"]]
    assert template["service_line"] == "implementation"
    stories = [s for s in state.tables["stories"].values() if s["workspace_id"] == workspace["id"]]
    phases = [s for s in stories if s["story_type"] == "deliverable"]
    milestones = {s["title"]: s["id"] for s in stories if s["story_type"] == "milestone"}
    assert [p["title"] for p in phases] == ["Discover", "Build", "Deploy"]
    assert {f"milestone:{title}": story for title, story in milestones.items()}.items() <= (
        result.ids.items()
    )
    refs = state.external_references_of("Workspace", workspace["id"])
    assert [(r["service_model"], r["service_model_ref"]) for r in refs] == [("project", "PRJ-1")]


async def test_create_project_from_template_twice_leaves_one_workspace(
    autojump_clock, adapter: KantataAdapter, state: KantataState, recorder: Recorder
) -> None:
    first = await adapter.execute(create_command())
    counts = state.counts()
    recorder.requests.clear()
    second = await adapter.execute(create_command())
    assert {r.method for r in recorder.requests} == {"GET"}, "a repeat only looks"
    assert first.created
    assert not second.created
    assert second.ids == first.ids
    assert state.counts()["workspaces"] == counts["workspaces"] == 1
    assert state.counts()["stories"] == counts["stories"]
    assert state.duplicates() == []


async def test_project_phases_milestones_and_demand_are_matched_or_added(
    autojump_clock, adapter: KantataAdapter, state: KantataState
) -> None:
    command = create_command(
        phases=(
            Phase(id="PH-1", name="Build"),
            Phase(id="PH-9", name="Hypercare", end_date=date(2026, 4, 30)),
        ),
        milestones=(
            Milestone(id="MS-1", project_id="PRJ-1", name="Go-live"),
            Milestone(
                id="MS-9",
                project_id="PRJ-1",
                name="Hypercare exit",
                phase_id="PH-9",
                due_date=date(2026, 4, 30),
            ),
        ),
        resource_demand=(
            ResourceDemand(id="RD-1", role="Manager", hours=120),
            ResourceDemand(id="RD-9", role="Architect", hours=80),
        ),
    )
    result = await adapter.execute(command)
    stories = state.tables["stories"]
    assert stories[result.ids["PH-1"]]["title"] == "Build"
    assert stories[result.ids["PH-9"]]["story_type"] == "deliverable"
    assert stories[result.ids["PH-9"]]["due_date"] == "2026-04-30"
    assert stories[result.ids["MS-1"]]["title"] == "Go-live"
    added = stories[result.ids["MS-9"]]
    assert added["story_type"] == "milestone"
    assert added["parent_id"] == result.ids["PH-9"]
    resources = state.tables["workspace_resources"]
    assert resources[result.ids["RD-1"]]["role_name"] == "Manager"
    assert result.details["unplaced_demand"] == "RD-9"
    before = state.counts()
    again = await adapter.execute(command)
    assert again.ids == result.ids
    assert state.counts() == before


async def test_a_workspace_created_before_a_crash_is_adopted_by_its_marker(
    autojump_clock, adapter: KantataAdapter, state: KantataState
) -> None:
    # Given the workspace exists (with pssync's marker) but its reference was never written
    orphan = state.create(
        "workspaces",
        [{"title": "Implementation 1", "creator_role": "maven", "description": "[pssync:PRJ-1]"}],
    )[0]
    result = await adapter.execute(create_command())
    assert result.ids["workspace"] == orphan["id"]
    assert not result.created
    assert state.counts()["workspaces"] == 1
    assert state.external_references_of("Workspace", orphan["id"])


async def test_a_create_answered_with_a_cut_body_is_found_not_repeated(
    autojump_clock, adapter: KantataAdapter, state: KantataState, recorder: Recorder
) -> None:
    recorder.truncate.add(("POST", "/api/v1/workspaces.json"))
    result = await adapter.execute(create_command())
    assert result.created
    assert state.counts()["workspaces"] == 1
    assert state.external_references_of("Workspace", result.ids["workspace"])


async def test_creates_under_5xx_and_429_faults_never_duplicate(
    autojump_clock, sandbox: Sandbox, adapter: KantataAdapter, state: KantataState
) -> None:
    sandbox.injectors["kantata"].configure(
        FaultConfig(error_rate=0.3, burst_429_every=7, burst_429_length=3, seed=11)
    )
    results = []
    for number in range(1, 6):
        extra = {
            "phases": (Phase(id=f"PH-{number}", name="Hypercare"),),
            "milestones": (
                Milestone(id=f"MS-{number}", project_id=f"PRJ-{number}", name="Hypercare exit"),
            ),
        }
        await execute_until_done(adapter, upsert_customer(number))
        results.append(await execute_until_done(adapter, create_command(number, **extra)))
        assert await execute_until_done(adapter, create_command(number, **extra)) == (
            msgspec.structs.replace(results[-1], created=False)
        )
    stats = sandbox.injectors["kantata"].stats
    assert stats.errors > 0
    assert stats.throttled > 0
    assert state.counts()["workspaces"] == 5
    assert len(clients(state)) == 5
    assert state.duplicates() == []
    for result in results:
        titles = Counter(
            s["title"]
            for s in state.tables["stories"].values()
            if s["workspace_id"] == result.ids["workspace"]
        )
        assert titles["Hypercare"] == 1
        assert titles["Hypercare exit"] == 1
        assert titles["Go-live"] == 1


async def test_upsert_project_creates_then_updates(
    autojump_clock, adapter: KantataAdapter, state: KantataState
) -> None:
    await adapter.execute(upsert_customer())
    created = await adapter.execute(UpsertProject(idempotency_key="p:1", project=project()))
    assert created.created
    workspace = state.tables["workspaces"][created.ids["PRJ-1"]]
    assert workspace["project_template_id"] is None
    renamed = project(name="Implementation 1 (phase 2)", end_date=date(2026, 6, 30))
    updated = await adapter.execute(UpsertProject(idempotency_key="p:2", project=renamed))
    assert not updated.created
    assert updated.ids == created.ids
    assert workspace["title"] == "Implementation 1 (phase 2)"
    assert workspace["due_date"] == "2026-06-30"
    assert state.counts()["workspaces"] == 1


async def test_an_unknown_template_is_permanent(
    autojump_clock, adapter: KantataAdapter, state: KantataState
) -> None:
    command = create_command().__class__(
        idempotency_key="x", template_id="no-such-line", project=project()
    )
    with pytest.raises(PermanentError, match="no-such-line"):
        await adapter.execute(command)
    assert state.counts()["workspaces"] == 0


async def test_template_by_id_and_by_service_line_option(
    autojump_clock, sandbox: Sandbox, mappings, recorder: Recorder, state: KantataState
) -> None:
    template_id = next(
        t["id"]
        for t in state.tables["project_templates"].values()
        if t["service_line"] == "advisory_retainer"
    )
    adapter = make_adapter(sandbox, mappings, recorder, templates={"advisory": template_id})
    by_line = await adapter.execute(
        create_command(1).__class__(idempotency_key="a", template_id="advisory", project=project(1))
    )
    by_id = await adapter.execute(
        create_command(2).__class__(
            idempotency_key="b", template_id=template_id, project=project(2)
        )
    )
    assert by_line.ids["template"] == by_id.ids["template"] == template_id
    await adapter.aclose()


# -- seam ------------------------------------------------------------------------------


async def test_unhandled_commands_are_permanent_and_name_vendor_and_command(
    autojump_clock, adapter: KantataAdapter
) -> None:
    command = PostTimeEntries(idempotency_key="t", project_id="PRJ-1", entries=())
    with pytest.raises(PermanentError, match="kantata does not handle post_time_entries"):
        await adapter.execute(command)


async def test_lanes(adapter: KantataAdapter) -> None:
    from actors.messages import ExternalRef, MarkEntriesExported

    mark = MarkEntriesExported(idempotency_key="m", exported_to=ExternalRef(system="erp", id="1"))
    assert adapter.lane_for(mark) is Lane.CRITICAL
    assert adapter.lane_for(create_command()) is Lane.MASTER_DATA
    assert adapter.lane_for(upsert_customer()) is Lane.MASTER_DATA


async def test_every_request_of_a_command_carries_its_correlation_id_and_token(
    autojump_clock, adapter: KantataAdapter, recorder: Recorder, sandbox: Sandbox
) -> None:
    await adapter.execute(create_command())
    assert recorder.requests
    assert {r.headers["X-Correlation-ID"] for r in recorder.requests} == {"corr-1"}
    token = sandbox.vendors["kantata"].credentials["access_token"]
    assert {r.headers["Authorization"] for r in recorder.requests} == {f"Bearer {token}"}


async def test_a_revoked_token_is_a_permanent_401(
    autojump_clock, adapter: KantataAdapter, sandbox: Sandbox
) -> None:
    sandbox.vendors["kantata"].state.tokens[sandbox.vendors["kantata"].credentials["access_token"]][
        "revoked"
    ] = True
    with pytest.raises(PermanentError) as caught:
        await adapter.execute(upsert_customer())
    assert caught.value.status == 401
    assert caught.value.code == "oauth"
    assert caught.value.system == "psa"
