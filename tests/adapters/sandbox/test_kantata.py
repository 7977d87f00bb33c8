"""The simulated Kantata OX: auth, envelope, paging, filters, writes, limits."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
import trio

from adapters.sandbox import Sandbox, SandboxClock, SandboxConfig, build_sandbox
from adapters.sandbox.kantata import KantataState

from .conftest import client_for

TOKEN = "pssync-kantata-demo-token"


@pytest.fixture
async def kantata(sandbox: Sandbox) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(sandbox, "kantata") as client:
        client.headers["Authorization"] = f"Bearer {TOKEN}"
        yield client


@pytest.fixture
def state(sandbox: Sandbox) -> KantataState:
    return sandbox.vendors["kantata"].state  # type: ignore[return-value]


async def new_workspace(kantata: httpx.AsyncClient, **fields: object) -> str:
    body = {"title": "Project", "creator_role": "maven", **fields}
    response = await kantata.post("/api/v1/workspaces.json", json={"workspace": body})
    assert response.status_code == 200, response.text
    return response.json()["results"][0]["id"]


async def log_time(kantata: httpx.AsyncClient, workspace_id: str, days: int) -> list[str]:
    entries = [
        {
            "workspace_id": workspace_id,
            "date_performed": f"2026-01-{day:02d}",
            "time_in_minutes": 60,
        }
        for day in range(1, days + 1)
    ]
    response = await kantata.post("/api/v1/time_entries.json", json={"time_entries": entries})
    assert response.status_code == 200, response.text
    return [result["id"] for result in response.json()["results"]]


# -- auth ------------------------------------------------------------------------------


async def test_requests_without_a_valid_token_are_401(
    autojump_clock, kantata: httpx.AsyncClient
) -> None:
    for value in ("", "Bearer wrong", "Basic abc"):
        response = await kantata.get("/api/v1/workspaces.json", headers={"Authorization": value})
        assert response.status_code == 401
        assert response.json() == {
            "errors": [{"type": "oauth", "message": "Invalid OAuth 2 Request"}]
        }


async def test_oauth_client_credentials_and_revocation(
    autojump_clock, kantata: httpx.AsyncClient
) -> None:
    bad = await kantata.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "client_id": "x", "client_secret": "y"},
    )
    assert bad.status_code == 401
    issued = await kantata.post(
        "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": "pssync-kantata-client",
            "client_secret": "pssync-kantata-secret",
        },
    )
    token = issued.json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    me = await kantata.get("/api/v1/users/me.json", headers=headers)
    assert me.json()["users"][me.json()["results"][0]["id"]]["full_name"] == "pssync Integration"
    await kantata.post("/_sandbox/tokens/revoke", json={"token": token})
    assert (await kantata.get("/api/v1/users.json", headers=headers)).status_code == 401
    assert (await kantata.get("/api/v1/users.json")).status_code == 200


# -- envelope and paging ---------------------------------------------------------------


async def test_envelope_and_request_id(autojump_clock, kantata: httpx.AsyncClient) -> None:
    workspace_id = await new_workspace(kantata, title="Rollout", currency="GBP")
    response = await kantata.get(f"/api/v1/workspaces/{workspace_id}.json")
    body = response.json()
    assert list(body)[:3] == ["count", "meta", "results"]
    assert body["meta"] == {"count": 1, "page_count": 1, "page_number": 1, "page_size": 20}
    assert body["results"] == [{"key": "workspaces", "id": workspace_id}]
    assert body["workspaces"][workspace_id]["title"] == "Rollout"
    assert body["workspaces"][workspace_id]["currency"] == "GBP"
    assert len(response.headers["x-request-id"]) == 36
    missing = await kantata.get("/api/v1/workspaces/999.json")
    assert missing.status_code == 404
    assert missing.json()["errors"][0]["type"] == "system"
    # `only` does not 404 on misses.
    only = await kantata.get("/api/v1/workspaces", params={"only": f"{workspace_id},999"})
    assert [r["id"] for r in only.json()["results"]] == [workspace_id]


async def test_page_paging_counts_every_entry_once(
    autojump_clock, kantata: httpx.AsyncClient
) -> None:
    workspace_id = await new_workspace(kantata)
    expected = set()
    for _ in range(5):
        expected |= set(await log_time(kantata, workspace_id, 31))
    seen: list[str] = []
    page = 1
    while True:
        body = (
            await kantata.get("/api/v1/time_entries", params={"page": page, "per_page": 40})
        ).json()
        assert body["count"] == 155
        assert body["meta"]["page_count"] == 4
        seen.extend(result["id"] for result in body["results"])
        if page == body["meta"]["page_count"]:
            break
        page += 1
    assert len(seen) == len(set(seen)) == 155
    assert set(seen) == expected

    capped = (await kantata.get("/api/v1/time_entries", params={"per_page": 500})).json()
    assert (capped["meta"]["page_size"], len(capped["results"])) == (200, 155)


async def test_limit_offset_wins_over_page(autojump_clock, kantata: httpx.AsyncClient) -> None:
    workspace_id = await new_workspace(kantata)
    ids = await log_time(kantata, workspace_id, 10)
    params = {"limit": 3, "offset": 6, "page": 1, "per_page": 2, "order": "id:asc"}
    body = (await kantata.get("/api/v1/time_entries", params=params)).json()
    assert [r["id"] for r in body["results"]] == ids[6:9]
    assert body["meta"]["page_number"] == 3


async def test_default_order_is_date_performed_desc(
    autojump_clock, kantata: httpx.AsyncClient
) -> None:
    workspace_id = await new_workspace(kantata)
    await log_time(kantata, workspace_id, 3)
    body = (await kantata.get("/api/v1/time_entries")).json()
    dates = [body["time_entries"][r["id"]]["date_performed"] for r in body["results"]]
    assert dates == ["2026-01-03", "2026-01-02", "2026-01-01"]
    ascending = (
        await kantata.get("/api/v1/time_entries", params={"order": "date_performed:asc"})
    ).json()
    assert ascending["results"][0] == body["results"][-1]


# -- writes and validation -------------------------------------------------------------


async def test_workspace_validation_errors(autojump_clock, kantata: httpx.AsyncClient) -> None:
    response = await kantata.post(
        "/api/v1/workspaces.json", json={"workspace": {"description": "x"}}
    )
    assert response.status_code == 422
    assert response.json() == {
        "errors": [
            {"type": "validation", "message": "Please give your project a title", "field": "title"},
            {
                "type": "validation",
                "message": "Please select a role for this project",
                "field": "creator_role",
            },
        ]
    }


async def test_bulk_creates_are_all_or_nothing_and_capped(
    autojump_clock, kantata: httpx.AsyncClient, state: KantataState
) -> None:
    good = {"title": "ok", "creator_role": "maven"}
    response = await kantata.post(
        "/api/v1/workspaces", json={"workspaces": [good, {"creator_role": "maven"}]}
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["index"] == 1
    assert state.counts()["workspaces"] == 0
    too_many = await kantata.post("/api/v1/workspaces", json={"workspaces": [good] * 101})
    assert too_many.status_code == 400
    workspace_id = await new_workspace(kantata)
    stories = [{"workspace_id": workspace_id, "title": f"Task {n}"} for n in range(300)]
    assert (await kantata.post("/api/v1/stories", json={"stories": stories})).json()["count"] == 300
    over = await kantata.post("/api/v1/stories", json={"stories": [*stories, stories[0]]})
    assert over.status_code == 400


async def test_time_entries_take_rates_from_users_and_lock_once_approved(
    autojump_clock, kantata: httpx.AsyncClient, state: KantataState
) -> None:
    consultant = state.add_user(
        {"full_name": "Ada", "cost_rate_in_cents": 9000, "bill_rate_in_cents": 20000}
    )
    workspace_id = await new_workspace(kantata, currency="EUR")
    response = await kantata.post(
        "/api/v1/time_entries",
        json={
            "time_entry": {
                "workspace_id": workspace_id,
                "date_performed": "2026-01-05",
                "time_in_minutes": 90,
                "user_id": consultant["id"],
                "approved": True,
            }
        },
    )
    [entry] = response.json()["time_entries"].values()
    assert (entry["rate_in_cents"], entry["cost_rate_in_cents"], entry["currency"]) == (
        20000,
        9000,
        "EUR",
    )
    assert entry["approved"] is False  # only an approval sets it
    edited = await kantata.put(
        f"/api/v1/time_entries/{entry['id']}", json={"time_entry": {"notes": "x"}}
    )
    assert edited.json()["time_entries"][entry["id"]]["notes"] == "x"
    state.approve([entry["id"]])
    locked = await kantata.put(f"/api/v1/time_entries/{entry['id']}", json={"notes": "y"})
    assert locked.status_code == 422
    invalid = await kantata.post(
        "/api/v1/time_entries", json={"workspace_id": workspace_id, "time_in_minutes": 0}
    )
    fields = {error["field"] for error in invalid.json()["errors"]}
    assert fields == {"date_performed", "time_in_minutes"}


async def test_time_entry_filters(
    autojump_clock, kantata: httpx.AsyncClient, state: KantataState, sandbox: Sandbox
) -> None:
    first = await new_workspace(kantata)
    second = await new_workspace(kantata)
    first_ids = await log_time(kantata, first, 10)
    sandbox.clock.advance(3600)
    second_ids = await log_time(kantata, second, 4)
    state.approve(first_ids[:3])

    async def ids(**params: object) -> set[str]:
        body = (
            await kantata.get("/api/v1/time_entries", params={"per_page": 200, **params})
        ).json()
        return {r["id"] for r in body["results"]}

    assert await ids(workspace_id=second) == set(second_ids)
    # `approved` is a presence flag: any value, even "false", means approved.
    assert await ids(approved="true") == set(first_ids[:3])
    assert await ids(approved="false") == set(first_ids[:3])
    assert await ids(updated_after="2026-01-01T00:30:00Z") == set(second_ids) | set(first_ids[:3])
    assert await ids(date_performed_between="2026-01-02:2026-01-03", workspace_id=first) == set(
        first_ids[1:3]
    )
    state.tables["time_entries"][first_ids[0]]["is_invoiced"] = True
    state.changed()
    assert await ids(uninvoiced="1", workspace_id=first) == set(first_ids[1:])
    assert await ids(invoiced="1") == {first_ids[0]}
    assert await ids(with_user_ids="100001", workspace_ids=f"{first},{second}") == set(
        first_ids + second_ids
    )


async def test_external_references_mark_and_find_entries(
    autojump_clock, kantata: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    workspace_id = await new_workspace(kantata)
    entry_ids = await log_time(kantata, workspace_id, 3)
    ref = {
        "subject_type": "TimeEntry",
        "subject_id": entry_ids[0],
        "service_name": "netsuite",
        "service_model": "timebill",
        "service_model_ref": "TB-1",
    }
    created = await kantata.post("/api/v1/external_references", json={"external_reference": ref})
    ref_id = created.json()["results"][0]["id"]
    again = await kantata.post("/api/v1/external_references", json={**ref, "status": "failed"})
    assert again.json()["results"][0]["id"] == ref_id  # create-or-update, no duplicate
    found = await kantata.get(
        "/api/v1/time_entries",
        params={"external_reference_service_model_ref": "TB-1", "include": "external_references"},
    )
    body = found.json()
    assert [r["id"] for r in body["results"]] == [entry_ids[0]]
    assert body["time_entries"][entry_ids[0]]["external_reference_ids"] == [ref_id]
    assert body["external_references"][ref_id]["status"] == "failed"
    unexported = await kantata.get(
        "/api/v1/time_entries", params={"without_external_reference_service_name": "netsuite"}
    )
    assert {r["id"] for r in unexported.json()["results"]} == set(entry_ids[1:])
    invalid = await kantata.post("/api/v1/external_references", json={**ref, "subject_id": "999"})
    assert invalid.json()["errors"][0]["field"] == "subject_id"


async def test_duplicate_workspaces_for_one_deal_show_in_admin(
    autojump_clock, kantata: httpx.AsyncClient
) -> None:
    for _ in range(2):
        workspace_id = await new_workspace(kantata, title="Acme rollout")
        await kantata.post(
            "/api/v1/external_references",
            json={
                "subject_type": "Workspace",
                "subject_id": workspace_id,
                "service_name": "salesforce",
                "service_model": "Opportunity",
                "service_model_ref": "006X",
            },
        )
    duplicates = (await kantata.get("/_sandbox/duplicates")).json()["duplicates"]
    assert len(duplicates) == 1
    assert duplicates[0]["type"] == "Workspace"
    assert duplicates[0]["source_key"] == "salesforce/Opportunity/006X"
    assert len(duplicates[0]["ids"]) == 2
    counts = (await kantata.get("/_sandbox/counts")).json()["counts"]
    assert (counts["workspaces"], counts["external_references"]) == (2, 2)


async def test_workspace_from_a_project_template(
    autojump_clock, kantata: httpx.AsyncClient, state: KantataState
) -> None:
    template = state.add_template(
        {
            "title": "Implementation",
            "service_line": "implementation",
            "phases": [
                {
                    "title": "Discover",
                    "duration_days": 10,
                    "tasks": [{"title": "Workshops", "hours": 16}],
                    "milestones": [{"title": "Blueprint signed", "billing_percent": 30}],
                },
                {
                    "title": "Build",
                    "duration_days": 20,
                    "tasks": [],
                    "milestones": [{"title": "Go-live", "billing_percent": 70}],
                },
            ],
            "resource_demand": [{"role": "Consultant", "hours": 120}],
        }
    )
    templates = (await kantata.get("/api/v1/project_templates")).json()
    assert templates["results"] == [{"key": "project_templates", "id": template["id"]}]
    workspace_id = await new_workspace(
        kantata, project_template_id=template["id"], project_template_start_date="2026-02-02"
    )
    stories = (
        await kantata.get("/api/v1/stories", params={"workspace_id": workspace_id, "per_page": 50})
    ).json()
    by_title = {story["title"]: story for story in stories["stories"].values()}
    assert set(by_title) == {"Discover", "Build", "Workshops", "Blueprint signed", "Go-live"}
    assert by_title["Discover"]["story_type"] == "deliverable"
    assert by_title["Go-live"]["story_type"] == "milestone"
    assert by_title["Go-live"]["parent_id"] == by_title["Build"]["id"]
    assert by_title["Go-live"]["due_date"] == "2026-03-03"
    milestones = (
        await kantata.get(
            "/api/v1/stories", params={"story_type": "milestone", "include": "parent"}
        )
    ).json()
    assert milestones["count"] == 2
    resources = (
        await kantata.get(
            f"/api/v1/workspaces/{workspace_id}", params={"include": "workspace_resources"}
        )
    ).json()
    [demand] = resources["workspace_resources"].values()
    assert (demand["role_name"], demand["allocated_minutes"], demand["user_id"]) == (
        "Consultant",
        7200,
        None,
    )
    unknown = await kantata.post(
        "/api/v1/workspaces",
        json={"title": "x", "creator_role": "maven", "project_template_id": "1"},
    )
    assert unknown.json()["errors"][0]["field"] == "project_template_id"


async def test_stories_complete_and_filter_by_update(
    autojump_clock, kantata: httpx.AsyncClient, state: KantataState, sandbox: Sandbox
) -> None:
    workspace_id = await new_workspace(kantata)
    created = await kantata.post(
        "/api/v1/stories",
        json={"story": {"workspace_id": workspace_id, "title": "M1", "story_type": "milestone"}},
    )
    story_id = created.json()["results"][0]["id"]
    sandbox.clock.advance(60)
    state.complete_story(story_id)
    changed = (
        await kantata.get("/api/v1/stories", params={"updated_after": "2026-01-01T00:00:30Z"})
    ).json()
    assert changed["stories"][story_id]["state"] == "completed"
    bad = await kantata.put(f"/api/v1/stories/{story_id}", json={"state": "done-ish"})
    assert bad.status_code == 422


# -- limits ----------------------------------------------------------------------------


async def test_rate_limit_is_a_bare_429_that_clears_after_a_pause(
    autojump_clock, clock: SandboxClock
) -> None:
    sandbox = build_sandbox(
        SandboxConfig(vendors=("kantata",), options={"kantata": {"rate_per_s": 2, "burst": 3}}),
        clock=clock,
    )
    async with client_for(sandbox, "kantata") as kantata:
        kantata.headers["Authorization"] = f"Bearer {TOKEN}"
        statuses = [(await kantata.get("/api/v1/users")).status_code for _ in range(5)]
        assert statuses == [200, 200, 200, 429, 429]
        throttled = await kantata.get("/api/v1/users")
        assert throttled.status_code == 429
        assert "retry-after" not in throttled.headers
        assert not any(name.startswith("x-ratelimit") for name in throttled.headers)
        assert "x-request-id" in throttled.headers
        await trio.sleep(0.5)
        assert (await kantata.get("/api/v1/users")).status_code == 200


async def test_workspace_list_has_its_own_tighter_limit(
    autojump_clock, clock: SandboxClock
) -> None:
    sandbox = build_sandbox(
        SandboxConfig(
            vendors=("kantata",),
            options={"kantata": {"workspace_rate_per_s": 1, "workspace_burst": 2}},
        ),
        clock=clock,
    )
    async with client_for(sandbox, "kantata") as kantata:
        kantata.headers["Authorization"] = f"Bearer {TOKEN}"
        statuses = [(await kantata.get("/api/v1/workspaces")).status_code for _ in range(3)]
        assert statuses == [200, 200, 429]
        assert (await kantata.get("/api/v1/users")).status_code == 200


async def test_subscribed_events_feed(
    autojump_clock, kantata: httpx.AsyncClient, state: KantataState, sandbox: Sandbox
) -> None:
    workspace_id = await new_workspace(kantata)
    entry_ids = await log_time(kantata, workspace_id, 2)
    sandbox.clock.advance(60)
    state.approve(entry_ids[:1])
    await kantata.delete(f"/api/v1/time_entries/{entry_ids[1]}")

    feed = (
        await kantata.get("/api/v1/subscribed_events", params={"subject_type": "TimeEntry"})
    ).json()
    events = [feed["subscribed_events"][r["id"]] for r in feed["results"]]
    assert [(e["event_type"], e["subject_id"]) for e in events] == [
        ("time_entry:created", entry_ids[0]),
        ("time_entry:created", entry_ids[1]),
        ("time_entry:updated", entry_ids[0]),
        ("time_entry:deleted", entry_ids[1]),
    ]
    recent = await kantata.get(
        "/api/v1/subscribed_events",
        params={
            "event_types": "time_entry:created,time_entry:updated",
            "most_recent": "true",
            "optional_fields": "current_payload",
            "include": "subject",
        },
    )
    body = recent.json()
    events = [body["subscribed_events"][r["id"]] for r in body["results"]]
    # One event per subject: the latest of the requested types, in feed order.
    assert [(e["event_type"], e["subject_id"]) for e in events] == [
        ("time_entry:created", entry_ids[1]),
        ("time_entry:updated", entry_ids[0]),
    ]
    assert events[0]["current_payload"] is None  # deleted since
    assert events[1]["current_payload"]["approved"] is True
    assert body["time_entries"][entry_ids[0]]["approved"] is True
    later = await kantata.get(
        "/api/v1/subscribed_events", params={"created_after": "2026-01-01T00:00:30Z"}
    )
    assert later.json()["count"] == 2

    sandbox.clock.advance(10 * 86_400)
    await new_workspace(kantata)  # a write prunes events older than nine days
    kept = (await kantata.get("/api/v1/subscribed_events")).json()
    assert [e["event_type"] for e in kept["subscribed_events"].values()] == ["workspace:created"]
