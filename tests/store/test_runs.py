"""Runs: creation, the dispatcher's atomic step, leases, ordering, backoff, concurrency."""

from __future__ import annotations

from contextlib import AsyncExitStack

import pytest
import trio

from actors.errors import LeaseLost, StoreError
from store import Journal, NewRun, open_journal

from .conftest import event

T0 = 1_700_000_000.0


def new_run(seq: int, *, key: str = "P-1", workflow: str = "time_to_erp", **kw) -> NewRun:
    return NewRun(workflow=workflow, key=key, trigger_seqs=(seq,), correlation_id=f"c{seq}", **kw)


async def seeded(journal: Journal, count: int, *, keys: int = 1) -> list[int]:
    await journal.append([event(f"e{i}", key=f"P-{i % keys}") for i in range(count)])
    return await journal.create_runs(
        [new_run(i + 1, key=f"P-{i % keys}") for i in range(count)], now=T0
    )


async def test_one_run_per_workflow_and_trigger(journal: Journal) -> None:
    await journal.append([event("a"), event("b")])

    first = await journal.create_runs([new_run(1), new_run(2)], now=T0)
    again = await journal.create_runs([new_run(1), new_run(1, replay=True)], now=T0)

    assert first == [1, 2]
    assert again[0] is None  # same workflow x trigger: not created twice
    assert again[1] is not None  # a replay is a deliberate second run
    replay = await journal.get_run(again[1])
    assert (replay.replay, replay.trigger_seqs) == (True, (1,))


async def test_run_over_a_group_of_events_keeps_all_triggers(journal: Journal) -> None:
    await journal.append([event("a"), event("b"), event("c")])

    [run_id] = await journal.create_runs(
        [NewRun(workflow="w", key="P-1", trigger_seqs=(3, 1, 2), correlation_id="c")], now=T0
    )

    run = await journal.get_run(run_id)
    assert run.trigger_seqs == (1, 2, 3)
    assert run.status == "pending"
    assert run.attempts == 0


async def test_create_runs_and_advance_cursor_is_atomic(journal: Journal) -> None:
    await journal.append([event("a"), event("b")])

    await journal.create_runs_and_advance("w", [new_run(1, workflow="w")], 1, now=T0)
    assert await journal.get_cursor("w") == 1

    # A run over a missing event fails the foreign key: neither run nor cursor move.
    with pytest.raises(StoreError):
        await journal.create_runs_and_advance(
            "w", [new_run(2, workflow="w"), new_run(99, workflow="w")], 2, now=T0
        )
    assert await journal.get_cursor("w") == 1
    assert [r.trigger_seqs for r in await journal.list_runs(workflow="w")] == [(1,)]
    with pytest.raises(StoreError, match="cannot move back"):
        await journal.create_runs_and_advance("w", [], 0, now=T0)


async def test_claim_leases_due_runs_once(journal: Journal) -> None:
    await seeded(journal, 3, keys=3)

    claimed = await journal.claim_runs("worker-a", now=T0, lease_s=30, limit=10)
    again = await journal.claim_runs("worker-b", now=T0 + 1, lease_s=30, limit=10)

    assert [r.id for r in claimed] == [1, 2, 3]
    assert all(r.status == "running" and r.lease_owner == "worker-a" for r in claimed)
    assert claimed[0].lease_expires_at == T0 + 30
    assert claimed[0].attempts == 1
    assert again == []


async def test_claim_respects_limit_workflow_and_next_attempt_at(journal: Journal) -> None:
    await journal.append([event("a", key="A"), event("b", key="B"), event("c", key="C")])
    await journal.create_runs(
        [
            new_run(1, key="A", workflow="w1"),
            new_run(2, key="B", workflow="w2"),
            new_run(3, key="C", workflow="w1", next_attempt_at=T0 + 100),
        ],
        now=T0,
    )

    assert [r.key for r in await journal.claim_runs("x", T0, 900, 10, workflow="w1")] == ["A"]
    assert [r.key for r in await journal.claim_runs("x", T0 + 100, 30, 1, "w1")] == ["C"]
    assert [r.key for r in await journal.claim_runs("x", T0, 30, 10)] == ["B"]


async def test_runs_of_one_key_execute_in_order(journal: Journal) -> None:
    await seeded(journal, 3, keys=1)

    [first] = await journal.claim_runs("a", now=T0, lease_s=30, limit=10)
    assert first.id == 1
    assert await journal.claim_runs("b", now=T0, lease_s=30, limit=10) == []

    await journal.complete_run(first.id, "a", now=T0 + 1)
    [second] = await journal.claim_runs("b", now=T0 + 1, lease_s=30, limit=10)
    assert second.id == 2


