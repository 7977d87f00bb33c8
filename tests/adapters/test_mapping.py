"""Declarative field mappings: vendor records in, canonical fields out, and back."""

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest

from actors.errors import ConfigError, PayloadError
from actors.messages import Money, Opportunity, TimeEntry
from adapters.mapping import LiveMappings, load_mapping, load_mappings

SALESFORCE = """
vendor = "salesforce"
version = 3

[entities.opportunity]
object = "Opportunity"

[entities.opportunity.fields]
id = { from = "Id", required = true, write = false }
account_id = { from = "AccountId", required = true }
name = "Name"
stage = "StageName"
is_won = { from = "IsWon", as = "bool", write = false }
amount = { from = "Amount", as = "money", currency_from = "CurrencyIsoCode" }
close_date = { from = "CloseDate", as = "date" }
legal_entity = "Account.Legal_Entity__c"
updated_at = { from = "SystemModstamp", as = "datetime", write = false }
"""

KANTATA = """
vendor = "kantata"
version = 1

[entities.time_entry]
object = "time_entries"

[entities.time_entry.fields]
id = { from = "id", required = true }
project_id = { from = "workspace_id", required = true }
consultant_id = { from = "user_id", required = true }
date_performed = { from = "date_performed", as = "date" }
hours = { from = "time_in_minutes", as = "minutes_to_hours" }
bill_rate = { from = "rate_in_cents", as = "money_minor", currency_from = "currency" }
approved = { from = "approved", as = "bool" }
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_vendor_record_maps_to_canonical_struct(tmp_path):
    mapping = load_mapping(write(tmp_path, "sf.toml", SALESFORCE)).entity("opportunity")
    record = {
        "Id": "006000000000001AAA",
        "AccountId": "001000000000001AAA",
        "Name": "ERP rollout",
        "StageName": "Closed Won",
        "IsWon": True,
        "Amount": 125000.5,
        "CurrencyIsoCode": "gbp",
        "CloseDate": "2026-11-02",
        "Account": {"Legal_Entity__c": "PSF-UK"},
        "SystemModstamp": "2026-11-02T10:00:00.000+0000",
    }

    opportunity = msgspec.convert(mapping.to_canonical(record), Opportunity)

    assert opportunity.amount == Money(amount=Decimal("125000.5"), currency="GBP")
    assert opportunity.close_date == date(2026, 11, 2)
    assert opportunity.legal_entity == "PSF-UK"
    assert opportunity.is_won is True
    assert opportunity.updated_at == datetime(2026, 11, 2, 10, tzinfo=UTC)


def test_minor_units_and_minutes_convert_exactly(tmp_path):
    mapping = load_mapping(write(tmp_path, "k.toml", KANTATA)).entity("time_entry")
    record = {
        "id": "101",
        "workspace_id": "5",
        "user_id": "7",
        "date_performed": "2026-11-20",
        "time_in_minutes": 90,
        "rate_in_cents": 17550,
        "currency": "USD",
        "approved": True,
    }

    entry = msgspec.convert(mapping.to_canonical(record), TimeEntry)

    assert entry.hours == Decimal("1.5")
    assert entry.bill_rate == Money(amount=Decimal("175.50"), currency="USD")


def test_to_vendor_reverses_the_rules_and_skips_computed_fields(tmp_path):
    mapping = load_mapping(write(tmp_path, "sf.toml", SALESFORCE)).entity("opportunity")
    values = {
        "id": "006X",
        "account_id": "001X",
        "amount": Money.of("10.00", "EUR"),
        "close_date": date(2026, 1, 31),
        "legal_entity": "PSF-EU",
        "is_won": True,
    }

    record = mapping.to_vendor(values)

    assert record == {
        "AccountId": "001X",
        "Amount": "10.00",
        "CurrencyIsoCode": "EUR",
        "CloseDate": "2026-01-31",
        "Account": {"Legal_Entity__c": "PSF-EU"},
    }


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"Amount": "lots"},
            "salesforce Opportunity 006A (mapping v3, opportunity.amount from Amount): "
            "expected a decimal number, got 'lots'",
        ),
        (
            {"AccountId": None},
            "salesforce Opportunity 006A (mapping v3, opportunity.account_id from AccountId): "
            "is missing",
        ),
        (
            {"SystemModstamp": "2026-11-02T10:00:00"},
            "salesforce Opportunity 006A (mapping v3, opportunity.updated_at from SystemModstamp)"
            ": timestamp '2026-11-02T10:00:00' has no time zone",
        ),
    ],
)
def test_bad_vendor_value_names_vendor_version_and_field(tmp_path, change, message):
    mapping = load_mapping(write(tmp_path, "sf.toml", SALESFORCE)).entity("opportunity")
    record = {"Id": "006A", "AccountId": "001A", "Amount": 1, "CurrencyIsoCode": "USD"}
    record.update(change)

    with pytest.raises(PayloadError) as caught:
        mapping.to_canonical(record, record_id="006A")

    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            SALESFORCE.replace('as = "money"', 'as = "mony"'),
            "entities.opportunity.fields.amount.as: invalid enum value 'mony'",
        ),
        (
            SALESFORCE.replace(', currency_from = "CurrencyIsoCode"', ""),
            "entities.opportunity.fields.amount: money needs currency_from or currency",
        ),
        (SALESFORCE.replace("version = 3", 'version = "three"'), "version: expected `int`"),
        (SALESFORCE.replace('name = "Name"', 'name = { form = "Name" }'), "unknown field `form`"),
        (SALESFORCE.replace('stage = "StageName"', 'stage = "Stage..Name"'), "bad field path"),
        ("vendor = [", "invalid TOML"),
    ],
)
def test_broken_mapping_file_names_file_and_key(tmp_path, text, message):
    path = write(tmp_path, "salesforce.toml", text)

    with pytest.raises(ConfigError) as caught:
        load_mapping(path)

    assert str(caught.value).startswith(f"{path}: ")
    assert message in str(caught.value)


def test_directory_loads_by_vendor_and_refuses_a_vendor_mapped_twice(tmp_path):
    write(tmp_path, "a.toml", SALESFORCE)
    write(tmp_path, "b.toml", KANTATA)
    assert sorted(load_mappings(tmp_path)) == ["kantata", "salesforce"]

    write(tmp_path, "c.toml", SALESFORCE)
    with pytest.raises(ConfigError, match="mapped twice"):
        load_mappings(tmp_path)


def test_unknown_entity_is_a_config_error(tmp_path):
    mapping = load_mapping(write(tmp_path, "sf.toml", SALESFORCE))
    with pytest.raises(ConfigError, match="no mapping for entity 'invoice'"):
        mapping.entity("invoice")


def test_live_mappings_check_the_adapters_entities_and_swap_in_place(tmp_path):
    v3 = load_mapping(write(tmp_path, "sf.toml", SALESFORCE))
    live = LiveMappings(v3, vendor="salesforce", required=("opportunity",))
    before = live.entity("opportunity")
    v4 = load_mapping(
        write(
            tmp_path,
            "sf4.toml",
            SALESFORCE.replace("version = 3", "version = 4").replace('"Name"', '"Deal_Name__c"'),
        )
    )

    assert live.replace(v4) is True
    assert live.version == 4
    assert live.entity("opportunity").fields["name"].from_ == "Deal_Name__c"
    assert before.fields["name"].from_ == "Name"  # what a record in flight holds is intact
    assert live.replace(v4) is False  # the same file again changes nothing


def test_live_mappings_refuse_another_vendor_or_a_missing_entity(tmp_path):
    salesforce = load_mapping(write(tmp_path, "sf.toml", SALESFORCE))
    kantata = load_mapping(write(tmp_path, "k.toml", KANTATA))
    with pytest.raises(ConfigError, match="no mapping for entity 'account'") as missing:
        LiveMappings(salesforce, vendor="salesforce", required=("opportunity", "account"))
    assert missing.value.source == str(tmp_path / "sf.toml")

    live = LiveMappings(salesforce, vendor="salesforce", required=("opportunity",))
    with pytest.raises(ConfigError, match="mapping is for vendor 'kantata', not 'salesforce'"):
        live.replace(kantata)
    assert live.current is salesforce  # the refused mapping never took effect
