"""The envelope: what the journal stores and the dispatcher routes, around one event.

Identity. ``id`` is derived, never random: ``uuid5(ENVELOPE_NAMESPACE, json([source,
type, object_id, version]))`` as a canonical UUID string. Re-polling the same version of
the same vendor record therefore yields the same id, and the journal's unique index drops
the duplicate. The event type is part of the name because one record version can report
two facts (a Stripe invoice that is finalized is both issued and changed status). The
JSON list keeps the parts unambiguous whatever characters they contain.

Flow. ``correlation_id`` names one business flow end to end: the first event of a flow
uses its own id, and everything caused by it (``Envelope.new(..., caused_by=parent)``)
inherits the parent's correlation id and takes the parent's id as ``causation_id``.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated

import msgspec
from msgspec import Meta, Struct

from .common import AwareDatetime, NonEmptyStr
from .events import AnyEvent, Event, event_tag

__all__ = [
    "ENVELOPE_NAMESPACE",
    "SCHEMA_VERSION",
    "Envelope",
    "EnvelopeHeader",
    "envelope_id",
]

ENVELOPE_NAMESPACE = uuid.UUID("04cfc45d-d94c-490e-b282-1144bdd32660")
"""Generated once for pssync. Changing it would give every event a new id, so re-polled
records would no longer deduplicate against an existing journal: never change it."""

SCHEMA_VERSION = 1
"""The envelope schema version written by this code; bump it when a change needs a reader
to know (a new field with a default does not)."""


SchemaVersion = Annotated[int, Meta(ge=1)]


def envelope_id(*, source: str, event_type: str, object_id: str | int, version: str | int) -> str:
    """The deterministic id of the event ``event_type`` about one version of one record.

    ``object_id`` is the vendor's record id, prefixed with its record type where the
    vendor's ids are only unique per type (Kantata: ``time_entry:123``). ``version`` is
    whatever changes when the record does: Salesforce ``SystemModstamp``, Kantata
    ``updated_at``, a Stripe event id. Integer ids and versions count as their decimal
    text, so ``123`` and ``"123"`` give the same id.
    """
    parts = [source, event_type, str(object_id), str(version)]
    if not all(parts):
        raise ValueError("envelope_id needs a non-empty source, event type, object id, version")
    name = msgspec.json.encode(parts).decode()
    return str(uuid.uuid5(ENVELOPE_NAMESPACE, name))


class Envelope(Struct, frozen=True, kw_only=True):
    """One journaled event with its identity, ordering key, flow ids and times.

    Never forbids unknown fields: a reader skips fields a newer pssync added. New fields
    must get defaults so older rows still decode.
    """

    id: NonEmptyStr
    type: NonEmptyStr
    """The body's tag, duplicated so the journal can index and filter without decoding it."""
    key: NonEmptyStr
    """The entity whose events are handled in order (``project:P-1``)."""
    correlation_id: NonEmptyStr
    causation_id: str | None = None
    """The id of the envelope whose handling produced this one; ``None`` for vendor facts."""
    source: NonEmptyStr
    """The configured system name that reported the fact (``crm``), or ``pssync``."""
    occurred_at: AwareDatetime
    """When the fact happened in the source system."""
    recorded_at: AwareDatetime
    """When pssync accepted it."""
    schema_version: SchemaVersion = 1
    body: AnyEvent

    def __post_init__(self) -> None:
        # msgspec checks Meta(tz=True) only when decoding; a naive time written to the
        # journal would make the row unreadable, so refuse it at construction too.
        for name in ("occurred_at", "recorded_at"):
            value = getattr(self, name)
            if not isinstance(value, datetime) or value.utcoffset() is None:
                raise ValueError(f"envelope {name} must be a timezone-aware datetime")
        tag = event_tag(self.body)
        if self.type != tag:
            raise ValueError(f"envelope type {self.type!r} does not match its body's tag {tag!r}")

    @classmethod
    def new(
        cls,
        event: Event,
        *,
        source: str,
        object_id: str | int,
        version: str | int,
        occurred_at: datetime,
        recorded_at: datetime | None = None,
        key: str | None = None,
        correlation_id: str | None = None,
        causation_id: str | None = None,
        caused_by: Envelope | None = None,
    ) -> Envelope:
        """Wrap ``event``, deriving what is not given.

        ``id`` comes from :func:`envelope_id`; ``key`` from ``event.ordering_key()``;
        ``correlation_id`` and ``causation_id`` from ``caused_by`` when given, else the
        correlation id is the new envelope's own id (it starts a flow); ``recorded_at``
        defaults to now (UTC).
        """
        event_type = event_tag(event)
        env_id = envelope_id(
            source=source, event_type=event_type, object_id=object_id, version=version
        )
        if caused_by is not None:
            correlation_id = correlation_id or caused_by.correlation_id
            causation_id = causation_id or caused_by.id
        return cls(
            id=env_id,
            type=event_type,
            key=key or event.ordering_key(),
            correlation_id=correlation_id or env_id,
            causation_id=causation_id,
            source=source,
            occurred_at=occurred_at,
            recorded_at=recorded_at if recorded_at is not None else datetime.now(UTC),
            schema_version=SCHEMA_VERSION,
            body=event,
        )


class EnvelopeHeader(Struct, frozen=True, kw_only=True):
    """An envelope with its body left encoded, for readers that only route or index.

    It decodes even when the body's type is one this pssync does not know (a row written
    by a newer version), so the journal and dispatcher can skip such rows gracefully.
    """

    id: str
    type: str
    key: str
    correlation_id: str
    causation_id: str | None = None
    source: str
    occurred_at: AwareDatetime
    recorded_at: AwareDatetime
    schema_version: SchemaVersion = 1
    body: msgspec.Raw
