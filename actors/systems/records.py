"""Envelopes as journal records."""

from __future__ import annotations

from actors.messages import Envelope, encode_envelope
from store import EventRecord


def event_record(envelope: Envelope) -> EventRecord:
    """The journal row of ``envelope``: its indexed fields plus the msgpack of the whole."""
    return EventRecord(
        id=envelope.id,
        type=envelope.type,
        key=envelope.key,
        source=envelope.source,
        correlation_id=envelope.correlation_id,
        causation_id=envelope.causation_id,
        occurred_at=envelope.occurred_at.timestamp(),
        recorded_at=envelope.recorded_at.timestamp(),
        schema_version=envelope.schema_version,
        body=encode_envelope(envelope),
    )
