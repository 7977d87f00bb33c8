"""The workflow runner: one actor per workflow, executing its runs under leases.

Loop: claim up to ``width`` minus the runs in hand (``claim_runs`` never hands out a run
while an earlier run of its key is unfinished, so one key's runs execute in order and
different keys in parallel), start each claimed run in its own task, then sleep until
the next due time it knows of (a backoff it chose, a lease of another incarnation that
will expire), a wake-up (new runs, a finished run freeing a slot or its key, an operator's
retry) or the fallback poll.

Each run executes inside ``bound_contextvars(correlation_id, workflow, run_id, key)``,
with a task that renews its lease every ``lease_s / 3``. A lost lease (another claimer
took the run after this process stalled) cancels the run's execution; it is neither
completed nor failed by this runner, whose writes the store would refuse anyway.

Failure policy, applied to whatever the workflow's code raises:

- ``RetryableError`` (``ThrottledError`` too): ``fail_run`` with the configured
  exponential backoff, never sooner than the vendor's Retry-After; once ``max_attempts``
  attempts have failed, park with an exception of the workflow's category;
- ``ctx.fail(category, …)``: park with that category and amount;
- ``PermanentError``: park at once (workflow's category); ``PayloadError``: park at once
  as a ``mapping`` exception;
- anything else is a bug: park with the traceback in the exception's detail. The runner
  goes on with other runs; the daemon keeps running through a bad message.

An exception's owner comes from the governance owners by category. Parking records the
run's claim count as the ``@attempts`` bookkeeping step, so a run retried by an operator
gets a fresh ``max_attempts`` budget. A run claimed more than ``max_attempts`` times
without ever failing (its process died during it each time) is parked before it runs.
"""

from __future__ import annotations

import heapq
import math
import os
import random
import secrets
import socket
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import msgspec
import structlog
import trio

from actors.actor import Actor
from actors.errors import (
    AdapterError,
    LeaseLost,
    PayloadError,
    PermanentError,
    RetryableError,
    ThrottledError,
)
from actors.messages import Envelope, Money, decode_envelope
from store import Journal, RunRecord, StepRecord

from .context import RunContext, WorkflowFailure
from .spec import UNASSIGNED, Category, WorkflowSettings, WorkflowSpec
from .wakeup import Wakeup

log = structlog.get_logger(__name__)

ATTEMPTS_STEP = "@attempts"
"""Bookkeeping step: the run's claim count when it was last parked."""

_DETAIL_ENCODER = msgspec.json.Encoder(enc_hook=str, decimal_format="string")

Outcome = Literal["completed", "retry", "parked", "lease_lost"]


@dataclass(frozen=True, kw_only=True)
class RunOutcome:
    """How one attempt of one run ended (for metrics: ``pssync_runs_total{outcome}``)."""

    workflow: str
    run_id: int
    key: str
    correlation_id: str
    outcome: Outcome
    attempt: int
    next_attempt_at: float | None = None
    exception_id: int | None = None
    error: str | None = None


