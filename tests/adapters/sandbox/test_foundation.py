"""Clock, limits, fault injection, admin view and persistence, through real vendors."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import msgspec
import pytest
import trio

from adapters.sandbox import (
    ConcurrencyGate,
    FaultConfig,
    RollingQuota,
    Sandbox,
    SandboxClock,
    SandboxConfig,
    TokenBucket,
    build_sandbox,
)
from adapters.sandbox.faults import FaultInjector
from adapters.sandbox.salesforce import SalesforceErrors

from .conftest import START, client_for


class ManualTime:
    """A monotonic source a test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


# -- clock and limits ------------------------------------------------------------------


def test_clock_advance_moves_wall_and_monotonic_time() -> None:
    time = ManualTime()
    clock = SandboxClock(start=START, monotonic_source=time)
    assert clock.now() == START
    time.now = 5.0
    clock.advance(86_400)
    assert clock.now() == START + 5.0 + 86_400
    assert clock.monotonic() == 5.0 + 86_400
    with pytest.raises(ValueError, match="forward"):
        clock.advance(-1)


def test_clock_without_start_follows_wall_time_plus_offset() -> None:
    clock = SandboxClock(wall_source=lambda: 1000.0, monotonic_source=lambda: 7.0)
    clock.advance(60)
    assert (clock.now(), clock.monotonic()) == (1060.0, 67.0)


def test_token_bucket_grants_the_burst_then_says_how_long_to_wait() -> None:
    time = ManualTime()
    bucket = TokenBucket(rate_per_s=2.0, burst=3, clock=SandboxClock(monotonic_source=time))
    assert [bucket.try_acquire() for _ in range(3)] == [None, None, None]
    assert bucket.try_acquire() == pytest.approx(0.5)
    time.now = 0.5
    assert bucket.try_acquire() is None
    assert bucket.try_acquire() == pytest.approx(0.5)


async def test_concurrency_gate_refuses_beyond_its_limit() -> None:
    gate = ConcurrencyGate(2)
    assert gate.try_enter()
    assert gate.try_enter()
    assert not gate.try_enter()
    gate.exit()
    async with gate.slot() as entered:
        assert entered
        async with gate.slot() as refused:
            assert not refused
    assert gate.active == 1
    gate.exit()
    with pytest.raises(RuntimeError):
        gate.exit()


def test_rolling_quota_counts_uses_in_its_window() -> None:
    time = ManualTime()
    quota = RollingQuota(limit=2, window_s=10.0, clock=SandboxClock(monotonic_source=time))
    assert quota.try_use()
    assert quota.try_use()
    assert not quota.try_use()
    assert quota.used == 2
    time.now = 10.0
    assert quota.used == 0
    assert quota.try_use()


# -- fault injection -------------------------------------------------------------------


async def _token(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/services/oauth2/token",
        data={
            "grant_type": "client_credentials",
            "client_id": "3MVG9pssync.sandbox.consumer.key",
            "client_secret": "pssync-sandbox-consumer-secret",
        },
    )
    client.headers["Authorization"] = f"Bearer {response.json()['access_token']}"


async def _statuses(client: httpx.AsyncClient, count: int, path: str) -> list[int]:
    return [(await client.get(path)).status_code for _ in range(count)]


LIMITS = "/services/data/v66.0/limits"


async def test_error_rate_gives_the_vendors_5xx_at_about_that_rate(sandbox: Sandbox) -> None:
    async with client_for(sandbox, "salesforce") as client:
        await _token(client)
        sandbox.injectors["salesforce"].configure(FaultConfig(error_rate=0.25, seed=3))
        statuses = await _statuses(client, 400, LIMITS)
        assert set(statuses) == {200, 500}
        assert 60 <= statuses.count(500) <= 140
        failed = await client.get(LIMITS)
        while failed.status_code != 500:
            failed = await client.get(LIMITS)
        assert failed.json()[0]["errorCode"] == "UNKNOWN_EXCEPTION"

        # The same seed replays the same sequence.
        sandbox.injectors["salesforce"].configure(FaultConfig(error_rate=0.25, seed=3))
        assert await _statuses(client, 400, LIMITS) == statuses


