"""What ``pssync reload`` (and SIGHUP) changes in a running pipeline.

Three :class:`~daemon.control.registry.ReloadHook` kinds, registered by
:func:`register_reload_hooks` for the pipeline :func:`~.from_config.build_pipeline` built:

- :class:`LimitsReload` — ``systems.<name>.limits``: the system's governor is
  reconfigured (rate, burst, concurrency, quota and reserve);
- :class:`MappingsReload` — ``mappings``: every adapter's field mapping is replaced in
  place (each record is converted by one version; a run in flight uses the new mapping
  from its next vendor call). A mapping file without an entity an adapter uses, or a
  system whose vendor lost its file, refuses the whole reload;
- :class:`ScheduleReload` — ``systems.<name>.poll_interval_s``,
  ``workflows.reconcile.interval_s`` and ``workflows.tm_close.interval_s``: the shared
  :class:`~actors.interval.Interval` the pollers and the schedulers wait on, so a sleep
  already begun is shortened or extended (removing reconcile's ``interval_s`` turns its
  schedule off, reconcile stays on demand; tm_close's falls back to daily).
  ``workflows.tm_close.close_after_days`` needs a restart.

Anything else (a new system, a vendor, the journal, the socket) is reported as needing a
restart by the reloader.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from actors.interval import Interval
from adapters.base import VendorAdapter
from adapters.mapping import MappingSet

from ..config import schedule_interval_s
from ..errors import ConfigErrors
from ..systems import check_mappings, governor_config

if TYPE_CHECKING:
    from ..control import ControlRegistry, Settings
    from .wiring import Pipeline

__all__ = ["LimitsReload", "MappingsReload", "ScheduleReload", "register_reload_hooks"]


def register_reload_hooks(pipeline: Pipeline, registry: ControlRegistry) -> None:
    """Register a LimitsReload per governed system, one MappingsReload and one
    ScheduleReload for ``pipeline``."""
    for name, governor in registry.governors.items():
        if name in pipeline.systems.adapters:
            registry.reload_hooks.append(LimitsReload(name, governor))
    if pipeline.systems.adapters:
        registry.reload_hooks.append(MappingsReload(pipeline.systems.adapters))
    polls = {
        name: control.poll_interval
        for name, control in pipeline.systems.controls.items()
        if control.poll_interval is not None
    }
    schedules = {
        name: interval
        for name, interval in (
            ("reconcile", pipeline.reconcile_interval),
            ("tm_close", pipeline.tm_close_interval),
        )
        if interval is not None
    }
    if polls or schedules:
        registry.reload_hooks.append(ScheduleReload(polls, schedules))


class LimitsReload:
    """Applies ``systems.<name>.limits`` to the running governor, without a restart."""

    def __init__(self, system: str, governor: Any) -> None:
        self.system = system
        self.governor = governor
        self.name = f"systems.{system}.limits"
        self.prefixes = (self.name,)

    def check(self, old: Settings, new: Settings) -> None:
        """Nothing beyond the configuration's own validation."""

    async def apply(self, old: Settings, new: Settings) -> str:
        """Reconfigure the governor; a one-line summary of the new limits."""
        limits = governor_config(new.config.systems[self.system].limits)
        self.governor.reconfigure(limits)
        return (
            f"{self.system}: {limits.rate_per_s:g}/s, burst {limits.burst}, "
            f"{limits.max_concurrency} concurrent"
        )


class MappingsReload:
    """Replaces the field mappings of running adapters (``config/mappings/*.toml``)."""

    name = "mappings"
    prefixes = ("mappings",)

    def __init__(self, adapters: dict[str, VendorAdapter]) -> None:
        self.adapters = adapters

    def check(self, old: Settings, new: Settings) -> None:
        """ConfigError unless every system's vendor has a mapping file its adapter can use
        (the same check as start-up and ``pssync config check``)."""
        problems = check_mappings(new.config, new.mappings)
        if problems:
            raise problems[0] if len(problems) == 1 else ConfigErrors(problems)

    async def apply(self, old: Settings, new: Settings) -> str:
        """Swap each adapter's mapping; which systems changed, from which version to which."""
        changed: list[str] = []
        for name, adapter in sorted(self.adapters.items()):
            before = adapter.mappings.current
            mapping = new.mappings[adapter.mappings.vendor]
            if adapter.mappings.replace(mapping):
                changed.append(f"{name}: {mapping.vendor} {_version_change(before, mapping)}")
        return "; ".join(changed) if changed else "no system's mapping changed"


def _version_change(before: MappingSet, after: MappingSet) -> str:
    if before.version != after.version:
        return f"v{before.version} → v{after.version}"
    # Same version number, different rules: say so, an edit without a version bump.
    return f"v{after.version} (edited without a version change)"


class ScheduleReload:
    """Applies poll intervals and the reconcile and tm_close intervals to the waiting
    actors."""

    name = "schedules"

    def __init__(self, polls: dict[str, Interval], workflows: dict[str, Interval]) -> None:
        """``polls`` by system, ``workflows`` (reconcile, tm_close) by workflow name."""
        self.polls = polls
        self.workflows = workflows
        prefixes = [f"systems.{name}.poll_interval_s" for name in sorted(polls)]
        prefixes.extend(f"workflows.{name}.interval_s" for name in self.workflows)
        self.prefixes = tuple(prefixes)

    def check(self, old: Settings, new: Settings) -> None:
        """Nothing beyond the configuration's own validation (periods are positive)."""

    async def apply(self, old: Settings, new: Settings) -> str:
        """Set every changed period; a summary such as ``crm poll 60 s → 30 s``."""
        changes: list[str] = []
        for name, interval in sorted(self.polls.items()):
            system = new.config.systems.get(name)
            if system is None:
                continue  # a removed system keeps polling until the restart it needs
            before = interval.set(system.poll_interval_s)
            if before != system.poll_interval_s:
                changes.append(f"{name} poll {_seconds(before)} → {_seconds(interval.seconds)}")
        for name, interval in self.workflows.items():
            seconds = schedule_interval_s(name, new.config.workflows.get(name))
            before = interval.set(seconds)
            if before != seconds:
                changes.append(f"{name} every {_seconds(before)} → {_seconds(seconds)}")
        return "; ".join(changes) if changes else "no schedule changed"


def _seconds(value: float | None) -> str:
    return "off" if value is None else f"{value:g} s"
