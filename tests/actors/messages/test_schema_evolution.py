"""Old journal rows must decode; rows from a newer pssync must not break this one."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest

from actors.errors import PayloadError
from actors.messages import (
    Account,
    DealWon,
    Money,
    TimeApproved,
    UpsertCustomer,
    decode_command,
    decode_envelope,
    decode_envelope_header,
    decode_envelope_json,
    encode_command,
    encode_envelope,
)

from .old_rows import FIXTURES

FIXTURE_DIR = Path(__file__).parent / "fixtures"


def _read(name: str) -> bytes:
    return (FIXTURE_DIR / name).read_bytes()


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_fixture_files_still_hold_the_documented_rows(name):
    assert msgspec.msgpack.decode(_read(name)) == FIXTURES[name]


def test_an_older_schema_row_still_decodes_with_defaults():
    env = decode_envelope(_read("older_time_approved.msgpack"))

    assert isinstance(env.body, TimeApproved)
    assert env.schema_version == 1
    assert env.causation_id is None
    assert env.occurred_at == datetime(2026, 4, 2, 18, 0, tzinfo=UTC)
    entry = env.body.entry
    assert entry.hours == Decimal("7.50")
    assert str(entry.hours) == "7.50"
    assert entry.bill_rate == Money.of("175.00", "USD")
    assert entry.date_performed == date(2026, 4, 2)
    # Fields added after the row was written take their defaults.
    assert (entry.billable, entry.approved, entry.exported) == (True, False, False)
    assert (entry.role, entry.notes, entry.phase_id, entry.task_id) == ("", "", None, None)
    assert (entry.dimensions, entry.external_refs, entry.updated_at) == (None, (), None)


def test_an_older_deal_row_still_decodes_from_msgpack_and_json():
    from_journal = decode_envelope(_read("older_deal_won.msgpack"))
    from_log = decode_envelope_json(_read("older_deal_won.json"))

    assert from_journal == from_log
    assert isinstance(from_journal.body, DealWon)
    assert from_journal.body.opportunity.amount == Money.of("250000.00", "EUR")
    assert from_journal.body.opportunity.lines == ()
    assert from_journal.body.account.parent_id is None
    assert from_journal.occurred_at.utcoffset() == timedelta(hours=2)
    assert from_journal.occurred_at.tzinfo == timezone(timedelta(hours=2))


def test_an_older_row_re_encodes_to_a_current_row():
    env = decode_envelope(_read("older_time_approved.msgpack"))

    assert decode_envelope(encode_envelope(env)) == env


def test_a_newer_row_with_unknown_fields_decodes_on_current_code():
    env = decode_envelope(_read("newer_with_unknown_fields.msgpack"))

    assert env.schema_version == 2
    assert env.correlation_id == "flow-7"
    assert isinstance(env.body, TimeApproved)
    assert env.body.entry.hours == Decimal("1.25")
    assert env.body.entry.bill_rate == Money.of("200.00", "USD")


def test_a_newer_event_type_is_refused_clearly_but_its_header_still_decodes():
    data = _read("newer_unknown_type.msgpack")

    with pytest.raises(PayloadError, match=r"timesheet\.rejected"):
        decode_envelope(data)
    header = decode_envelope_header(data)

    assert (header.type, header.key, header.schema_version) == (
        "timesheet.rejected",
        "project:P-1",
        2,
    )


def test_an_older_upsert_customer_without_fields_still_writes_the_whole_account():
    command = decode_command(_read("older_upsert_customer.msgpack"))

    assert isinstance(command, UpsertCustomer)
    assert command.fields == ()
    assert not command.restricted
    assert all(command.writes(name) for name in ("name", "tax_id", "invoice_email", "active"))
    assert command.account.tax_id == "US-12-3456789"
    assert decode_command(encode_command(command)) == command


def test_an_upsert_customer_restricted_to_some_fields_writes_only_those():
    account = Account(id="001A", name="Globex Corp")
    command = UpsertCustomer(
        idempotency_key="k", account=account, fields=("name", "payment_terms", "invoice_email")
    )

    assert decode_command(encode_command(command)) == command
    assert command.restricted
    assert command.writes("name")
    assert command.writes("payment_terms_days")
    assert command.writes("payment_terms")
    assert command.writes("invoice_email")
    assert not command.writes("billing_contact")  # the email alone, not the phone
    assert not command.writes("tax_id")
    assert not command.writes("billing_address")
    whole_contact = UpsertCustomer(
        idempotency_key="k", account=account, fields=("billing_contact",)
    )
    assert whole_contact.writes("invoice_email")


def test_an_upsert_customer_naming_an_unknown_field_is_refused():
    with pytest.raises(ValueError, match="unknown customer fields 'nmae'"):
        UpsertCustomer(idempotency_key="k", account=Account(id="1", name="n"), fields=("nmae",))
    data = msgspec.msgpack.encode(
        {
            "command": "upsert_customer",
            "idempotency_key": "k",
            "account": {"id": "1", "name": "n"},
            "fields": ["name", "colour"],
        }
    )
    with pytest.raises(PayloadError, match="colour"):
        decode_command(data)
