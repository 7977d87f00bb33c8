"""The sandbox served on real loopback sockets by hypercorn's trio worker."""

from __future__ import annotations

import io
from functools import partial

import httpx
import pytest
import trio

from adapters.sandbox import SandboxConfig, build_sandbox, print_banner, serve_sandbox
from adapters.sandbox.server import run_sandbox

pytestmark = pytest.mark.slow


async def test_serve_sandbox_answers_real_http_and_stops_on_cancel() -> None:
    sandbox = build_sandbox(SandboxConfig(vendors=("salesforce", "kantata"), seed_data=True))
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            urls = await nursery.start(partial(serve_sandbox, sandbox, ports={"kantata": 0}))
            assert set(urls) == {"salesforce", "kantata"}
            assert all(url.startswith("http://127.0.0.1:") for url in urls.values())
            assert urls["salesforce"] != urls["kantata"]

            async with httpx.AsyncClient(base_url=urls["salesforce"]) as salesforce:
                token = await salesforce.post(
                    "/services/oauth2/token",
                    data={
                        "grant_type": "client_credentials",
                        "client_id": "3MVG9pssync.sandbox.consumer.key",
                        "client_secret": "pssync-sandbox-consumer-secret",
                    },
                )
                assert token.json()["instance_url"] == urls["salesforce"]
                salesforce.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
                result = await salesforce.get(
                    "/services/data/v66.0/query",
                    params={"q": "SELECT COUNT() FROM Account WHERE ParentId = null"},
                )
                assert result.status_code == 200
                assert result.json()["totalSize"] == 25
                assert result.headers["Sforce-Limit-Info"] == "api-usage=1/100000"

            async with httpx.AsyncClient(base_url=urls["kantata"]) as kantata:
                users = await kantata.get(
                    "/api/v1/users.json",
                    headers={"Authorization": "Bearer pssync-kantata-demo-token"},
                )
                assert users.json()["count"] == 101
                assert "x-request-id" in users.headers
                counts = await kantata.get("/_sandbox/counts")
                assert counts.json()["counts"]["project_templates"] == 3

            nursery.cancel_scope.cancel()

    with pytest.raises(httpx.ConnectError):
        async with httpx.AsyncClient(base_url=urls["kantata"]) as kantata:
            await kantata.get("/_sandbox/counts")

    out = io.StringIO()
    text = print_banner(urls, sandbox, file=out)
    assert out.getvalue() == text
    assert f"{urls['salesforce']}/services/data/v66.0/" in text
    assert "pssync-kantata-demo-token" in text
    assert "client_secret: pssync-sandbox-consumer-secret" in text


async def test_run_sandbox_prints_the_banner_and_persists_on_the_way_out(tmp_path) -> None:
    path = tmp_path / "state" / "sandbox.json"
    config = SandboxConfig(vendors=("kantata",), persist_path=str(path))
    out = io.StringIO()
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            urls = await nursery.start(partial(run_sandbox, config, ports={"kantata": 0}, file=out))
            async with httpx.AsyncClient(base_url=urls["kantata"]) as kantata:
                await kantata.post(
                    "/api/v1/workspaces.json",
                    headers={"Authorization": "Bearer pssync-kantata-demo-token"},
                    json={"workspace": {"title": "Survives restarts", "creator_role": "maven"}},
                )
            nursery.cancel_scope.cancel()
    assert urls["kantata"] in out.getvalue()
    restarted = build_sandbox(config)
    [workspace] = restarted.vendors["kantata"].state.tables["workspaces"].values()
    assert workspace["title"] == "Survives restarts"
