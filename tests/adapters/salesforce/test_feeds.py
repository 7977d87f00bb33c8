"""The won_deals and changed_accounts feeds against the seeded sandbox and the scenario."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from actors.errors import PayloadError
from actors.messages import AccountChanged, DealWon, Money
from adapters.base import ChangeFeed
from adapters.salesforce import SalesforceAdapter
from adapters.salesforce.hierarchy import chain_of
from adapters.sandbox import Sandbox, Scenario

from .conftest import MakeAdapter, RecordingTransport, drain, feed, won_ids


async def test_feeds_are_named_for_their_workflows(adapter: SalesforceAdapter) -> None:
    assert [(f.name, f.workflow) for f in adapter.feeds()] == [
        ("won_deals", "deal_to_project"),
        ("changed_accounts", "customer_master"),
    ]
    assert all(isinstance(f, ChangeFeed) for f in adapter.feeds())


async def test_every_won_deal_arrives_exactly_once_across_pages(
    autojump_clock, sandbox: Sandbox, adapter: SalesforceAdapter
) -> None:
    scenario = Scenario(sandbox)
    won = feed(adapter, "won_deals")
    watermark = None
    seen: dict[str, str] = {}  # envelope id → opportunity id, as the journal would dedupe
    for _ in range(4):
        report = scenario.run_week()
        assert report.deals_won
        envelopes, watermark = await drain(won, watermark, limit=2)
        for envelope in envelopes:
            seen.setdefault(envelope.id, envelope.body.opportunity.id)
    assert sorted(seen.values()) == sorted(won_ids(sandbox))
    # Nothing new: the next poll re-reads at most the overlap, with the same envelope ids.
    page = await won.poll(watermark, limit=2)
    assert {e.id for e in page.envelopes} <= set(seen)
    assert page.watermark == watermark
    assert not page.more


async def test_deal_won_maps_money_dates_lines_account_and_contact(
    autojump_clock, sandbox: Sandbox, adapter: SalesforceAdapter
) -> None:
    state = sandbox.vendors["salesforce"].state
    report = Scenario(sandbox).run_week()
    envelopes, _ = await drain(feed(adapter, "won_deals"), None, limit=50)
    envelope = next(e for e in envelopes if e.body.opportunity.id == report.deals_won[0])
    record = state.records["Opportunity"][report.deals_won[0]]
    account_record = state.records["Account"][record["AccountId"]]
    event = envelope.body
    assert isinstance(event, DealWon)
    deal = event.opportunity
    currency = record["CurrencyIsoCode"]
    assert deal.is_won
    assert deal.is_closed
    assert deal.stage == "Closed Won"
    assert deal.close_date == date.fromisoformat(record["CloseDate"])
    assert deal.amount == Money(amount=Decimal(repr(record["Amount"])), currency=currency)
    assert deal.legal_entity == record["Legal_Entity__c"]
    assert deal.service_line == record["Service_Line__c"]
    lines = [
        line
        for line in state.records["OpportunityLineItem"].values()
        if line["OpportunityId"] == deal.id
    ]
    assert sorted(line.id for line in deal.lines) == sorted(line["Id"] for line in lines)
    for line in deal.lines:
        source = state.records["OpportunityLineItem"][line.id]
        assert line.unit_price == Money.of(repr(source["UnitPrice"]), currency)
        assert line.quantity == Decimal(repr(source["Quantity"]))
        assert line.service_line == record["Service_Line__c"]
        assert line.billing_type == source["Billing_Type__c"]
        assert line.milestone_name == (source.get("Milestone_Name__c") or "")
        if source.get("Hours__c") is not None:
            assert line.hours == Decimal(repr(source["Hours__c"]))
    assert sum((line.total.amount for line in deal.lines), Decimal(0)) == deal.amount.amount
    assert event.account is not None
    assert event.account.id == record["AccountId"]
    assert event.account.legal_entity == account_record["Legal_Entity__c"]
    assert event.account.billing_contact is not None
    assert event.account.billing_contact.id == account_record["Billing_Contact__c"]
    assert event.contacts == (event.account.billing_contact,)
    stamp = datetime.fromisoformat(record["SystemModstamp"])
    assert envelope.occurred_at == stamp
    assert deal.updated_at == stamp
    assert envelope.source == "crm"


async def test_deal_is_keyed_by_the_top_of_its_account_hierarchy(
    autojump_clock, sandbox: Sandbox, adapter: SalesforceAdapter
) -> None:
    state = sandbox.vendors["salesforce"].state
    accounts = state.records["Account"]
    child = next(a for a in accounts.values() if a["ParentId"])
    parent = accounts[child["ParentId"]]
    # A third level above the seeded two, so the walk has to go twice.
    top = state.insert("Account", {"Name": "Umbrella Holdings", "Type": "Customer"})
    state.update("Account", parent["Id"], {"ParentId": top})
    deal = next(o for o in state.records["Opportunity"].values() if o["AccountId"] == child["Id"])
    state.update("Opportunity", deal["Id"], {"StageName": "Closed Won"})
    envelopes, _ = await drain(feed(adapter, "won_deals"), None, limit=50)
    (envelope,) = [e for e in envelopes if e.body.opportunity.id == deal["Id"]]
    assert envelope.key == f"account:{top}"
    assert envelope.body.account.parent_id == parent["Id"]
    assert [a.id for a in envelope.body.account_hierarchy] == [parent["Id"], top]


def test_hierarchy_walk_stops_at_cycles_and_depth() -> None:
    chain = {f"a{n}": {"Id": f"a{n}", "ParentId": f"a{n + 1}"} for n in range(15)}
    chain["a15"] = {"Id": "a15", "ParentId": None}
    assert chain_of("a12", chain, max_depth=10).ids == ("a12", "a13", "a14", "a15")
    deep = chain_of("a0", chain, max_depth=10)
    assert deep.root == "a10"
    assert "deeper than 10" in deep.problem
    cycle = {"x": {"Id": "x", "ParentId": "y"}, "y": {"Id": "y", "ParentId": "x"}}
    looped = chain_of("x", cycle, max_depth=10)
    assert looped.ids == ("x", "y")
    assert "cycle" in looped.problem
    missing = chain_of("x", {"x": {"Id": "x", "ParentId": "gone"}}, max_depth=10)
    assert missing.ids == ("x",)
    assert "not readable" in missing.problem


async def test_malformed_deals_are_emitted_as_salesforce_holds_them(
    autojump_clock, sandbox: Sandbox, adapter: SalesforceAdapter
) -> None:
    report = Scenario(sandbox).run_week()
    envelopes, _ = await drain(feed(adapter, "won_deals"), None, limit=50)
    by_id = {e.body.opportunity.id: e.body for e in envelopes}
    no_contact, odd_currency, no_entity = (by_id[i] for i in report.malformed_deals)
    assert no_contact.account.billing_contact is None
    assert no_contact.contacts == ()
    assert odd_currency.opportunity.amount.currency == "ZAR"
    assert odd_currency.account.currency == "ZAR"
    assert no_entity.opportunity.legal_entity is None
    assert no_entity.account.legal_entity is None


async def test_a_field_that_does_not_decode_is_a_payload_error_naming_the_record(
    autojump_clock, sandbox: Sandbox, adapter: SalesforceAdapter
) -> None:
    state = sandbox.vendors["salesforce"].state
    deal = next(iter(state.records["Opportunity"].values()))
    # validate=False: data a real org could hold after a bad import.
    state.update(
        "Opportunity",
        deal["Id"],
        {"StageName": "Closed Won", "CloseDate": "31/12/2025"},
        validate=False,
    )
    with pytest.raises(PayloadError) as caught:
        await feed(adapter, "won_deals").poll(None, limit=50)
    assert deal["Id"] in str(caught.value)
    assert "close_date from CloseDate" in str(caught.value)


async def test_overlap_rereads_late_commits_with_the_same_ids(
    autojump_clock, sandbox: Sandbox, clock, make_adapter: MakeAdapter
) -> None:
    adapter = make_adapter(overlap_s=300.0)
    Scenario(sandbox).run_week()
    won = feed(adapter, "won_deals")
    first, watermark = await drain(won, None, limit=50)
    # A transaction that began before the watermark commits only now.
    state = sandbox.vendors["salesforce"].state
    late_deal = next(o for o in state.records["Opportunity"].values() if not o["IsClosed"])
    state.update("Opportunity", late_deal["Id"], {"StageName": "Closed Won"})
    high = datetime.fromisoformat(watermark)
    state.records["Opportunity"][late_deal["Id"]]["SystemModstamp"] = (
        high.replace(microsecond=0).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000+0000")
    )
    page = await won.poll(watermark, limit=50)
    ids = {e.body.opportunity.id for e in page.envelopes}
    assert late_deal["Id"] in ids
    assert {e.id for e in first} <= {e.id for e in page.envelopes}  # re-read, same ids
    assert page.watermark == watermark


async def test_a_busy_overlap_window_does_not_stop_the_feed(
    autojump_clock, sandbox: Sandbox, make_adapter: MakeAdapter
) -> None:
    adapter = make_adapter(overlap_s=86_400.0)
    accounts = feed(adapter, "changed_accounts")
    total = len(sandbox.vendors["salesforce"].state.records["Account"])
    envelopes, watermark = await drain(accounts, None, limit=3)
    assert {e.body.account.id for e in envelopes} == set(
        sandbox.vendors["salesforce"].state.records["Account"]
    )
    assert len({e.id for e in envelopes}) == total
    page = await accounts.poll(watermark, limit=3)
    assert not page.more


async def test_changed_accounts_are_snapshots_without_diffs(
    autojump_clock, sandbox: Sandbox, adapter: SalesforceAdapter, clock
) -> None:
    state = sandbox.vendors["salesforce"].state
    accounts = feed(adapter, "changed_accounts")
    _, watermark = await drain(accounts, None, limit=500)
    clock.advance(3600)
    account_id = next(iter(state.records["Account"]))
    state.update("Account", account_id, {"Tax_Id__c": "GB123456789", "Payment_Terms__c": "Net 45"})
    page = await accounts.poll(watermark, limit=500)
    changed = [e for e in page.envelopes if e.body.account.id == account_id]
    assert len(changed) == 1
    event = changed[0].body
    assert isinstance(event, AccountChanged)
    assert event.changes == ()
    assert event.account.tax_id == "GB123456789"
    assert event.account.payment_terms_days == 45
    assert changed[0].key == f"account:{account_id}"
    assert datetime.fromisoformat(page.watermark) > datetime.fromisoformat(watermark)


async def test_start_watermark_skips_older_records(
    autojump_clock, sandbox: Sandbox, make_adapter: MakeAdapter, clock
) -> None:
    clock.advance(86_400)
    adapter = make_adapter(start_watermark="2026-01-01T12:00:00Z", overlap_s=0.0)
    state = sandbox.vendors["salesforce"].state
    account_id = next(iter(state.records["Account"]))
    state.update("Account", account_id, {"Industry": "Mining"})
    page = await feed(adapter, "changed_accounts").poll(None, limit=100)
    assert [e.body.account.id for e in page.envelopes] == [account_id]


async def test_a_bad_watermark_is_a_payload_error(adapter: SalesforceAdapter) -> None:
    with pytest.raises(PayloadError, match="watermark"):
        await feed(adapter, "won_deals").poll("yesterday", limit=10)


async def test_lines_come_in_the_same_query_as_the_deal(
    autojump_clock, sandbox: Sandbox, adapter: SalesforceAdapter, transport: RecordingTransport
) -> None:
    Scenario(sandbox).run_week()
    await feed(adapter, "won_deals").poll(None, limit=50)
    queries = [r.url.params["q"] for r in transport.data_requests() if "q" in r.url.params]
    assert "FROM OpportunityLineItems" in queries[0]
    # One deal query and one account query per hierarchy level (two seeded levels + stop).
    assert len(queries) <= 4
