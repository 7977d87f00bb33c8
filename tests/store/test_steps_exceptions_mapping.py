"""Memoised steps, the exception queue, the id map, watermarks and cursors."""

from __future__ import annotations

from decimal import Decimal

import pytest

from actors.errors import LeaseLost, StoreError
from store import Journal, NewRun

from .conftest import event

T0 = 1_700_000_000.0


async def claimed_run(journal: Journal, owner: str = "w", key: str = "P-1") -> int:
    seq = (await journal.append([event(f"ev-{key}", key=key)])).seqs[0]
    await journal.create_runs(
        [NewRun(workflow="deal_to_project", key=key, trigger_seqs=(seq,), correlation_id="c1")],
        now=T0,
    )
    [run] = await journal.claim_runs(owner, now=T0, lease_s=60, limit=1)
    return run.id


async def test_completed_step_is_memoised_not_overwritten(journal: Journal) -> None:
    run_id = await claimed_run(journal)

    await journal.record_step(run_id, "create_customer", b"erp-1", now=T0, owner="w")
    kept = await journal.record_step(run_id, "create_customer", b"erp-2", now=T0 + 1)
    await journal.record_step(run_id, "notify", b"boom", now=T0 + 2, status="failed")
    await journal.record_step(run_id, "notify", b"ok", now=T0 + 3)

    assert kept.result == b"erp-1"
    steps = await journal.get_steps(run_id)
    assert {name: (s.status, s.result) for name, s in steps.items()} == {
        "create_customer": ("completed", b"erp-1"),
        "notify": ("completed", b"ok"),
    }


async def test_step_is_fenced_by_the_lease(journal: Journal) -> None:
    run_id = await claimed_run(journal, owner="old")
    await journal.claim_runs("new", now=T0 + 61, lease_s=60, limit=1)

    with pytest.raises(LeaseLost):
        await journal.record_step(run_id, "post", b"x", now=T0 + 62, owner="old")
    assert await journal.get_steps(run_id) == {}


async def test_park_run_opens_exception_and_holds_the_key(journal: Journal) -> None:
    run_id = await claimed_run(journal)

    opened = await journal.park_run(
        run_id,
        "w",
        now=T0 + 5,
        category="validation",
        exception_owner="finance-ops",
        message="missing legal entity",
        amount=Decimal("1234.50"),
        currency="EUR",
        detail=b'{"field": "legal_entity"}',
    )

    assert opened.amount == Decimal("1234.50")
    assert (opened.workflow, opened.correlation_id, opened.status) == (
        "deal_to_project",
        "c1",
        "open",
    )
    assert (await journal.get_run(run_id)).status == "waiting"
    assert await journal.claim_runs("w", now=T0 + 10_000, lease_s=60, limit=5) == []


async def test_retry_exception_makes_the_parked_run_claimable(journal: Journal) -> None:
    run_id = await claimed_run(journal)
    opened = await journal.park_run(run_id, "w", T0, category="c", exception_owner="o", message="m")

    closed = await journal.retry_exception(opened.id, by="alice", note="fixed", now=T0 + 50)

    assert (closed.status, closed.resolved_by) == ("retry", "alice")
    [run] = await journal.claim_runs("w2", now=T0 + 50, lease_s=60, limit=1)
    assert run.id == run_id
    with pytest.raises(StoreError, match="already retry"):
        await journal.resolve_exception(opened.id, "bob", "again", now=T0 + 60)


async def test_resolve_exception_cancels_the_parked_run(journal: Journal) -> None:
    run_id = await claimed_run(journal)
    opened = await journal.park_run(run_id, "w", T0, category="c", exception_owner="o", message="m")

    await journal.resolve_exception(opened.id, by="bob", resolution="done by hand", now=T0 + 1)

    run = await journal.get_run(run_id)
    assert run.status == "cancelled"
    assert "done by hand" in run.last_error


async def test_list_exceptions_filters(journal: Journal) -> None:
    common = {"message": "m", "correlation_id": "c"}
    a = await journal.open_exception(
        workflow="reconcile", category="mismatch", owner="fin", now=T0, **common
    )
    await journal.open_exception(
        workflow="reconcile", category="mismatch", owner="ops", now=T0 + 100, **common
    )
    c = await journal.open_exception(
        workflow="invoice",
        category="permanent",
        owner="fin",
        now=T0 + 200,
        amount=Decimal("0.10"),
        currency="USD",
        **common,
    )
    await journal.resolve_exception(c.id, "fin", "ok", now=T0 + 300)
    await journal.assign_exception(a.id, "ops", now=T0 + 400)

    async def ids(**filters) -> list[int]:
        return [x.id for x in await journal.list_exceptions(**filters)]

    assert await ids() == [1, 2]
    assert await ids(status=None) == [1, 2, 3]
    assert await ids(owner="ops") == [1, 2]
    assert await ids(status=None, workflow="invoice") == [3]
    assert await ids(category="mismatch", older_than=T0 + 50) == [1]
    assert (await journal.get_exception(3)).amount == Decimal("0.10")
    assert await journal.get_exception(99) is None


async def test_money_must_be_decimal_with_currency(journal: Journal) -> None:
    common = {"workflow": "w", "category": "c", "owner": "o", "message": "m"}
    with pytest.raises(StoreError, match="currency"):
        await journal.open_exception(correlation_id="c", now=T0, amount=Decimal("1.00"), **common)
    with pytest.raises(StoreError, match="Decimal"):
        await journal.open_exception(
            correlation_id="c",
            now=T0,
            amount=1.1,
            currency="EUR",
            **common,  # type: ignore[arg-type]
        )


async def test_id_map_is_unique_both_ways(journal: Journal) -> None:
    await journal.map_id("account", "acc-1", "erp", "C1001", now=T0)
    await journal.map_id("account", "acc-1", "erp", "C1001", now=T0)  # idempotent
    await journal.map_id("account", "acc-1", "crm", "001xx", now=T0)

    assert await journal.system_id("account", "acc-1", "erp") == "C1001"
    assert await journal.canonical_id("account", "crm", "001xx") == "acc-1"
    assert await journal.ids_of("account", "acc-1") == {"crm": "001xx", "erp": "C1001"}
    assert await journal.system_id("account", "acc-2", "erp") is None
    with pytest.raises(StoreError, match="already mapped to erp id C1001"):
        await journal.map_id("account", "acc-1", "erp", "C2002", now=T0)
    with pytest.raises(StoreError, match="already mapped to acc-1"):
        await journal.map_id("account", "acc-9", "erp", "C1001", now=T0)


async def test_watermarks_and_cursors(journal: Journal) -> None:
    assert await journal.get_watermark("crm", "opportunities") is None
    await journal.set_watermark("crm", "opportunities", "2026-11-25T10:00:00Z", now=T0)
    await journal.set_watermark("crm", "opportunities", "2026-11-25T11:00:00Z", now=T0)
    assert await journal.get_watermark("crm", "opportunities") == "2026-11-25T11:00:00Z"

    assert await journal.get_cursor("w") == 0
    await journal.append([event("a"), event("b")])
    await journal.set_cursor("w", 2, now=T0)
    await journal.set_cursor("v", 1, now=T0)
    assert await journal.cursors() == {"v": 1, "w": 2}
