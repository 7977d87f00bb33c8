"""The supervisor: starts its children in order and restarts them by a written policy.

The restart policy, in full:

- **Restart type** (``ChildSpec.restart``), applied when a child's ``run`` ends:

  - ``permanent``: always restarted. A permanent child is meant to serve until asked to
    stop, so a normal return is as unexpected as a crash: it is restarted and counts
    toward the intensity like one.
  - ``transient``: restarted only after an abnormal exit (an exception). A normal return
    leaves it ``stopped``.
  - ``temporary``: never restarted. It ends ``failed`` or ``stopped`` and stays so.

- **Strategy** (``RestartPolicy.strategy``):

  - ``one_for_one``: only the child that ended is restarted.
  - ``one_for_all``: the siblings are cancelled in reverse start order, then every
    non-temporary child is started again in start order (temporary siblings stay down).

- **Intensity**: at most ``max_restarts`` restarts within ``period_s`` seconds. The
  restart that would exceed it is not made: the supervisor cancels all its children and
  raises :class:`ActorFailed` to its parent, chained (``__cause__``) to the child's last
  error. A temporary child's exit never counts.

- **Backoff**: restart number ``n`` (counting restarts still inside the intensity window
  before this one: of that child for one-for-one, of the whole group for one-for-all)
  waits ``min(backoff_max_s, backoff_min_s * backoff_factor ** n)`` first. A quiet spell
  of ``period_s`` resets it to ``backoff_min_s``. All on trio's clock.

- **Wedged children**: a child that misses its heartbeat deadline is reported not alive
  (see :mod:`actors.health`). With ``ChildSpec.restart_when_wedged`` the supervisor also
  cancels it and treats that as an abnormal exit, checked every ``heartbeat_interval_s``.

- **Drain**: ``request_stop()`` (closing the supervisor's mailbox) stops the children in
  reverse start order: each gets ``request_stop()`` and ``shutdown_timeout_s`` to finish,
  then is cancelled. Pending restarts are dropped. The supervisor then returns normally.

- **Cancellation** from outside cancels every child; nothing is restarted. Only
  ``Exception`` is handled as a child failure (an ``ExceptionGroup`` of them included);
  ``trio.Cancelled``, ``KeyboardInterrupt`` and other ``BaseException`` pass through.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, assert_never

import structlog
import trio

from .actor import DEFAULT_HEARTBEAT_INTERVAL_S, DEFAULT_HEARTBEAT_TIMEOUT_S, Actor
from .ask import Reply
from .errors import ActorError, ActorFailed

log = structlog.get_logger(__name__)


class Restart(enum.StrEnum):
    """When a child is restarted."""

    PERMANENT = "permanent"
    TRANSIENT = "transient"
    TEMPORARY = "temporary"


class Strategy(enum.StrEnum):
    """Which children a failure restarts."""

    ONE_FOR_ONE = "one_for_one"
    ONE_FOR_ALL = "one_for_all"


class ChildState(enum.StrEnum):
    STARTING = "starting"
    RUNNING = "running"
    RESTARTING = "restarting"
    STOPPED = "stopped"
    FAILED = "failed"


@dataclass(frozen=True, kw_only=True)
class ChildSpec:
    """How to start one child: ``factory`` makes a fresh actor for every start."""

    name: str
    factory: Callable[[], Actor[Any]]
    restart: Restart = Restart.PERMANENT
    #: Counted by the health view: the watchdog is fed only while required actors live.
    required: bool = True
    #: Drain: how long the child may take to finish after ``request_stop()``.
    shutdown_timeout_s: float = 5.0
    #: Cancel and restart the child when it misses its heartbeat deadline.
    restart_when_wedged: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "restart", Restart(self.restart))  # accept "transient"


@dataclass(frozen=True, kw_only=True)
class RestartPolicy:
    strategy: Strategy = Strategy.ONE_FOR_ONE
    max_restarts: int = 3
    period_s: float = 5.0
    backoff_min_s: float = 0.1
    backoff_max_s: float = 10.0
    backoff_factor: float = 2.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "strategy", Strategy(self.strategy))  # accept "one_for_all"
        if self.max_restarts < 0 or self.period_s <= 0:
            raise ValueError("max_restarts must be >= 0 and period_s > 0")
        if not 0 <= self.backoff_min_s <= self.backoff_max_s or self.backoff_factor < 1:
            raise ValueError("need 0 <= backoff_min_s <= backoff_max_s and backoff_factor >= 1")

    def backoff_s(self, recent_restarts: int) -> float:
        """The wait before a restart preceded by ``recent_restarts`` in the window."""
        return min(self.backoff_max_s, self.backoff_min_s * self.backoff_factor**recent_restarts)


@dataclass(frozen=True, kw_only=True)
class ChildStatus:
    """What operators see of one child (``pssync actors``); times are trio times."""

    name: str
    state: ChildState
    required: bool
    restarts: int
    last_error: str | None
    started_at: float | None
    last_heartbeat: float | None
    #: Running and heartbeating within its deadline (for a supervisor: itself, not its
    #: children, which are listed in ``children``; the health view walks them).
    alive: bool
    #: The grandchildren, when this child is itself a supervisor.
    children: tuple[ChildStatus, ...] = ()


@dataclass(frozen=True)
class GetStatus:
    """Sent by the control server (via ``ask``) to read a supervisor's children."""

    reply: Reply[tuple[ChildStatus, ...]]


