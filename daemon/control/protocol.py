"""The control socket's wire protocol: newline-delimited JSON, one request per line.

A request names its operation in ``op``; the arguments are fields beside it::

    {"v": 1, "id": 7, "op": "exceptions.list", "workflow": "deal_to_project", "limit": 20}

and is answered, in order, on the same connection with::

    {"id": 7, "ok": true, "result": …}
    {"id": 7, "ok": false, "error": {"code": "not_found", "message": "…"}}

Requests are a msgspec tagged union on ``op`` (one Struct per operation), decoded once
by a module-level decoder. They forbid unknown fields, unlike journal records: a request
is a command, and an argument the daemon does not understand (a typo, or a filter a newer
CLI added) must be refused rather than silently ignored — an ignored filter on
``exceptions resolve`` would act on the wrong rows. ``v`` is the protocol version.

Error codes (``error.code``), and the CLI exit status each maps to:

=================== ========================================================== ====
``bad_request``     invalid JSON, wrong type, missing or unknown argument       2
``unknown_op``      ``op`` names no operation                                   2
``unsupported``     a protocol version this daemon does not speak               2
``too_long``        the line exceeds the limit; the connection is then closed   2
``forbidden``       a mutating operation from a peer not allowed to mutate      4
``not_found``       no such run, exception, system or workflow                  1
``conflict``        the object is not in a state that allows the operation      1
``unavailable``     the component that serves it is not running (yet)           1
``invalid_config``  reload refused: the new configuration is invalid            1
``busy``            too many connections                                        1
``failed``          the operation ran and failed (or an internal error)         1
=================== ========================================================== ====
"""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar, Literal

import msgspec
from msgspec import Meta

from actors.errors import ControlError

PROTOCOL_VERSION = 1

# A generous bound for one request (the largest real one is a few hundred bytes): enough
# for any argument an operator types, small enough that a runaway client cannot make the
# daemon buffer megabytes per connection.
MAX_LINE_BYTES = 1 << 20

RequestId = int | str | None
Limit = Annotated[int, Meta(ge=1, le=10_000)]
Id = Annotated[int, Meta(ge=1)]
Text = Annotated[str, Meta(min_length=1, max_length=10_000)]


class Request(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, tag_field="op"
):
    """Base of every request; subclasses are the operations."""

    v: int = PROTOCOL_VERSION
    id: RequestId = None
    #: Mutating operations are allowed only to privileged peers and always logged.
    mutating: ClassVar[bool] = False

    @property
    def op(self) -> str:
        return str(self.__struct_config__.tag)


class Mutation(Request, frozen=True, kw_only=True):
    """Base of the operations that change something."""

    mutating: ClassVar[bool] = True


# --------------------------------------------------------------------- daemon and actors


class Status(Request, frozen=True, kw_only=True, tag="status"):
    """Uptime, version, systems, workflows, backlog, open exceptions, journal size."""


class Actors(Request, frozen=True, kw_only=True, tag="actors"):
    """Every actor of the supervision tree: state, restarts, last heartbeat."""


Target = Literal["system", "workflow"]


class Pause(Mutation, frozen=True, kw_only=True, tag="pause"):
    """Stop a system (polling) or a workflow (starting runs); in-flight work finishes."""

    name: Text
    #: Needed only when a system and a workflow share ``name``.
    kind: Target | None = None


class Resume(Mutation, frozen=True, kw_only=True, tag="resume"):
    """Undo :class:`Pause`."""

    name: Text
    kind: Target | None = None


class Drain(Mutation, frozen=True, kw_only=True, tag="drain"):
    """Pause everything, let in-flight work finish, then stop the daemon (exit 0)."""


class Reload(Mutation, frozen=True, kw_only=True, tag="reload"):
    """Re-read the configuration and mapping files; refused (old ones kept) if invalid."""


class Limits(Request, frozen=True, kw_only=True, tag="limits"):
    """Each governor's rate, tokens, in-flight requests, quota used and pauses."""

    system: str | None = None


# ---------------------------------------------------------------------- runs, exceptions


class RunsList(Request, frozen=True, kw_only=True, tag="runs.list"):
    status: str | None = None
    workflow: str | None = None
    key: str | None = None
    limit: Limit = 100


class RunsShow(Request, frozen=True, kw_only=True, tag="runs.show"):
    run_id: Id


ExceptionStatus = Literal["open", "resolved", "retry", "all"]


class ExceptionsList(Request, frozen=True, kw_only=True, tag="exceptions.list"):
    status: ExceptionStatus = "open"
    workflow: str | None = None
    category: str | None = None
    owner: str | None = None
    #: Only exceptions opened at least this many seconds ago.
    older_than_s: Annotated[float, Meta(ge=0)] | None = None
    limit: Limit = 100


class ExceptionsShow(Request, frozen=True, kw_only=True, tag="exceptions.show"):
    exception_id: Id


class ExceptionsRetry(Mutation, frozen=True, kw_only=True, tag="exceptions.retry"):
    exception_id: Id
    note: Annotated[str, Meta(max_length=10_000)] = ""


class ExceptionsResolve(Mutation, frozen=True, kw_only=True, tag="exceptions.resolve"):
    exception_id: Id
    resolution: Text


