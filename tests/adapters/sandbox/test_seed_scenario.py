"""Seed data and the scenario driver: realistic, and the same for the same seed."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
import trio

from adapters.sandbox import Sandbox, SandboxClock, SandboxConfig, Vendor, build_sandbox
from adapters.sandbox.scenario import Scenario, run_scenario
from adapters.sandbox.seed import LEGAL_ENTITIES, SERVICE_LINES

from .conftest import START


def seeded(seed: int) -> Sandbox:
    clock = SandboxClock(start=START, monotonic_source=trio.current_time)
    config = SandboxConfig(vendors=("salesforce", "kantata"), seed=seed, seed_data=True)
    sandbox = build_sandbox(config, clock=clock)
    kantata = sandbox.vendors["kantata"].state
    templates = sorted(kantata.tables["project_templates"], key=int)
    # Stand in for the daemon: a few projects created from the service-line templates.
    for number in range(6):
        project = {
            "title": f"Project {number}",
            "creator_role": "maven",
            "project_template_id": templates[number % len(templates)],
            "project_template_start_date": "2026-01-05",
        }
        kantata.create("workspaces", [project])
    return sandbox


def snapshot(sandbox: Sandbox) -> bytes:
    return msgspec.json.encode(sandbox.snapshot())


async def test_seed_builds_a_realistic_firm(autojump_clock) -> None:
    sandbox = seeded(seed=7)
    salesforce = sandbox.vendors["salesforce"].state
    kantata = sandbox.vendors["kantata"].state
    accounts = list(salesforce.records["Account"].values())
    assert len(accounts) >= 25
    assert {a["CurrencyIsoCode"] for a in accounts} == {"USD", "GBP", "EUR"}
    assert {a["Legal_Entity__c"] for a in accounts} == set(LEGAL_ENTITIES)
    children = [a for a in accounts if a["ParentId"]]
    assert children, "some customers are hierarchies"
    assert any(
        salesforce.records["Account"][c["ParentId"]]["Legal_Entity__c"] != c["Legal_Entity__c"]
        for c in children
    ), "some hierarchies span legal entities"
    assert all(a["Billing_Contact__c"] for a in accounts)
    lines = salesforce.records["OpportunityLineItem"].values()
    assert {line["Billing_Type__c"] for line in lines} == {
        "fixed_fee",
        "time_and_materials",
        "subscription",
    }
    assert not any(o["IsClosed"] for o in salesforce.records["Opportunity"].values())
    consultants = [u for u in kantata.tables["users"].values() if u.get("role")]
    assert len(consultants) == 100
    assert all(0 < u["cost_rate_in_cents"] < u["bill_rate_in_cents"] for u in consultants)
    templates = kantata.tables["project_templates"].values()
    assert {t["service_line"] for t in templates} == set(SERVICE_LINES)
    assert salesforce.duplicates() == []
    assert kantata.duplicates() == []


async def test_seed_is_deterministic(autojump_clock) -> None:
    assert snapshot(seeded(seed=3)) == snapshot(seeded(seed=3))
    assert snapshot(seeded(seed=3)) != snapshot(seeded(seed=4))


async def test_scenario_is_deterministic_by_seed(autojump_clock) -> None:
    def play(seed: int) -> tuple[bytes, list[Any]]:
        sandbox = seeded(seed=1)
        scenario = Scenario(sandbox, seed=seed, month_end_entries=50)
        reports = [msgspec.to_builtins(scenario.run_week()) for _ in range(5)]
        return snapshot(sandbox), reports

    first, second, other = play(9), play(9), play(10)
    assert first == second
    assert first != other


async def test_scenario_week_moves_the_business(autojump_clock) -> None:
    sandbox = seeded(seed=2)
    scenario = Scenario(sandbox, seed=2, month_end_entries=40)
    salesforce = sandbox.vendors["salesforce"].state
    kantata = sandbox.vendors["kantata"].state
    reports = [scenario.run_week() for _ in range(5)]

    won = [deal for report in reports for deal in report.deals_won]
    assert won
    assert all(salesforce.records["Opportunity"][d]["IsWon"] for d in won)
    assert all(salesforce.records["Opportunity"][d]["HasOpportunityLineItem"] for d in won)
    assert sum(len(report.deals_created) for report in reports) > 0
    # Five weekdays for each member of each project's team, every week.
    assert all(
        report.time_entries_logged % 5 == 0 and report.time_entries_logged for report in reports
    )
    assert sum(report.milestones_completed != [] for report in reports) >= 1
    assert sum(r.time_entries_approved for r in reports) <= kantata.counts()["time_entries"]
    assert scenario.clock.now() == pytest.approx(START + 5 * 7 * 86_400, abs=1)


async def test_malformed_deals_are_won_with_their_defects(autojump_clock) -> None:
    sandbox = seeded(seed=5)
    report = Scenario(sandbox, seed=5).run_week()
    salesforce = sandbox.vendors["salesforce"].state
    deals = [salesforce.records["Opportunity"][d] for d in report.malformed_deals]
    assert [d["Description"] for d in deals] == [
        "sandbox: malformed (missing billing contact)",
        "sandbox: malformed (unknown currency ZAR)",
        "sandbox: malformed (no legal entity)",
    ]
    assert all(d["IsWon"] for d in deals)
    accounts = [salesforce.records["Account"][d["AccountId"]] for d in deals]
    assert accounts[0]["Billing_Contact__c"] is None
    assert deals[1]["CurrencyIsoCode"] == "ZAR"
    assert deals[2]["Legal_Entity__c"] is None
    assert accounts[2]["Legal_Entity__c"] is None
    scenario = Scenario(sandbox, seed=5)
    assert scenario.run_week().malformed_deals != []
    assert scenario.run_week().malformed_deals == []  # one driver adds them once


async def test_month_end_spike_approves_everything_pending_at_once(autojump_clock) -> None:
    sandbox = seeded(seed=6)
    kantata = sandbox.vendors["kantata"].state
    scenario = Scenario(sandbox, seed=6, month_end_entries=300)
    reports = [scenario.run_week() for _ in range(5)]
    [spike] = [r for r in reports if r.month_end_spike]
    assert reports.index(spike) == 4  # the week 2026-01-29 .. 02-04 holds January's end
    assert spike.month_end_spike >= 300
    stamps = {e["updated_at"] for e in kantata.tables["time_entries"].values() if e["approved"]}
    pending = [e for e in kantata.tables["time_entries"].values() if not e["approved"]]
    assert pending == []
    assert len(stamps) <= 5  # approvals land in a handful of instants, not one per entry


class FakeStripeState:
    """The documented hook: open_invoice_ids() and pay_invoice(id)."""

    def __init__(self, invoices: list[str]) -> None:
        self.open = list(invoices)
        self.paid: list[str] = []

    def open_invoice_ids(self) -> list[str]:
        return list(self.open)

    def pay_invoice(self, invoice_id: str) -> None:
        self.open.remove(invoice_id)
        self.paid.append(invoice_id)

    counts = duplicates = snapshot = restore = None  # not used by the scenario


async def test_invoices_are_paid_on_time_late_or_never(autojump_clock) -> None:
    sandbox = seeded(seed=8)
    invoices = [f"in_{n:04d}" for n in range(60)]
    stripe = FakeStripeState(invoices)
    sandbox.vendors["stripe"] = Vendor(name="stripe", state=stripe, errors=None, app=None)  # type: ignore[arg-type]
    scenario = Scenario(sandbox, seed=8)
    weekly = [scenario.run_week().invoices_paid for _ in range(8)]
    assert weekly[0] == []  # fates are drawn when an invoice is first seen
    on_time, late = len(weekly[1]), sum(len(paid) for paid in weekly[2:])
    assert 30 <= on_time <= 52
    assert late > 0
    assert 0 < len(stripe.open) < 15  # the ones that never pay
    assert sorted(stripe.paid) == sorted(set(stripe.paid))


async def test_scenario_without_stripe_skips_payments(autojump_clock, sandbox: Sandbox) -> None:
    assert Scenario(sandbox).run_week().invoices_paid == []


async def test_run_scenario_plays_a_week_per_interval(autojump_clock) -> None:
    sandbox = seeded(seed=4)
    seen: list[str] = []
    started = trio.current_time()
    reports = await run_scenario(
        Scenario(sandbox, seed=4),
        interval_s=10,
        weeks=3,
        on_week=lambda report: seen.append(report.week_start),
    )
    assert trio.current_time() - started == pytest.approx(30)
    assert seen == [report.week_start for report in reports]
    assert seen == ["2026-01-01", "2026-01-08", "2026-01-15"]


async def test_the_real_stripe_vendor_offers_the_payment_hook(autojump_clock, clock) -> None:
    sandbox = build_sandbox(SandboxConfig(vendors=("stripe",), skip_missing=True), clock=clock)
    if "stripe" not in sandbox.vendors:
        pytest.skip("adapters.sandbox.stripe is not built yet")
    scenario = Scenario(sandbox)
    assert scenario.stripe is not None
    assert scenario.run_week().invoices_paid == []
