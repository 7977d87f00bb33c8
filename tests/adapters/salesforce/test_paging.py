"""Query paging: nextRecordsUrl batches, runs of equal timestamps, nested subquery pages."""

from __future__ import annotations

from pathlib import Path

import httpx
import msgspec
import pytest

from actors.errors import PermanentError
from adapters.auth import BearerToken
from adapters.governor import Governor, GovernorConfig, Lane
from adapters.http import HttpConfig, SystemClient
from adapters.mapping import MappingSet, load_mapping
from adapters.salesforce import SalesforceAdapter, SalesforceOptions, create_adapter
from adapters.salesforce.api import SalesforceApi
from adapters.sandbox import Sandbox

from .conftest import BASE_URL, MAPPING, MakeAdapter, RecordingTransport, drain, feed


def add_accounts(sandbox: Sandbox, clock, count: int, *, step_s: float) -> list[str]:
    state = sandbox.vendors["salesforce"].state
    ids = []
    for number in range(count):
        ids.append(state.insert("Account", {"Name": f"Bulk {number}", "Type": "Prospect"}))
        clock.advance(step_s)
    return ids


@pytest.mark.parametrize(("step_s", "overlap_s"), [(0.5, 60.0), (0.0, 0.0)])
async def test_every_account_once_across_batches_and_polls(
    autojump_clock,
    sandbox: Sandbox,
    clock,
    make_adapter: MakeAdapter,
    transport: RecordingTransport,
    step_s: float,
    overlap_s: float,
) -> None:
    # step 0.5 s: distinct timestamps. step 0 and no overlap: one run of 450 equal, whole-
    # second timestamps, which a page must not cut (the next poll's ">" would skip the rest).
    adapter = make_adapter(overlap_s=overlap_s)
    clock.advance(3600)
    added = add_accounts(sandbox, clock, 450, step_s=step_s)
    envelopes, _ = await drain(feed(adapter, "changed_accounts"), None, limit=120)
    ids = [e.body.account.id for e in envelopes]
    everything = set(sandbox.vendors["salesforce"].state.records["Account"])
    assert set(ids) == everything
    assert set(added) <= set(ids)
    assert len({e.id for e in envelopes}) == len(everything)  # deduplicated: exactly once
    follow_ups = [r for r in transport.data_requests() if "/query/" in r.url.path]
    assert follow_ups  # batches of 200 were followed by nextRecordsUrl


async def test_a_long_line_subquery_is_followed_to_its_end(autojump_clock) -> None:
    calls: list[str] = []
    line = {"attributes": {"type": "OpportunityLineItem"}, "Id": "00k1", "UnitPrice": 1.0}

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        body = {"totalSize": 3, "done": True, "records": [{**line, "Id": "00k3"}]}
        return httpx.Response(200, content=msgspec.json.encode(body))

    client = SystemClient(
        "crm",
        HttpConfig(base_url=BASE_URL),
        auth=BearerToken("t"),
        governor=Governor(GovernorConfig(rate_per_s=100.0, burst=10, max_concurrency=2)),
        transport=httpx.MockTransport(handler),
    )
    async with client:
        api = SalesforceApi(client, SalesforceOptions())
        nested = {
            "totalSize": 3,
            "done": False,
            "nextRecordsUrl": "/services/data/v66.0/query/01gX-2",
            "records": [line, {**line, "Id": "00k2"}],
        }
        rows = await api.children(nested, lane=Lane.ANALYTICS, correlation_id="c", where="x")
        assert [row["Id"] for row in rows] == ["00k1", "00k2", "00k3"]
        assert calls == ["/services/data/v66.0/query/01gX-2"]
        assert await api.children(None, lane=Lane.ANALYTICS, correlation_id="c", where="x") == []


@pytest.fixture
def unknown_field_mappings(tmp_path: Path) -> MappingSet:
    text = MAPPING.read_text(encoding="utf-8")
    path = tmp_path / "salesforce.toml"
    path.write_text(text.replace('tax_id = "Tax_Id__c"', 'tax_id = "VAT__c"'), encoding="utf-8")
    return load_mapping(path)


async def test_a_mapping_naming_an_unknown_field_is_permanent(
    autojump_clock, adapter: SalesforceAdapter, unknown_field_mappings: MappingSet
) -> None:
    broken = create_adapter(
        system="crm",
        client=adapter.client,
        mappings=unknown_field_mappings,
        options=adapter.options,
    )
    with pytest.raises(PermanentError) as caught:
        await feed(broken, "changed_accounts").poll(None, limit=10)
    assert caught.value.code == "INVALID_FIELD"
    assert caught.value.status == 400