SupervisorRequest = GetStatus


def describe(error: BaseException) -> str:
    """One line for an error, flattening exception groups."""
    if isinstance(error, BaseExceptionGroup):
        return "; ".join(describe(inner) for inner in error.exceptions)
    return f"{type(error).__name__}: {error}"


class _Child:
    """The supervisor's bookkeeping for one child spec."""

    def __init__(self, spec: ChildSpec) -> None:
        self.spec = spec
        self.state = ChildState.STOPPED
        self.actor: Actor[Any] | None = None
        self.restarts = 0
        self.last_error: str | None = None
        self.started_at: float | None = None
        # Each start gets a new number; an exit report for an older one is stale
        # (the supervisor ended that incarnation on purpose).
        self.incarnation = 0
        self.scope: trio.CancelScope | None = None
        self.done: trio.Event | None = None
        self.pending_restart: trio.CancelScope | None = None
        self.kill_reason: ActorError | None = None
        self.restart_times: deque[float] = deque()

    def is_up(self) -> bool:
        return self.state in (ChildState.STARTING, ChildState.RUNNING)

    def status(self) -> ChildStatus:
        actor = self.actor
        alive = self.state is ChildState.RUNNING and actor is not None and not actor.is_wedged()
        return ChildStatus(
            name=self.spec.name,
            state=self.state,
            required=self.spec.required,
            restarts=self.restarts,
            last_error=self.last_error,
            started_at=self.started_at,
            last_heartbeat=actor.last_heartbeat if actor is not None else None,
            alive=alive,
            children=actor.status() if isinstance(actor, Supervisor) else (),
        )


@dataclass(frozen=True)
class _Exited:
    child: _Child
    incarnation: int
    error: Exception | None


@dataclass(frozen=True)
class _DrainRequested:
    pass


class _StartSignal:
    """Stands in for the parent's task_status so the supervisor sees a child become ready."""

    def __init__(self, task_status: trio.TaskStatus[None], on_started: Callable[[], None]):
        self._task_status = task_status
        self._on_started = on_started
        self.called = False

    def started(self, value: object = None) -> None:
        self.called = True
        self._on_started()
        self._task_status.started()


