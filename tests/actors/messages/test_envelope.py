"""The envelope: deterministic ids for deduplication, flow ids, keys, times."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import msgspec
import pytest
from hypothesis import given

from actors.messages import (
    ENVELOPE_NAMESPACE,
    SCHEMA_VERSION,
    DealWon,
    Envelope,
    InvoiceStatus,
    InvoiceStatusChanged,
    ProjectActivated,
    TimeApproved,
    decode_envelope,
    decode_envelope_header,
    decode_envelope_json,
    decode_event,
    encode_envelope,
    encode_envelope_json,
    envelope_id,
)

from .samples import EVENT_SAMPLES, PROJECT, T0, TIME_ENTRY
from .strategies import envelopes

TIME_APPROVED = TimeApproved(entry=TIME_ENTRY)


def _new(event=TIME_APPROVED, **overrides) -> Envelope:
    kwargs = {"source": "psa", "object_id": "time_entry:991", "version": "v1", "occurred_at": T0}
    return Envelope.new(event, **(kwargs | overrides))


def test_envelope_ids_are_frozen():
    # Changing the derivation would break deduplication against existing journals.
    assert uuid.UUID("04cfc45d-d94c-490e-b282-1144bdd32660") == ENVELOPE_NAMESPACE
    assert (
        envelope_id(
            source="psa",
            event_type="time.approved",
            object_id="time_entry:991",
            version="2026-04-02T18:00:00Z",
        )
        == "9128ad76-0cf3-5945-a411-87b0ca09d1d2"
    )
    assert (
        envelope_id(source="crm", event_type="deal.won", object_id="006A", version=3)
        == "6c223ce8-686a-5c6e-a807-5259bc43da25"
    )


def test_repolling_the_same_version_gives_the_same_id():
    first = _new(recorded_at=T0)
    again = _new(recorded_at=datetime(2026, 4, 1, tzinfo=UTC))

    assert first.id == again.id
    assert first.correlation_id == again.correlation_id


@pytest.mark.parametrize(
    "change",
    [{"source": "erp"}, {"object_id": "time_entry:992"}, {"version": "v2"}],
)
def test_a_different_source_object_or_version_gives_a_different_id(change):
    assert _new(**change).id != _new().id


def test_two_facts_about_one_record_version_get_different_ids():
    status = InvoiceStatusChanged(invoice_id="in_1", status=InvoiceStatus.OPEN)
    issued = EVENT_SAMPLES[next(c for c in EVENT_SAMPLES if c.__name__ == "InvoiceIssued")][0]

    assert _new(status, object_id="in_1").id != _new(issued, object_id="in_1").id


def test_id_parts_cannot_run_into_each_other():
    a = envelope_id(source="ps", event_type="time.approved", object_id="a:1", version="1")
    b = envelope_id(source="ps", event_type="time.approved", object_id="a", version=":11")
    assert a != b


def test_int_and_str_versions_agree():
    assert _new(version=7).id == _new(version="7").id


def test_envelope_id_refuses_empty_parts():
    with pytest.raises(ValueError, match="non-empty"):
        envelope_id(source="psa", event_type="time.approved", object_id="", version=1)


def test_new_derives_type_key_and_schema_version():
    env = _new()

    assert env.type == "time.approved"
    assert env.key == "project:P-1"
    assert env.schema_version == SCHEMA_VERSION
    assert env.body is TIME_APPROVED
    assert env.source == "psa"
    assert env.occurred_at == T0


def test_first_event_of_a_flow_is_its_own_correlation():
    env = _new()

    assert env.correlation_id == env.id
    assert env.causation_id is None


def test_caused_by_keeps_the_flow_and_records_the_cause():
    deal = Envelope.new(
        EVENT_SAMPLES[DealWon][0], source="crm", object_id="006A", version=3, occurred_at=T0
    )

    activated = Envelope.new(
        ProjectActivated(project=PROJECT),
        source="pssync",
        object_id="project:P-1",
        version=1,
        occurred_at=T0,
        caused_by=deal,
    )

    assert activated.correlation_id == deal.id
    assert activated.causation_id == deal.id
    assert activated.key == "project:P-1"


def test_explicit_ids_and_key_win():
    env = _new(key="project:OTHER", correlation_id="flow-1", causation_id="cause-1")

    assert (env.key, env.correlation_id, env.causation_id) == (
        "project:OTHER",
        "flow-1",
        "cause-1",
    )


def test_recorded_at_defaults_to_now_in_utc():
    before = datetime.now(UTC)
    env = _new()
    assert before <= env.recorded_at <= datetime.now(UTC)
    assert env.recorded_at.tzinfo is UTC


def test_naive_times_are_refused_at_construction():
    with pytest.raises(ValueError, match="occurred_at must be a timezone-aware"):
        _new(occurred_at=datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="recorded_at must be a timezone-aware"):
        _new(recorded_at=datetime(2026, 1, 1))


def test_type_must_match_the_body():
    env = _new()
    with pytest.raises(ValueError, match="does not match"):
        msgspec.structs.replace(env, type="deal.won")


def test_envelopes_are_immutable():
    env = _new()
    with pytest.raises(AttributeError):
        env.key = "project:X"


def test_header_decodes_without_decoding_the_body():
    env = _new()

    header = decode_envelope_header(encode_envelope(env))

    assert (header.id, header.type, header.key, header.source) == (
        env.id,
        env.type,
        env.key,
        env.source,
    )
    assert decode_event(header.body) == env.body


@given(envelopes())
def test_envelopes_round_trip_through_msgpack_and_json(env):
    data = encode_envelope(env)
    assert decode_envelope(data) == env
    assert encode_envelope(decode_envelope(data)) == data
    assert decode_envelope_json(encode_envelope_json(env)) == env


def test_int_and_str_object_ids_agree():
    assert _new(object_id=991).id == _new(object_id="991").id
