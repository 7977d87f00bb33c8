"""What other components register so the control server can steer them.

The control server does not import system or workflow actors; they (or the wiring in
:mod:`daemon.service` that builds them) register themselves here when they start and
unregister when they stop. An operation whose component has not registered answers
``unavailable`` naming the missing component — an honest state, not an error.

Exact shapes (structural: any object with these members will do):

- ``registry.systems[name] = actor`` and ``registry.workflows[name] = actor`` where the
  actor is a :class:`Pausable`;
- ``registry.governors[system] = governor`` (an ``adapters.governor.Governor``; any object
  with ``snapshot()`` returning a msgspec Struct or mapping);
- ``registry.replay = handler``, ``registry.reconcile = handler`` and
  ``registry.close_period = handler``: ``async`` callables taking the
  :class:`~daemon.control.protocol.Replay` / ``Reconcile`` / ``ClosePeriod`` request and
  returning a JSON-encodable result (raise ``ControlError`` for a refusal);
- ``registry.reload_hooks.append(hook)``: a :class:`ReloadHook` applying changed settings
  under its ``prefixes`` to a running component.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from .protocol import ClosePeriod, Reconcile, Replay
    from .reload import Settings


@runtime_checkable
class Pausable(Protocol):
    """A system or workflow actor as the control server sees it.

    ``pause()`` stops taking new work — polling for a system, claiming runs for a
    workflow — and returns once that holds; work already in flight finishes. Both are
    idempotent. ``snapshot()`` is cheap and synchronous and returns a msgspec Struct or a
    mapping with at least ``state`` (str) and ``paused`` (bool); other fields (backlog,
    last poll time, …) are shown as they are.
    """

    async def pause(self) -> None: ...

    async def resume(self) -> None: ...

    def snapshot(self) -> Any: ...


@runtime_checkable
class GovernorView(Protocol):
    """A system's rate governor (``adapters.governor.Governor`` satisfies it)."""

    def snapshot(self) -> Any: ...


@runtime_checkable
class ReloadHook(Protocol):
    """Applies part of new :class:`~daemon.control.reload.Settings` to a running component.

    ``prefixes`` are the dotted keys it handles (``"systems.crm.limits"`` covers every key
    below it); changed keys that no hook covers are reported as needing a restart. Hooks
    whose keys changed are first asked to ``check`` the new settings — a ConfigError
    refuses the whole reload and nothing is applied — then to ``apply`` them. ``apply``
    returns a one-line summary of what it changed; raising there refuses nothing (the
    settings are already in place) but is reported as a failed application.
    """

    name: str
    """What it reloads, as reported (``systems.crm.limits``, ``mappings``)."""
    prefixes: tuple[str, ...]

    def check(self, old: Settings, new: Settings) -> None: ...

    async def apply(self, old: Settings, new: Settings) -> str: ...


ReplayHandler = Callable[["Replay"], Awaitable[Any]]
ReconcileHandler = Callable[["Reconcile"], Awaitable[Any]]
ClosePeriodHandler = Callable[["ClosePeriod"], Awaitable[Any]]


@dataclass
class ControlRegistry:
    """The components the control server can reach; filled in as they start."""

    systems: dict[str, Pausable] = field(default_factory=dict)
    workflows: dict[str, Pausable] = field(default_factory=dict)
    governors: dict[str, GovernorView] = field(default_factory=dict)
    replay: ReplayHandler | None = None
    reconcile: ReconcileHandler | None = None
    close_period: ClosePeriodHandler | None = None
    reload_hooks: list[ReloadHook] = field(default_factory=list)