class Supervisor(Actor[SupervisorRequest]):
    """An actor that runs child actors and restarts them by its :class:`RestartPolicy`."""

    def __init__(
        self,
        name: str,
        children: Sequence[ChildSpec],
        *,
        policy: RestartPolicy | None = None,
        heartbeat_interval_s: float = DEFAULT_HEARTBEAT_INTERVAL_S,
        heartbeat_timeout_s: float = DEFAULT_HEARTBEAT_TIMEOUT_S,
    ) -> None:
        # Only status asks and the drain (closing it) arrive here, from operators and
        # the daemon's signal handler: a handful queued is plenty.
        super().__init__(
            name,
            mailbox_size=4,
            heartbeat_interval_s=heartbeat_interval_s,
            heartbeat_timeout_s=heartbeat_timeout_s,
        )
        names = [spec.name for spec in children]
        if len(set(names)) != len(names):
            raise ValueError(f"supervisor {name!r}: child names must be unique: {names}")
        self.policy = policy if policy is not None else RestartPolicy()
        self._children = [_Child(spec) for spec in children]
        # Bounded by construction: each incarnation reports its exit once; between two
        # reads there can be at most two incarnations per child (one cancelled by a
        # one-for-all restart, one started by it), plus one drain request.
        self._events_send, self._events_receive = trio.open_memory_channel[
            _Exited | _DrainRequested
        ](2 * len(self._children) + 1)
        self._group_restart_times: deque[float] = deque()
        self._nursery: trio.Nursery | None = None
        self._draining = False
        self.running = False

    def status(self) -> tuple[ChildStatus, ...]:
        """The children's states, in start order (nested supervisors included)."""
        return tuple(child.status() for child in self._children)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        if self._nursery is not None or self.last_heartbeat is not None:
            raise RuntimeError(f"supervisor {self.name!r} runs once; its factory makes another")
        failure: tuple[ActorFailed, Exception | None] | None = None
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            self.heartbeat()
            for child in self._children:
                await self._start(child)
            nursery.start_soon(self._beat)
            nursery.start_soon(self._serve_mailbox)
            self.running = True
            task_status.started()
            try:
                failure = await self._supervise()
            finally:
                self.running = False
            nursery.cancel_scope.cancel()
        for child in self._children:
            if child.is_up() or child.state is ChildState.RESTARTING:
                child.state = ChildState.STOPPED
        if failure is not None:
            error, cause = failure
            raise error from cause

    # -- the loop ---------------------------------------------------------------------

    async def _supervise(self) -> tuple[ActorFailed, Exception | None] | None:
        """Handle exits until drained (None) or the intensity is exceeded (the failure)."""
        async for event in self._events_receive:
            match event:
                case _DrainRequested():
                    await self._drain()
                    return None
                case _Exited():
                    failure = await self._on_exit(event)
                    if failure is not None:
                        return failure
                case _:
                    assert_never(event)
        raise AssertionError("the supervisor holds its own event channel open")

    async def _on_exit(self, exited: _Exited) -> tuple[ActorFailed, Exception | None] | None:
        child, error = exited.child, exited.error
        if exited.incarnation != child.incarnation or self._draining:
            return None  # ended on purpose by this supervisor
        if error is not None:
            child.last_error = describe(error)
        if not _should_restart(child.spec.restart, error):
            child.state = ChildState.FAILED if error is not None else ChildState.STOPPED
            log.info(
                "actor.ended", supervisor=self.name, child=child.spec.name, error=child.last_error
            )
            return None

        now = trio.current_time()
        window_start = now - self.policy.period_s
        _forget_before(self._group_restart_times, window_start)
        if len(self._group_restart_times) >= self.policy.max_restarts:
            child.state = ChildState.FAILED
            how = describe(error) if error is not None else "returned although permanent"
            message = (
                f"supervisor {self.name!r}: child {child.spec.name!r} ended ({how}) after "
                f"{self.policy.max_restarts} restarts within {self.policy.period_s} s"
            )
            log.error("actor.escalated", supervisor=self.name, child=child.spec.name, error=how)
            return ActorFailed(message), error

        if self.policy.strategy is Strategy.ONE_FOR_ONE:
            _forget_before(child.restart_times, window_start)
            delay = self.policy.backoff_s(len(child.restart_times))
            child.restart_times.append(now)
            self._group_restart_times.append(now)
            child.state = ChildState.RESTARTING
            log.warning(
                "actor.restarting",
                supervisor=self.name,
                child=child.spec.name,
                error=child.last_error,
                delay_s=delay,
            )
            # The scope exists from now on, so a drain read next can drop the restart
            # even before its task has first run.
            child.pending_restart = trio.CancelScope()
            assert self._nursery is not None
            self._nursery.start_soon(self._restart_later, child, delay, child.pending_restart)
        else:
            delay = self.policy.backoff_s(len(self._group_restart_times))
            self._group_restart_times.append(now)
            log.warning(
                "actor.restarting_all",
                supervisor=self.name,
                child=child.spec.name,
                error=child.last_error,
                delay_s=delay,
            )
            await self._restart_all(delay)
        return None

    # -- starting and stopping children ---------------------------------------------

    async def _start(self, child: _Child) -> None:
        child.incarnation += 1
        child.state = ChildState.STARTING
        child.kill_reason = None
        child.done = trio.Event()
        try:
            actor = child.spec.factory()
        except Exception as exc:  # an actor that cannot be built has failed to start
            child.actor = None
            child.done.set()
            self._events_send.send_nowait(_Exited(child, child.incarnation, exc))
            return
        child.actor = actor
        assert self._nursery is not None
        await self._nursery.start(self._incarnation, child, child.incarnation, actor)

    async def _incarnation(
        self,
        child: _Child,
        incarnation: int,
        actor: Actor[Any],
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        def on_started() -> None:
            child.state = ChildState.RUNNING
            child.started_at = trio.current_time()
            actor.heartbeat()

        signal = _StartSignal(task_status, on_started)
        scope = child.scope = trio.CancelScope()
        done = child.done
        assert done is not None
        error: Exception | None = None
        try:
            with scope:
                await actor.run(task_status=signal)
        except Exception as exc:  # the child failed; BaseException passes on
            error = exc
        finally:
            done.set()
        if error is None and scope.cancel_called:
            error = child.kill_reason  # None unless cancelled for being wedged
        if not signal.called:
            task_status.started()  # release the waiting _start; the exit follows
        self._events_send.send_nowait(_Exited(child, incarnation, error))

    async def _restart_later(self, child: _Child, delay: float, pending: trio.CancelScope) -> None:
        # The scope covers the wait and the start, so a drain can drop both.
        with pending:
            try:
                await trio.sleep(delay)
                child.restarts += 1
                await self._start(child)
            finally:
                child.pending_restart = None

    async def _restart_all(self, delay: float) -> None:
        for child in reversed(self._children):
            await self._cancel(child)
        for child in self._children:
            if child.spec.restart is Restart.TEMPORARY:
                if child.is_up():
                    child.state = ChildState.STOPPED
            else:
                child.state = ChildState.RESTARTING
        await trio.sleep(delay)
        for child in self._children:
            if child.spec.restart is not Restart.TEMPORARY:
                child.restarts += 1
                await self._start(child)

    async def _cancel(self, child: _Child) -> None:
        """End a child now, on purpose: its exit report becomes stale."""
        if child.pending_restart is not None:
            child.pending_restart.cancel()
        child.incarnation += 1
        if child.scope is not None:
            child.scope.cancel()
        if child.done is not None:
            await child.done.wait()

    async def _drain(self) -> None:
        self._draining = True
        log.info("supervisor.draining", supervisor=self.name)
        for child in self._children:
            if child.pending_restart is not None:
                child.pending_restart.cancel()
        for child in reversed(self._children):
            if child.is_up() and child.actor is not None and child.done is not None:
                child.actor.request_stop()
                with trio.move_on_after(child.spec.shutdown_timeout_s):
                    await child.done.wait()
                await self._cancel(child)
            if child.state is not ChildState.FAILED:
                child.state = ChildState.STOPPED

    # -- housekeeping tasks ------------------------------------------------------------

    async def _beat(self) -> None:
        while True:
            self.heartbeat()
            for child in self._children:
                actor = child.actor
                if (
                    child.spec.restart_when_wedged
                    and child.state is ChildState.RUNNING
                    and child.kill_reason is None
                    and actor is not None
                    and actor.is_wedged()
                    and child.scope is not None
                ):
                    child.kill_reason = ActorError(
                        f"{child.spec.name!r} sent no heartbeat for more than "
                        f"{actor.heartbeat_timeout_s} s"
                    )
                    log.error("actor.wedged", supervisor=self.name, child=child.spec.name)
                    child.scope.cancel()
            await trio.sleep(self.heartbeat_interval_s)

    async def _serve_mailbox(self) -> None:
        async for request in self.messages():
            match request:
                case GetStatus(reply=reply):
                    reply.send(self.status())
                case _:
                    assert_never(request)
        # The mailbox was closed: that is the request to drain.
        self._events_send.send_nowait(_DrainRequested())


def _should_restart(restart: Restart, error: Exception | None) -> bool:
    match restart:
        case Restart.PERMANENT:
            return True
        case Restart.TRANSIENT:
            return error is not None
        case Restart.TEMPORARY:
            return False
        case _:
            assert_never(restart)


def _forget_before(times: deque[float], start: float) -> None:
    while times and times[0] <= start:
        times.popleft()