def default_owner() -> str:
    """A lease owner unique to this process incarnation: ``host:pid:random``."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


class WorkflowRunner(Actor[None]):
    """Executes the runs of one workflow; see the module docstring."""

    def __init__(
        self,
        spec: WorkflowSpec,
        journal: Journal,
        settings: WorkflowSettings,
        *,
        owners: Mapping[str, str],
        now: Callable[[], float] = time.time,
        owner: str | None = None,
        deps: Any = None,
        on_outcome: Callable[[RunOutcome], None] = lambda outcome: None,
        poll_interval_s: float = 30.0,
        rng: random.Random | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(name or f"workflow:{spec.name}", mailbox_size=0)
        self.spec = spec
        self.journal = journal
        self.settings = settings
        self.owners = dict(owners)
        self.owner = owner or default_owner()
        self.deps = deps
        self.poll_interval_s = poll_interval_s
        self.wakeup = Wakeup()
        self._now = now
        self._on_outcome = on_outcome
        self._rng = rng or random.Random()
        self._active: set[int] = set()
        self._due: list[float] = []  # wall-clock times when some run becomes claimable
        self._stop = trio.Event()

    @property
    def active(self) -> int:
        """Runs executing now."""
        return len(self._active)

    def notify(self) -> None:
        """New or released runs may be due (dispatcher, operator retry); never blocks."""
        self.wakeup.set()

    def request_stop(self) -> None:
        """Stop claiming; runs in hand finish (the supervisor cancels them on timeout)."""
        self._stop.set()
        self.wakeup.set()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        await self._learn_due_times()
        log.info("workflow runner started", workflow=self.spec.name, owner=self.owner)
        async with trio.open_nursery() as nursery:
            task_status.started()
            claim = True
            next_poll = trio.current_time() + self.poll_interval_s
            while not self._stop.is_set():
                self.heartbeat()
                if claim:
                    await self._claim(nursery)
                    next_poll = trio.current_time() + self.poll_interval_s
                # With every slot busy only a finishing run (a wake-up) can start another.
                busy = len(self._active) >= self.settings.width
                next_due = math.inf if busy else self._next_due_trio_time()
                deadline = min(next_due, next_poll)
                timeout = min(deadline, trio.current_time() + self.heartbeat_interval_s)
                woken = await self.wakeup.wait(max(timeout - trio.current_time(), 0))
                claim = woken or trio.current_time() >= deadline
        log.info("workflow runner stopped", workflow=self.spec.name)

    # --- claiming --------------------------------------------------------------------

    async def _learn_due_times(self) -> None:
        """Due times of runs this incarnation did not schedule: backoffs chosen before a
        restart, and leases of a dead incarnation (claimable once they expire)."""
        for status in ("pending", "retry_wait", "running"):
            for run in await self.journal.list_runs(
                status=status, workflow=self.spec.name, limit=100_000
            ):
                heapq.heappush(self._due, run.next_attempt_at)

    def _next_due_trio_time(self) -> float:
        if not self._due:
            return math.inf
        return trio.current_time() + max(self._due[0] - self._now(), 0.0)

    async def _claim(self, nursery: trio.Nursery) -> None:
        # Past due times are spent even when every slot is busy: the run that frees a
        # slot wakes this loop, and a stale entry would make it spin.
        now = self._now()
        while self._due and self._due[0] <= now:
            heapq.heappop(self._due)
        free = self.settings.width - len(self._active)
        if free <= 0:
            return
        runs = await self.journal.claim_runs(
            self.owner, now, self.settings.lease_s, free, self.spec.name
        )
        for run in runs:
            self._active.add(run.id)
            nursery.start_soon(self._execute, run)

    # --- one run ---------------------------------------------------------------------

    async def _execute(self, run: RunRecord) -> None:
        try:
            with structlog.contextvars.bound_contextvars(
                correlation_id=run.correlation_id,
                workflow=run.workflow,
                run_id=run.id,
                key=run.key,
            ):
                outcome: RunOutcome | None = None
                with trio.CancelScope() as lease_scope:
                    async with trio.open_nursery() as nursery:
                        nursery.start_soon(self._keep_lease, run.id, lease_scope)
                        outcome = await self._attempt(run)
                        nursery.cancel_scope.cancel()
                if outcome is None:
                    outcome = self._outcome(run, "lease_lost", run.attempts, error="lease lost")
                self._on_outcome(outcome)
        finally:
            self._active.discard(run.id)
            # A slot is free, and the key's next run may now be claimable.
            self.wakeup.set()

    async def _keep_lease(self, run_id: int, scope: trio.CancelScope) -> None:
        while True:
            await trio.sleep(self.settings.lease_s / 3)
            try:
                await self.journal.renew_lease(
                    run_id, self.owner, self._now(), self.settings.lease_s
                )
            except LeaseLost as exc:
                log.warning("lease lost, abandoning the run", error=str(exc))
                scope.cancel()
                return

    async def _attempt(self, run: RunRecord) -> RunOutcome:
        ctx: RunContext | None = None
        attempt = run.attempts
        try:
            steps = await self.journal.get_steps(run.id)
            attempt = run.attempts - _attempts_base(steps)
            events = await self._trigger_envelopes(run)
            ctx = RunContext(
                journal=self.journal,
                run=run,
                events=events,
                steps=steps,
                owner=self.owner,
                now=self._now,
                deps=self.deps,
                amount_at_risk=self._amount_at_risk(events),
                exception_owners=self.owners,
            )
            if attempt > self.settings.max_attempts:
                return await self._park(
                    run,
                    ctx,
                    attempt,
                    category=self.spec.category,
                    message=(
                        f"claimed {attempt} times without finishing (max_attempts"
                        f" {self.settings.max_attempts}): the process may die while running it"
                    ),
                    error=None,
                )
            log.info("run started", attempt=attempt, replay=run.replay, steps_done=len(steps))
            await self.spec.run(ctx)
            await self.journal.complete_run(run.id, self.owner, self._now())
        except Exception as exc:
            try:
                return await self._on_error(run, ctx, attempt, exc)
            except LeaseLost as lost:
                log.warning("lease lost while recording the failure", error=str(lost))
                return self._outcome(run, "lease_lost", attempt, error=str(lost))
        log.info("run completed", attempt=attempt)
        return self._outcome(run, "completed", attempt)

    async def _trigger_envelopes(self, run: RunRecord) -> tuple[Envelope, ...]:
        records = await self.journal.get_events_by_seq(run.trigger_seqs)
        if len(records) != len(run.trigger_seqs):
            missing = sorted(set(run.trigger_seqs) - {record.seq for record in records})
            raise PayloadError(f"trigger events {missing} are not in the journal (pruned?)")
        return tuple(
            decode_envelope(record.body, origin=f"journal seq {record.seq}") for record in records
        )

    def _amount_at_risk(self, events: tuple[Envelope, ...]) -> Money | None:
        if self.spec.amount_at_risk is None:
            return None
        try:
            return self.spec.amount_at_risk(events)
        except Exception as exc:  # an estimate must never stop the run itself
            log.warning("amount at risk could not be computed", error=repr(exc))
            return None

    # --- failure policy --------------------------------------------------------------

    async def _on_error(
        self, run: RunRecord, ctx: RunContext | None, attempt: int, exc: Exception
    ) -> RunOutcome:
        leaves = _leaves(exc)
        if any(isinstance(leaf, LeaseLost) for leaf in leaves):
            log.warning("lease lost, run abandoned", error=_describe(exc))
            return self._outcome(run, "lease_lost", attempt, error=_describe(exc))
        step = ctx.current_step if ctx is not None else None
        where = f"step {step!r}" if step else "run"
        if isinstance(exc, WorkflowFailure):
            return await self._park(
                run,
                ctx,
                attempt,
                category=exc.category,
                message=exc.message,
                error=exc,
                amount=exc.amount,
                extra=exc.detail,
            )
        if any(isinstance(leaf, PayloadError) for leaf in leaves):
            return await self._park(
                run,
                ctx,
                attempt,
                category="mapping",
                message=f"{where}: {_describe(exc)}",
                error=exc,
            )
        if any(isinstance(leaf, PermanentError) for leaf in leaves):
            return await self._park(
                run,
                ctx,
                attempt,
                category=self.spec.category,
                message=f"{where}: {_describe(exc)}",
                error=exc,
            )
        if all(isinstance(leaf, RetryableError) for leaf in leaves):
            if attempt < self.settings.max_attempts:
                return await self._retry(run, attempt, exc, where)
            return await self._park(
                run,
                ctx,
                attempt,
                category=self.spec.category,
                message=f"gave up after {attempt} attempts: {where}: {_describe(exc)}",
                error=exc,
            )
        log.error("workflow code failed unexpectedly", exc_info=exc)
        return await self._park(
            run,
            ctx,
            attempt,
            category=self.spec.category,
            message=f"unexpected error in {where}: {_describe(exc)}",
            error=exc,
            with_traceback=True,
        )

    async def _retry(self, run: RunRecord, attempt: int, exc: Exception, where: str) -> RunOutcome:
        retry_afters = [
            leaf.retry_after_s
            for leaf in _leaves(exc)
            if isinstance(leaf, ThrottledError) and leaf.retry_after_s is not None
        ]
        delay = self.settings.backoff.delay_s(
            attempt, retry_after_s=max(retry_afters, default=None), rng=self._rng
        )
        now = self._now()
        error = f"{where}: {_describe(exc)}"
        await self.journal.fail_run(run.id, self.owner, now, now + delay, error)
        heapq.heappush(self._due, now + delay)
        log.warning("run failed, will retry", attempt=attempt, delay_s=delay, error=error)
        return self._outcome(run, "retry", attempt, next_attempt_at=now + delay, error=error)

    async def _park(
        self,
        run: RunRecord,
        ctx: RunContext | None,
        attempt: int,
        *,
        category: Category,
        message: str,
        error: Exception | None,
        amount: Money | None = None,
        extra: Mapping[str, Any] | None = None,
        with_traceback: bool = False,
    ) -> RunOutcome:
        if amount is None and ctx is not None:
            amount = ctx.amount_at_risk
        owner = self.owners.get(category, UNASSIGNED)
        detail = self._detail(run, ctx, attempt, error, extra, with_traceback)
        await self.journal.record_step(
            run.id,
            ATTEMPTS_STEP,
            str(run.attempts).encode(),
            self._now(),
            status="failed",
            owner=self.owner,
        )
        record = await self.journal.park_run(
            run.id,
            self.owner,
            self._now(),
            category=category,
            exception_owner=owner,
            message=message,
            amount=None if amount is None else amount.amount,
            currency=None if amount is None else amount.currency,
            detail=detail,
        )
        log.warning(
            "run parked on an exception",
            exception_id=record.id,
            category=category,
            owner=owner,
            amount=None if amount is None else str(amount),
            error=message,
        )
        return self._outcome(run, "parked", attempt, exception_id=record.id, error=message)

    def _detail(
        self,
        run: RunRecord,
        ctx: RunContext | None,
        attempt: int,
        error: Exception | None,
        extra: Mapping[str, Any] | None,
        with_traceback: bool,
    ) -> bytes:
        """The exception's full context, as JSON for the control socket."""
        detail: dict[str, Any] = {
            "workflow": run.workflow,
            "run_id": run.id,
            "key": run.key,
            "correlation_id": run.correlation_id,
            "replay": run.replay,
            "attempt": attempt,
            "trigger_seqs": list(run.trigger_seqs),
        }
        if ctx is not None:
            detail["trigger_ids"] = list(ctx.trigger_ids)
            detail["step"] = ctx.current_step
            detail["completed_steps"] = list(ctx.completed_steps)
        if error is not None:
            detail["error_type"] = type(error).__name__
            detail["error"] = _describe(error)
            if isinstance(error, AdapterError):
                detail["system"] = error.system
                detail["status"] = error.status
                detail["code"] = error.code
        if with_traceback and error is not None:
            detail["traceback"] = traceback.format_exception(error, limit=20)
        if extra:
            detail["detail"] = dict(extra)
        return _DETAIL_ENCODER.encode(detail)

    def _outcome(self, run: RunRecord, outcome: Outcome, attempt: int, **kwargs: Any) -> RunOutcome:
        return RunOutcome(
            workflow=run.workflow,
            run_id=run.id,
            key=run.key,
            correlation_id=run.correlation_id,
            outcome=outcome,
            attempt=attempt,
            **kwargs,
        )


def _attempts_base(steps: Mapping[str, StepRecord]) -> int:
    record = steps.get(ATTEMPTS_STEP)
    return int(record.result) if record is not None else 0


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in _leaves(inner)]
    return [exc]


def _describe(exc: BaseException) -> str:
    return "; ".join(f"{type(leaf).__name__}: {leaf}" for leaf in _leaves(exc))