class ExceptionsAssign(Mutation, frozen=True, kw_only=True, tag="exceptions.assign"):
    exception_id: Id
    owner: Text


# ------------------------------------------------------------- workflow-layer operations


class Reconcile(Mutation, frozen=True, kw_only=True, tag="reconcile"):
    """Run the reconcile workflow now, optionally for one project key and period."""

    key: str | None = None
    period: str | None = None


class ClosePeriod(Mutation, frozen=True, kw_only=True, tag="close_period"):
    """Run the T&M month-end close (workflow tm_close) now for one month, ``YYYY-MM``;
    without ``period``, the newest month past its close. A month not yet ended is refused."""

    period: str | None = None


class Replay(Mutation, frozen=True, kw_only=True, tag="replay"):
    """Re-run a workflow over a seq range, a time range (epoch seconds) or one key."""

    workflow: Text
    from_seq: Annotated[int, Meta(ge=1)] | None = None
    to_seq: Annotated[int, Meta(ge=1)] | None = None
    since: float | None = None
    until: float | None = None
    key: str | None = None
    dry_run: bool = False


# ----------------------------------------------------------------------------- journal


class JournalStats(Request, frozen=True, kw_only=True, tag="journal.stats"):
    pass


class JournalVerify(Request, frozen=True, kw_only=True, tag="journal.verify"):
    pass


class JournalBackup(Mutation, frozen=True, kw_only=True, tag="journal.backup"):
    """Online backup to ``destination`` (absolute; must not exist); default: backup_dir."""

    destination: str | None = None


AnyRequest = (
    Status
    | Actors
    | Pause
    | Resume
    | Drain
    | Reload
    | Limits
    | RunsList
    | RunsShow
    | ExceptionsList
    | ExceptionsShow
    | ExceptionsRetry
    | ExceptionsResolve
    | ExceptionsAssign
    | Reconcile
    | ClosePeriod
    | Replay
    | JournalStats
    | JournalVerify
    | JournalBackup
)

OPERATIONS: tuple[str, ...] = tuple(
    cls.__struct_config__.tag  # type: ignore[misc]
    for cls in AnyRequest.__args__  # type: ignore[attr-defined]
)


class _Envelope(msgspec.Struct):
    """Just the id, read leniently so that even a refused request is answered by id."""

    id: RequestId = None


class RequestError(ControlError):
    """A line that is not a valid request; ``request_id`` is its id if one was readable."""

    def __init__(self, code: str, message: str, request_id: RequestId = None) -> None:
        super().__init__(code, message)
        self.request_id = request_id


_decoder = msgspec.json.Decoder(AnyRequest)
_envelope = msgspec.json.Decoder(_Envelope)
_encoder = msgspec.json.Encoder(enc_hook=str)
_AT = re.compile(r"^(.*) - at `\$\.?([^`]*)`$")


def decode_request(line: bytes) -> AnyRequest:
    """The request on ``line``; raises :class:`RequestError` naming what is wrong."""
    try:
        request = _decoder.decode(line)
    except msgspec.DecodeError as exc:  # ValidationError is a subclass: checked first below
        if isinstance(exc, msgspec.ValidationError):
            raise _validation_error(str(exc), _request_id(line)) from None
        raise RequestError("bad_request", f"invalid JSON: {_strip(str(exc))}") from None
    if request.v != PROTOCOL_VERSION:
        raise RequestError(
            "unsupported",
            f"protocol version {request.v} is not supported (this daemon speaks "
            f"v{PROTOCOL_VERSION})",
            request.id,
        )
    return request


def encode_request(op: str, request_id: RequestId = None, **arguments: Any) -> bytes:
    """One request line (with its newline), for clients."""
    body = {"v": PROTOCOL_VERSION, "id": request_id, "op": op}
    body.update({name: value for name, value in arguments.items() if value is not None})
    return _encoder.encode(body) + b"\n"


def encode_result(request_id: RequestId, result: Any) -> bytes:
    """A success line. Raises TypeError/ValueError if ``result`` cannot be encoded."""
    return _encoder.encode({"id": request_id, "ok": True, "result": result}) + b"\n"


def encode_error(request_id: RequestId, code: str, message: str) -> bytes:
    """An error line."""
    error = {"code": code, "message": message}
    return _encoder.encode({"id": request_id, "ok": False, "error": error}) + b"\n"


def _request_id(line: bytes) -> RequestId:
    try:
        return _envelope.decode(line).id
    except msgspec.DecodeError:
        return None


def _validation_error(text: str, request_id: RequestId) -> RequestError:
    match = _AT.match(text)
    message, path = (match.group(1), match.group(2)) if match else (text, "")
    if path == "op" and message.startswith("Invalid value"):
        return RequestError(
            "unknown_op",
            f"unknown operation {message.removeprefix('Invalid value ')}; known: "
            + ", ".join(OPERATIONS),
            request_id,
        )
    if message == "Object missing required field `op`":
        return RequestError("bad_request", "missing field `op` (the operation)", request_id)
    where = f"{path}: " if path else ""
    return RequestError("bad_request", f"{where}{message[:1].lower()}{message[1:]}", request_id)


def _strip(text: str) -> str:
    return text.removeprefix("JSON is malformed: ")