async def test_expired_lease_of_a_dead_claimer_is_claimable_again(journal: Journal) -> None:
    await seeded(journal, 1)
    [run] = await journal.claim_runs("dead", now=T0, lease_s=30, limit=1)

    assert await journal.claim_runs("alive", now=T0 + 29.9, lease_s=30, limit=1) == []
    [again] = await journal.claim_runs("alive", now=T0 + 30, lease_s=30, limit=1)

    assert again.id == run.id
    assert again.lease_owner == "alive"
    assert again.attempts == 2
    with pytest.raises(LeaseLost):
        await journal.complete_run(run.id, "dead", now=T0 + 31)
    await journal.complete_run(run.id, "alive", now=T0 + 31)
    assert (await journal.get_run(run.id)).status == "completed"


async def test_expire_leases_returns_stale_runs_to_pending(journal: Journal) -> None:
    await seeded(journal, 2, keys=2)
    await journal.claim_runs("dead", now=T0, lease_s=10, limit=1)
    await journal.claim_runs("other", now=T0 + 5, lease_s=10, limit=1)

    assert await journal.expire_leases(now=T0 + 12) == 1

    statuses = {r.lease_owner or r.status for r in await journal.list_runs()}
    assert statuses == {"pending", "other"}


async def test_renew_extends_and_detects_a_lost_lease(journal: Journal) -> None:
    await seeded(journal, 1)
    [run] = await journal.claim_runs("a", now=T0, lease_s=10, limit=1)

    assert await journal.renew_lease(run.id, "a", now=T0 + 5, lease_s=10) == T0 + 15
    assert await journal.claim_runs("b", now=T0 + 12, lease_s=10, limit=1) == []
    await journal.claim_runs("b", now=T0 + 15, lease_s=10, limit=1)
    with pytest.raises(LeaseLost, match="not leased to a"):
        await journal.renew_lease(run.id, "a", now=T0 + 16, lease_s=10)
    with pytest.raises(StoreError, match="does not exist"):
        await journal.renew_lease(999, "a", now=T0, lease_s=10)


async def test_fail_retryable_backs_off_until_next_attempt_at(journal: Journal) -> None:
    await seeded(journal, 1)
    [run] = await journal.claim_runs("a", now=T0, lease_s=10, limit=1)

    await journal.fail_run(run.id, "a", now=T0 + 1, next_attempt_at=T0 + 300, error="503")

    stored = await journal.get_run(run.id)
    assert (stored.status, stored.last_error, stored.lease_owner) == ("retry_wait", "503", None)
    assert await journal.claim_runs("a", now=T0 + 299, lease_s=10, limit=1) == []
    [retry] = await journal.claim_runs("a", now=T0 + 300, lease_s=10, limit=1)
    assert retry.attempts == 2


async def test_cancel_only_idle_unfinished_runs(journal: Journal) -> None:
    await seeded(journal, 2, keys=2)
    await journal.claim_runs("a", now=T0, lease_s=10, limit=1)

    with pytest.raises(StoreError, match="is running"):
        await journal.cancel_run(1, now=T0, reason="operator")
    await journal.cancel_run(2, now=T0, reason="operator")
    assert (await journal.get_run(2)).status == "cancelled"


async def test_concurrent_claimers_on_separate_connections_never_share_a_run(
    journal_path: str,
) -> None:
    # Four journals on one file: four writer threads contending for SQLite's write lock.
    async with open_journal(journal_path) as journal:
        await seeded(journal, 120, keys=40)
    claims: dict[str, list[int]] = {}
    first_claims: list[str] = []
    all_claimed_once = trio.Event()

    async def claimer(journal: Journal, name: str) -> None:
        mine = claims.setdefault(name, [])
        idle = 0
        while idle < 3:
            batch = await journal.claim_runs(name, now=T0, lease_s=60, limit=4)
            if name not in first_claims:
                # SQLite's busy handler backs off: without this, one writer thread can
                # take every run before the others get the lock and nothing is contended.
                first_claims.append(name)
                if len(first_claims) == 4:
                    all_claimed_once.set()
                await all_claimed_once.wait()
            idle = 0 if batch else idle + 1
            for run in batch:
                mine.append(run.id)
                await journal.complete_run(run.id, name, now=T0)
            await trio.lowlevel.checkpoint()

    async with AsyncExitStack() as stack:
        journals = [await stack.enter_async_context(open_journal(journal_path)) for _ in range(4)]
        async with trio.open_nursery() as nursery:
            for index, journal in enumerate(journals):
                nursery.start_soon(claimer, journal, f"worker-{index}")

    every = [run_id for ids in claims.values() for run_id in ids]
    assert sorted(every) == list(range(1, 121))  # each run claimed exactly once
    assert sum(1 for ids in claims.values() if ids) >= 2  # they really competed
