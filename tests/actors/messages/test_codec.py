"""Every event and command round-trips exactly through msgpack (journal) and JSON (socket)."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import get_args

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.errors import PayloadError
from actors.messages import (
    AnyCommand,
    AnyEvent,
    Envelope,
    Money,
    TimeApproved,
    command_tag,
    decode_command,
    decode_command_json,
    decode_envelope,
    decode_envelope_header,
    decode_envelope_json,
    decode_event,
    decode_event_json,
    encode_command,
    encode_command_json,
    encode_envelope,
    encode_envelope_json,
    encode_event,
    encode_event_json,
    event_tag,
)

from .samples import COMMAND_SAMPLES, EVENT_SAMPLES, T0, TIME_ENTRY

EVENTS = [
    pytest.param(sample, id=f"{event_tag(cls)}-{i}")
    for cls, samples in EVENT_SAMPLES.items()
    for i, sample in enumerate(samples)
]
COMMANDS = [
    pytest.param(sample, id=f"{command_tag(cls)}-{i}")
    for cls, samples in COMMAND_SAMPLES.items()
    for i, sample in enumerate(samples)
]


def test_every_event_class_has_samples():
    assert set(EVENT_SAMPLES) == set(get_args(AnyEvent))


def test_every_command_class_has_samples():
    assert set(COMMAND_SAMPLES) == set(get_args(AnyCommand))


@pytest.mark.parametrize("event", EVENTS)
def test_event_round_trips_through_msgpack(event):
    data = encode_event(event)

    decoded = decode_event(data)

    assert decoded == event
    assert type(decoded) is type(event)
    # Byte equality proves Decimal scale (1.10 vs 1.1) and tz offsets survived too.
    assert encode_event(decoded) == data


@pytest.mark.parametrize("event", EVENTS)
def test_event_round_trips_through_json(event):
    data = encode_event_json(event)

    decoded = decode_event_json(data)

    assert decoded == event
    assert encode_event_json(decoded) == data


@pytest.mark.parametrize("event", EVENTS)
def test_event_round_trips_in_an_envelope(event):
    env = Envelope.new(event, source="psa", object_id="obj-1", version="v1", occurred_at=T0)

    assert decode_envelope(encode_envelope(env)) == env
    assert decode_envelope_json(encode_envelope_json(env)) == env


@pytest.mark.parametrize("command", COMMANDS)
def test_command_round_trips_through_msgpack(command):
    data = encode_command(command)

    decoded = decode_command(data)

    assert decoded == command
    assert type(decoded) is type(command)
    assert encode_command(decoded) == data


@pytest.mark.parametrize("command", COMMANDS)
def test_command_round_trips_through_json(command):
    data = encode_command_json(command)

    decoded = decode_command_json(data)

    assert decoded == command
    assert encode_command_json(decoded) == data


def test_decimals_are_strings_in_msgpack_and_json():
    event = TimeApproved(entry=TIME_ENTRY)

    as_msgpack = msgspec.msgpack.decode(encode_event(event))
    as_json = msgspec.json.decode(encode_event_json(event))

    for raw in (as_msgpack, as_json):
        assert raw["entry"]["hours"] == "7.25"
        assert raw["entry"]["bill_rate"] == {"amount": "175.00", "currency": "USD"}


def test_decimal_scale_and_tiny_fractions_survive_exactly():
    amount = Decimal("0.000000000000000000000000001")
    entry = msgspec.structs.replace(
        TIME_ENTRY, hours=Decimal("8.000"), bill_rate=Money(amount=amount, currency="USD")
    )

    decoded = decode_event(encode_event(TimeApproved(entry=entry)))

    assert str(decoded.entry.hours) == "8.000"
    assert decoded.entry.bill_rate.amount.as_tuple() == amount.as_tuple()


def test_events_carry_their_tag_in_the_type_field():
    raw = msgspec.json.decode(encode_event_json(TimeApproved(entry=TIME_ENTRY)))

    assert raw["type"] == "time.approved"


def test_commands_carry_their_tag_in_the_command_field():
    command = COMMAND_SAMPLES[next(iter(COMMAND_SAMPLES))][0]

    raw = msgspec.json.decode(encode_command_json(command))

    assert raw["command"] == command_tag(command)


# -- errors ------------------------------------------------------------------------------


def _envelope_dict() -> dict:
    env = Envelope.new(
        TimeApproved(entry=TIME_ENTRY), source="psa", object_id="te-1", version=1, occurred_at=T0
    )
    return msgspec.to_builtins(env)


def test_bad_field_becomes_payload_error_naming_the_path():
    row = _envelope_dict()
    row["body"]["entry"]["bill_rate"]["amount"] = "twelve"

    with pytest.raises(PayloadError) as caught:
        decode_envelope(msgspec.msgpack.encode(row))

    assert caught.value.where == "journal at $.body.entry.bill_rate.amount"
    assert "decimal" in caught.value.message
    assert not isinstance(caught.value, msgspec.MsgspecError)


def test_unknown_currency_is_a_payload_error_at_the_money_path():
    row = _envelope_dict()
    row["body"]["entry"]["bill_rate"]["currency"] = "XYZ"

    with pytest.raises(PayloadError, match=r"unknown ISO 4217 currency code 'XYZ'") as caught:
        decode_envelope_json(msgspec.json.encode(row), origin="control socket")

    assert caught.value.where == "control socket at $.body.entry.bill_rate"


def test_unknown_event_type_is_a_payload_error():
    row = _envelope_dict()
    row["type"] = row["body"]["type"] = "time.rejected"

    with pytest.raises(PayloadError, match=r"time\.rejected") as caught:
        decode_envelope(msgspec.msgpack.encode(row))

    assert caught.value.where == "journal at $.body.type"


def test_envelope_type_must_match_body_tag():
    row = _envelope_dict()
    row["type"] = "expense.approved"

    with pytest.raises(PayloadError, match="does not match"):
        decode_envelope(msgspec.msgpack.encode(row))


def test_naive_datetime_is_a_payload_error():
    row = _envelope_dict()
    row["occurred_at"] = "2026-03-31T17:45:12"

    with pytest.raises(PayloadError) as caught:
        decode_envelope_json(msgspec.json.encode(row))

    assert caught.value.where == "json at $.occurred_at"


def test_malformed_bytes_are_a_payload_error():
    with pytest.raises(PayloadError, match="malformed") as caught:
        decode_envelope(b"\xc1\xc1")

    assert caught.value.where == "journal"
    assert isinstance(caught.value.__cause__, msgspec.DecodeError)


def test_malformed_json_is_a_payload_error():
    with pytest.raises(PayloadError, match="malformed"):
        decode_command_json(b'{"command": ')


def test_unknown_command_is_a_payload_error():
    with pytest.raises(PayloadError, match="delete_everything"):
        decode_command_json(b'{"command": "delete_everything", "idempotency_key": "k"}')


def test_command_without_idempotency_key_is_refused():
    with pytest.raises(PayloadError, match="idempotency_key"):
        decode_command_json(b'{"command": "finalize_invoice", "invoice_id": "in_1"}')


def test_encode_envelope_refuses_a_row_it_could_not_read_back():
    # Struct constructors do not check Meta constraints; the journal encoder does.
    bad_entry = msgspec.structs.replace(TIME_ENTRY, id="")
    env = Envelope.new(
        TimeApproved(entry=bad_entry), source="psa", object_id="x", version=1, occurred_at=T0
    )

    with pytest.raises(PayloadError) as caught:
        encode_envelope(env)

    assert caught.value.where == "envelope being journaled at $.body.entry.id"


def test_journal_keeps_the_instant_and_json_keeps_the_offset():
    paris = datetime(2026, 3, 31, 19, 45, tzinfo=timezone(timedelta(hours=2)))
    env = Envelope.new(
        TimeApproved(entry=TIME_ENTRY), source="psa", object_id="x", version=1, occurred_at=paris
    )

    from_journal = decode_envelope(encode_envelope(env))
    from_json = decode_envelope_json(encode_envelope_json(env))

    assert from_journal.occurred_at == paris
    assert from_journal.occurred_at.tzinfo is UTC
    assert from_json.occurred_at.utcoffset() == timedelta(hours=2)


def test_a_time_that_overflows_utc_is_a_payload_error_not_an_overflow():
    early = datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=5)))
    env = Envelope.new(
        TimeApproved(entry=TIME_ENTRY), source="psa", object_id="x", version=1, occurred_at=early
    )

    with pytest.raises(PayloadError, match="cannot encode") as caught:
        encode_envelope(env)

    assert caught.value.where == "envelope being journaled"
    assert isinstance(caught.value.__cause__, OverflowError)


@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_leak_a_foreign_exception(data):
    for decode in (decode_envelope, decode_envelope_header, decode_event, decode_command):
        with contextlib.suppress(PayloadError):
            decode(data)
    for decode in (decode_envelope_json, decode_event_json, decode_command_json):
        with contextlib.suppress(PayloadError):
            decode(data)


@given(st.integers(min_value=-(2**63), max_value=2**63 - 1))
def test_out_of_range_msgpack_timestamps_are_payload_errors(seconds):
    row = _envelope_dict()
    row["occurred_at"] = msgspec.msgpack.Ext(-1, seconds.to_bytes(8, "big", signed=True))
    with contextlib.suppress(PayloadError):
        decode_envelope(msgspec.msgpack.encode(row))
