"""TBA against the sandbox's credentials, the external-id scheme and the options."""

from __future__ import annotations

import msgspec
import pytest

from actors.errors import PermanentError
from actors.messages import UpsertCustomer
from adapters.netsuite import NetSuiteOptions, external_id
from adapters.netsuite.ids import is_external_id

from .builders import account
from .conftest import make_options


async def test_correctly_signed_requests_are_accepted(harness):
    adapter = harness.adapter()
    result = await adapter.execute(UpsertCustomer(idempotency_key="k", account=account()))
    assert result.created is True
    assert all(r.headers["Authorization"].startswith("OAuth ") for r in harness.transport.requests)
    assert harness.sandbox.vendors["netsuite"].app.auth_failures == []


async def test_wrongly_signed_request_is_refused_permanently(harness):
    client = harness.client(auth=harness.tba(token_secret="not-the-secret"))
    adapter = harness.adapter(client=client)
    with pytest.raises(PermanentError) as caught:
        await adapter.execute(UpsertCustomer(idempotency_key="k", account=account()))
    assert caught.value.status == 401
    assert caught.value.code == "INVALID_LOGIN_ATTEMPT"
    assert "not-the-secret" not in str(caught.value)
    # signed afresh and retried once (a 401 may be a flooded account), then given up
    assert harness.transport.statuses == [401, 401]
    assert harness.records("customer") == []


@pytest.mark.parametrize(
    "canonical",
    ["te_1042", "a-b", "0015g00000XyZab", "a.b", "a|b", "x" * 65, "a--b", "Ünïcode id", "a b"],
)
def test_external_ids_are_valid_deterministic_and_distinct(canonical):
    value = external_id("pssync", "tb", canonical)
    assert is_external_id(value)
    assert value == external_id("pssync", "tb", canonical)
    assert value != external_id("pssync", "je", canonical)
    assert len(value) <= 100


def test_plain_ids_stay_readable_and_odd_ones_are_hashed():
    assert external_id("pssync", "tb", "te_1042") == "pssync-tb-te_1042"
    hashed = external_id("pssync", "tb", "a.b")
    assert hashed.startswith("pssync-tb-a_b--")
    # the sanitised form of "a.b" is not confused with a literal "a_b"
    assert external_id("pssync", "tb", "a_b") != hashed
    assert external_id("pssync", "tb", "a.b") != external_id("pssync", "tb", "a,b")


def test_options_refuse_unknown_fields_and_bad_values():
    with pytest.raises(msgspec.ValidationError, match="unknown field"):
        msgspec.convert({"account_id": "1", "acount": "x"}, NetSuiteOptions)
    with pytest.raises(msgspec.ValidationError, match="suiteql_page_size"):
        msgspec.convert({"account_id": "1", "suiteql_page_size": 1001}, NetSuiteOptions)
    with pytest.raises(msgspec.ValidationError, match="external_id_prefix"):
        msgspec.convert({"account_id": "1", "external_id_prefix": "ps.sync"}, NetSuiteOptions)
    assert make_options().currency_iso("4") == "EUR"


async def test_create_adapter_gives_a_vendor_adapter(harness):
    from adapters.base import VendorAdapter
    from adapters.netsuite import create_adapter

    adapter = create_adapter(
        system="erp", client=harness.client(), mappings=harness.mappings, options=make_options()
    )
    assert isinstance(adapter, VendorAdapter)
    assert adapter.system == "erp"
    await adapter.aclose()


async def test_a_mapping_without_a_needed_entity_is_a_config_error(harness, tmp_path):
    from actors.errors import ConfigError
    from adapters.mapping import load_mapping
    from adapters.netsuite import create_adapter

    path = tmp_path / "netsuite.toml"
    path.write_text(
        'vendor = "netsuite"\nversion = 1\n[entities.customer]\nobject = "customer"\n'
        '[entities.customer.fields]\nname = "companyName"\n'
    )
    with pytest.raises(ConfigError, match="no mapping for entity 'job'"):
        create_adapter(
            system="erp",
            client=harness.client(),
            mappings=load_mapping(path),
            options=make_options(),
        )