async def test_429_bursts_use_each_vendors_throttle_shape(sandbox: Sandbox) -> None:
    burst = FaultConfig(burst_429_every=3, burst_429_length=2)
    async with client_for(sandbox, "salesforce") as client:
        await _token(client)
        sandbox.injectors["salesforce"].configure(burst)
        statuses = await _statuses(client, 10, LIMITS)
        assert statuses == [200, 200, 200, 403, 403, 200, 200, 200, 403, 403]
        sandbox.injectors["salesforce"].configure(burst)
        for _ in range(3):
            await client.get(LIMITS)
        throttled = await client.get(LIMITS)
        assert throttled.json()[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"
        assert throttled.headers["Sforce-Limit-Info"].startswith("api-usage=")
    async with client_for(sandbox, "kantata") as client:
        client.headers["Authorization"] = "Bearer pssync-kantata-demo-token"
        sandbox.injectors["kantata"].configure(
            FaultConfig(burst_429_every=1, burst_429_length=1, retry_after_s=5)
        )
        statuses = await _statuses(client, 4, "/api/v1/users.json")
        assert statuses == [200, 429, 200, 429]
        throttled = await client.get("/api/v1/users.json")
        throttled = await client.get("/api/v1/users.json")
        assert throttled.status_code == 429
        assert "retry-after" not in throttled.headers
        assert throttled.json()["errors"][0]["type"] == "system"


async def test_malformed_bodies_are_cut_json_with_status_200(sandbox: Sandbox) -> None:
    async with client_for(sandbox, "salesforce") as client:
        await _token(client)
        sandbox.injectors["salesforce"].configure(FaultConfig(malformed_rate=1.0))
        response = await client.get(LIMITS)
        assert response.status_code == 200
        assert int(response.headers["content-length"]) == len(response.content)
        with pytest.raises(json.JSONDecodeError):
            response.json()
        assert sandbox.injectors["salesforce"].stats.malformed == 1


async def test_a_timeout_never_answers_until_cancelled(sandbox: Sandbox, autojump_clock) -> None:
    async with client_for(sandbox, "salesforce") as client:
        await _token(client)
        sandbox.injectors["salesforce"].configure(FaultConfig(timeout_rate=1.0))
        started = trio.current_time()
        with trio.move_on_after(30) as scope:
            await client.get(LIMITS)
        assert scope.cancelled_caught
        assert trio.current_time() - started == pytest.approx(30)
        assert sandbox.injectors["salesforce"].stats.timeouts == 1


async def test_latency_is_drawn_between_min_and_max(sandbox: Sandbox, autojump_clock) -> None:
    async with client_for(sandbox, "salesforce") as client:
        await _token(client)
        sandbox.injectors["salesforce"].configure(FaultConfig(latency_ms=(100, 300), seed=1))
        delays = []
        for _ in range(20):
            started = trio.current_time()
            assert (await client.get(LIMITS)).status_code == 200
            delays.append(trio.current_time() - started)
        assert all(0.1 <= delay <= 0.3 for delay in delays)
        assert max(delays) - min(delays) > 0.05


async def test_admin_paths_are_never_faulted(sandbox: Sandbox) -> None:
    sandbox.injectors["salesforce"].configure(FaultConfig(error_rate=1.0, timeout_rate=1.0))
    async with client_for(sandbox, "salesforce") as client:
        assert (await client.get("/_sandbox/counts")).status_code == 200


async def test_faults_are_reconfigured_over_the_admin_view(sandbox: Sandbox) -> None:
    async with client_for(sandbox, "kantata") as client:
        client.headers["Authorization"] = "Bearer pssync-kantata-demo-token"
        response = await client.put(
            "/_sandbox/faults", json={"error_rate": 1.0, "error_status": 503}
        )
        assert response.status_code == 200
        assert response.json()["config"]["error_rate"] == 1.0
        failed = await client.get("/api/v1/users.json")
        assert failed.status_code == 503
        assert failed.json()["errors"][0]["type"] == "system"
        stats = (await client.get("/_sandbox/faults")).json()["stats"]
        assert stats == {**stats, "requests": 1, "errors": 1}
        assert (await client.post("/_sandbox/faults", json={"error_rate": 2})).status_code == 400
        assert (await client.post("/_sandbox/faults", json={"nonsense": 1})).status_code == 400
        assert (await client.post("/_sandbox/faults", json={})).status_code == 200
        assert (await client.get("/api/v1/users.json")).status_code == 200


def test_injector_rejects_bad_latency_range() -> None:
    with pytest.raises(ValueError, match="latency_ms"):
        FaultInjector(FaultConfig(latency_ms=(5, 1)), SalesforceErrors(), SandboxClock())


# -- admin view, clock and persistence ---------------------------------------------------


async def test_admin_clock_advance_moves_the_shared_clock(sandbox: Sandbox) -> None:
    async with client_for(sandbox, "kantata") as client:
        before = (await client.get("/_sandbox/clock")).json()["now"]
        response = await client.post("/_sandbox/clock/advance", json={"seconds": 3600})
        assert response.json()["now"] - before == pytest.approx(3600, abs=1)
        assert sandbox.clock.offset_s == 3600
        assert (
            await client.post("/_sandbox/clock/advance", json={"seconds": -1})
        ).status_code == 400
        assert (await client.post("/_sandbox/clock/advance", content=b"nope")).status_code == 400


async def test_admin_state_counts_and_duplicates(sandbox: Sandbox) -> None:
    state = sandbox.vendors["salesforce"].state
    first = state.insert("Account", {"Name": "A", "ERP_Customer_Id__c": "C-1"})
    second = state.insert("Account", {"Name": "A again", "ERP_Customer_Id__c": "C-1"})
    third = state.insert("Account", {"Name": "B", "ERP_Customer_Id__c": "C-2"})
    async with client_for(sandbox, "salesforce") as client:
        counts = (await client.get("/_sandbox/counts")).json()["counts"]
        assert counts["Account"] == 3
        duplicates = (await client.get("/_sandbox/duplicates")).json()["duplicates"]
        assert duplicates == [
            {"type": "Account", "source_key": "ERP_Customer_Id__c=C-1", "ids": [first, second]}
        ]
        snapshot = (await client.get("/_sandbox/state")).json()
        assert set(snapshot["records"]["Account"]) == {first, second, third}


async def test_persistence_round_trip(tmp_path: Path, clock: SandboxClock) -> None:
    path = tmp_path / "sandbox.json"
    config = SandboxConfig(vendors=("salesforce", "kantata"), persist_path=str(path))
    first = build_sandbox(config, clock=clock)
    async with client_for(first, "salesforce") as client:
        await _token(client)
        token = client.headers["Authorization"]
        created = await client.post("/services/data/v66.0/sobjects/Account", json={"Name": "Kept"})
        account_id = created.json()["id"]
    first.injectors["kantata"].configure(FaultConfig(error_rate=0.5))
    first.clock.advance(120)
    async with client_for(first, "kantata") as client:
        assert (await client.post("/_sandbox/persist")).json() == {
            "persisted": True,
            "path": str(path),
        }
    assert msgspec.json.decode(path.read_bytes())["version"] == 1

    second = build_sandbox(
        config, clock=SandboxClock(start=START, monotonic_source=trio.current_time)
    )
    assert second.clock.offset_s == 120
    assert second.injectors["kantata"].config.error_rate == 0.5
    assert second.vendors["salesforce"].state.counts() == first.vendors["salesforce"].state.counts()
    async with client_for(second, "salesforce") as client:
        client.headers["Authorization"] = token
        fetched = await client.get(f"/services/data/v66.0/sobjects/Account/{account_id}")
        assert fetched.json()["Name"] == "Kept"
        again = await client.post("/services/data/v66.0/sobjects/Account", json={"Name": "New"})
        assert again.json()["id"] != account_id


async def test_missing_vendor_modules_are_skipped_only_when_asked(clock: SandboxClock) -> None:
    from adapters.sandbox import sandbox as sandbox_module

    sandbox_module.VENDOR_MODULES["ghost"] = "adapters.sandbox.ghost_vendor"
    try:
        built = build_sandbox(
            SandboxConfig(vendors=("kantata", "ghost"), skip_missing=True), clock=clock
        )
        assert built.skipped == ["ghost"]
        assert set(built.apps) == {"kantata"}
        with pytest.raises(ModuleNotFoundError):
            build_sandbox(SandboxConfig(vendors=("ghost",)), clock=clock)
    finally:
        del sandbox_module.VENDOR_MODULES["ghost"]
