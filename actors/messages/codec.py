"""Encoding and decoding of messages: msgpack for the journal, JSON for the socket and logs.

Every Encoder and Decoder is built once, here, and reused (msgspec's advice; building one
costs far more than using it). Decimals encode as strings in both formats, so amounts
round-trip exactly. Aware datetimes keep their UTC offset in JSON (RFC 3339) but are stored
as msgpack timestamps in the journal, which keep the instant and decode in UTC: compare
times, never their offsets. Decode failures are raised as :class:`~actors.errors.PayloadError`
whose ``where`` names the origin and the field path (``journal at $.body.amount``);
msgspec's own exceptions never escape.
"""

from __future__ import annotations

from typing import Any

import msgspec

from actors.errors import PayloadError

from .commands import AnyCommand, Command
from .envelope import Envelope, EnvelopeHeader
from .events import AnyEvent, Event

__all__ = [
    "decode_command",
    "decode_command_json",
    "decode_envelope",
    "decode_envelope_header",
    "decode_envelope_json",
    "decode_event",
    "decode_event_json",
    "encode_command",
    "encode_command_json",
    "encode_envelope",
    "encode_envelope_json",
    "encode_event",
    "encode_event_json",
]

# decimal_format="string" is msgspec's default; spelled out because exact amounts depend on it.
_MSGPACK_ENCODER = msgspec.msgpack.Encoder(decimal_format="string")
_JSON_ENCODER = msgspec.json.Encoder(decimal_format="string")

_ENVELOPE_MSGPACK = msgspec.msgpack.Decoder(Envelope)
_ENVELOPE_JSON = msgspec.json.Decoder(Envelope)
_HEADER_MSGPACK = msgspec.msgpack.Decoder(EnvelopeHeader)
_EVENT_MSGPACK = msgspec.msgpack.Decoder(AnyEvent)
_EVENT_JSON = msgspec.json.Decoder(AnyEvent)
_COMMAND_MSGPACK = msgspec.msgpack.Decoder(AnyCommand)
_COMMAND_JSON = msgspec.json.Decoder(AnyCommand)

_PATH_MARKER = " - at `"


def _payload_error(exc: msgspec.MsgspecError, origin: str) -> PayloadError:
    """Translate a msgspec error, moving its ``$.a.b`` path into ``where``."""
    text = str(exc)
    if isinstance(exc, msgspec.ValidationError) and _PATH_MARKER in text:
        message, _, path = text.rpartition(_PATH_MARKER)
        return PayloadError(message, where=f"{origin} at {path.rstrip('`')}")
    if isinstance(exc, msgspec.ValidationError):
        return PayloadError(text, where=origin)
    return PayloadError(f"malformed payload: {text}", where=origin)


def _encode(encoder: Any, message: Any, origin: str) -> bytes:
    try:
        return encoder.encode(message)
    except (msgspec.EncodeError, TypeError, OverflowError) as exc:
        # OverflowError: an aware time whose UTC instant falls outside years 1-9999
        # (msgpack stores instants as UTC timestamps).
        raise PayloadError(f"cannot encode: {exc}", where=origin) from exc


def _decode(decoder: Any, data: bytes | bytearray | memoryview | str, origin: str) -> Any:
    try:
        return decoder.decode(data)
    except msgspec.MsgspecError as exc:
        raise _payload_error(exc, origin) from exc


# -- envelopes -----------------------------------------------------------------------------


def encode_envelope(envelope: Envelope) -> bytes:
    """Msgpack bytes of ``envelope`` for the journal.

    The bytes are decoded once before they are returned: msgspec checks constraints (aware
    times, patterns, currency codes) only when decoding, and a row the journal cannot read
    back must never be written. Raises :class:`PayloadError` for such an envelope.
    """
    data = _encode(_MSGPACK_ENCODER, envelope, "envelope being journaled")
    _decode(_ENVELOPE_MSGPACK, data, "envelope being journaled")
    return data


def decode_envelope(data: bytes | bytearray | memoryview, *, origin: str = "journal") -> Envelope:
    """An envelope from journal msgpack bytes; :class:`PayloadError` if they do not decode."""
    return _decode(_ENVELOPE_MSGPACK, data, origin)


def decode_envelope_header(
    data: bytes | bytearray | memoryview, *, origin: str = "journal"
) -> EnvelopeHeader:
    """The envelope's header fields with the body left as raw msgpack (see EnvelopeHeader)."""
    return _decode(_HEADER_MSGPACK, data, origin)


def encode_envelope_json(envelope: Envelope) -> bytes:
    """JSON bytes of ``envelope`` for the control socket and logs."""
    return _encode(_JSON_ENCODER, envelope, "envelope")


def decode_envelope_json(
    data: bytes | bytearray | memoryview | str, *, origin: str = "json"
) -> Envelope:
    """An envelope from JSON; :class:`PayloadError` if it does not decode."""
    return _decode(_ENVELOPE_JSON, data, origin)


# -- bare events ---------------------------------------------------------------------------


def encode_event(event: Event) -> bytes:
    """Msgpack bytes of one event (tagged by ``type``)."""
    return _encode(_MSGPACK_ENCODER, event, "event")


def decode_event(data: bytes | bytearray | memoryview, *, origin: str = "msgpack") -> AnyEvent:
    """An event from msgpack bytes; :class:`PayloadError` if they do not decode."""
    return _decode(_EVENT_MSGPACK, data, origin)


def encode_event_json(event: Event) -> bytes:
    """JSON bytes of one event."""
    return _encode(_JSON_ENCODER, event, "event")


def decode_event_json(
    data: bytes | bytearray | memoryview | str, *, origin: str = "json"
) -> AnyEvent:
    """An event from JSON; :class:`PayloadError` if it does not decode."""
    return _decode(_EVENT_JSON, data, origin)


# -- commands ------------------------------------------------------------------------------


def encode_command(command: Command) -> bytes:
    """Msgpack bytes of one command (tagged by ``command``), e.g. for a memoised step."""
    return _encode(_MSGPACK_ENCODER, command, "command")


def decode_command(data: bytes | bytearray | memoryview, *, origin: str = "msgpack") -> AnyCommand:
    """A command from msgpack bytes; :class:`PayloadError` if they do not decode."""
    return _decode(_COMMAND_MSGPACK, data, origin)


def encode_command_json(command: Command) -> bytes:
    """JSON bytes of one command."""
    return _encode(_JSON_ENCODER, command, "command")


def decode_command_json(
    data: bytes | bytearray | memoryview | str, *, origin: str = "json"
) -> AnyCommand:
    """A command from JSON; :class:`PayloadError` if it does not decode."""
    return _decode(_COMMAND_JSON, data, origin)
