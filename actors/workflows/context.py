"""The run context: what a workflow's code sees of its run, and its durable steps.

``await ctx.step("name", fn, result_type=T)`` is the only way a workflow has effects:

- the step already completed in an earlier attempt → its recorded result, decoded into
  ``T``; ``fn`` is not called;
- otherwise ``fn()`` runs, its result is recorded (msgpack) under the run's lease, and
  only then does the workflow go on. A crash between the vendor's effect and the record
  runs ``fn`` again, so ``fn`` must be idempotent at the vendor: it sends
  ``ctx.idempotency_key(name)``, which is the same for every attempt and every replay.

The result is always returned decoded from the recorded bytes, so a first attempt and a
resumed one see the same value.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, NoReturn, TypeVar

import msgspec
import structlog

from actors.errors import PayloadError, PssyncError
from actors.messages import Envelope, Money
from store import Journal, RunRecord, StepRecord

from .spec import UNASSIGNED, Category

T = TypeVar("T")

log = structlog.get_logger(__name__)

_ENCODER = msgspec.msgpack.Encoder(decimal_format="string")
_KEY_ENCODER = msgspec.json.Encoder()
_OPEN_EXCEPTIONS = 1_000_000  # list_exceptions needs a limit


class WorkflowFailure(PssyncError):
    """Raised by ``ctx.fail``: a business rule says this run cannot go on by itself."""

    def __init__(
        self,
        category: Category,
        message: str,
        *,
        amount: Money | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.category = category
        self.message = message
        self.amount = amount
        self.detail = dict(detail or {})


class RunContext:
    """One attempt of one run. Built by the runner; workflows only read and call it."""

    def __init__(
        self,
        *,
        journal: Journal,
        run: RunRecord,
        events: tuple[Envelope, ...],
        steps: Mapping[str, StepRecord],
        owner: str,
        now: Callable[[], float],
        deps: Any = None,
        amount_at_risk: Money | None = None,
        exception_owners: Mapping[str, str] | None = None,
    ) -> None:
        self.journal = journal
        self.run = run
        self.events = events
        """The trigger envelopes, decoded, in journal order."""
        self.deps = deps
        """Whatever the daemon hands every run of this workflow (system mailboxes, config)."""
        self.amount_at_risk = amount_at_risk
        """Money at risk if this run fails; a workflow may set it once it knows better."""
        self.current_step: str | None = None
        """The step being executed (or None between steps), for error messages."""
        self._owner = owner
        self._exception_owners = dict(exception_owners or {})
        self._now = now
        self._completed = {
            name: record for name, record in steps.items() if record.status == "completed"
        }
        self._seen: set[str] = set()
        self.executed: list[str] = []
        """Steps this attempt actually ran (not memoised), in order."""

    @property
    def workflow(self) -> str:
        return self.run.workflow

    @property
    def key(self) -> str:
        return self.run.key

    @property
    def correlation_id(self) -> str:
        """The originating business event's correlation id: send it with every command."""
        return self.run.correlation_id

    @property
    def replay(self) -> bool:
        return self.run.replay

    @property
    def completed_steps(self) -> tuple[str, ...]:
        """Names of the steps recorded as completed so far (earlier attempts included)."""
        return tuple(sorted(self._completed))

    @property
    def trigger_ids(self) -> tuple[str, ...]:
        return tuple(envelope.id for envelope in self.events)

    def idempotency_key(self, step_name: str) -> str:
        """The vendor idempotency key of a step: from workflow, trigger event ids and step
        name only (not the run id), so a replay of the same history derives the same key
        and the vendor recognises the repeat."""
        return idempotency_key(self.workflow, self.trigger_ids, step_name)

    async def step(self, name: str, fn: Callable[[], Awaitable[T]], *, result_type: type[T]) -> T:
        """Run ``fn`` once per run (durably), or return what it returned before."""
        if not name or name.startswith("@"):
            raise ValueError(f"step name {name!r}: must be non-empty; '@' names are the engine's")
        if name in self._seen:
            raise ValueError(f"step {name!r} is used twice in one run; step names must be unique")
        self._seen.add(name)
        record = self._completed.get(name)
        if record is not None:
            log.debug("step memoised", step=name)
            return _decode(record.result, result_type, name)
        self.current_step = name
        result = await fn()
        try:
            data = _ENCODER.encode(result)
        except (msgspec.EncodeError, TypeError, OverflowError) as exc:
            raise PayloadError(f"cannot record result: {exc}", where=f"step {name}") from exc
        # With the owner: a runner that lost its lease cannot record over the new owner.
        stored = await self.journal.record_step(
            self.run.id, name, data, self._now(), owner=self._owner
        )
        self._completed[name] = stored
        self.executed.append(name)
        self.current_step = None
        log.info("step completed", step=name)
        return _decode(stored.result, result_type, name)

    def fail(
        self,
        category: Category,
        message: str,
        *,
        amount: Money | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> NoReturn:
        """Stop the run on a business rule: it parks with an exception for ``category``'s
        owner, showing ``amount`` at risk (default: the run's ``amount_at_risk``)."""
        raise WorkflowFailure(
            category, message, amount=amount or self.amount_at_risk, detail=detail
        )

    async def open_exception(
        self,
        step: str,
        *,
        category: Category,
        message: str,
        marker: tuple[str, str],
        amount: Money | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> int:
        """Open an exception without stopping the run — a finding it reports and goes past
        (a reconcile mismatch, refused entries) — and return its id.

        Once: memoised as step ``step``, and a replay (new run, no memoised steps) finds
        the open exception of this workflow whose detail holds ``marker`` (key, value)
        instead of opening another. The owner is ``category``'s, as for :meth:`fail`.
        """
        key, value = marker

        async def open_once() -> int:
            for record in await self.journal.list_exceptions(
                status="open", workflow=self.workflow, limit=_OPEN_EXCEPTIONS
            ):
                if _detail_value(record.detail, key) == value:
                    log.info("exception already open", exception_id=record.id, marker=value)
                    return record.id
            record = await self.journal.open_exception(
                workflow=self.workflow,
                category=category,
                owner=self._exception_owners.get(category, UNASSIGNED),
                message=message,
                correlation_id=self.correlation_id,
                now=self._now(),
                run_id=self.run.id,
                amount=amount.amount if amount is not None else None,
                currency=amount.currency if amount is not None else None,
                detail=msgspec.json.encode({**(detail or {}), key: value}),
            )
            log.warning("exception opened", exception_id=record.id, category=category, marker=value)
            return record.id

        return await self.step(step, open_once, result_type=int)


def _detail_value(detail: bytes, key: str) -> Any:
    try:
        decoded = msgspec.json.decode(detail) if detail else None
    except msgspec.DecodeError:
        return None
    return decoded.get(key) if isinstance(decoded, dict) else None


def idempotency_key(workflow: str, trigger_ids: tuple[str, ...], step_name: str) -> str:
    """``ps1-`` and 40 hex digits: short enough for every vendor's idempotency header."""
    digest = hashlib.sha256(_KEY_ENCODER.encode([workflow, list(trigger_ids), step_name]))
    return "ps1-" + digest.hexdigest()[:40]


def _decode(data: bytes, result_type: type[T], name: str) -> T:
    try:
        return msgspec.msgpack.decode(data, type=result_type)
    except msgspec.MsgspecError as exc:
        raise PayloadError(str(exc), where=f"recorded result of step {name}") from exc
