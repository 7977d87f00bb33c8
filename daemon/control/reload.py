"""Reload: re-read the configuration and mapping files, refuse them if invalid, report
what changed.

One code path for ``pssync reload`` (over the socket) and SIGHUP. systemd hears
``RELOADING=1`` with ``MONOTONIC_USEC`` first and ``READY=1`` last, whatever the
outcome (conventions §1.2: without both it would wait out its timeout).

What is reloaded are :class:`Settings`: the configuration file and the field mapping
files of ``[mappings] directory`` (an edited mapping is a change even when
``pssync.toml`` is untouched; its keys read ``mappings.<vendor>.…``). New settings that
do not load — syntax, schema, cross-table checks, unresolvable secrets, a broken mapping
file — or that a registered :class:`~daemon.control.registry.ReloadHook` refuses in its
``check`` (a mapping without an entity an adapter uses) are refused as a whole, and the
running ones stay. Valid ones replace them; each changed key is then either applied by a
hook (rate limits, mappings, poll and reconcile schedules) or listed as needing a restart
(the journal path, the socket, a system's vendor…).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import msgspec
import structlog
import trio

from actors.errors import ConfigError, ControlError
from adapters.mapping import MappingSet, load_mappings

from ..config import Config
from ..config_load import load_config
from ..errors import config_problems
from ..secrets import SecretResolver, resolve_all
from ..systemd import Notifier, monotonic_usec
from .registry import ControlRegistry

log = structlog.get_logger("daemon.control")


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """What a reload replaces: the configuration and the mapping files it names."""

    config: Config
    mappings: dict[str, MappingSet] = {}
    """By vendor; only read when systems are configured (nothing else uses them)."""

    @classmethod
    def load(cls, config: Config) -> Settings:
        """``config`` with its mapping files; ConfigError naming a broken file."""
        if not config.systems:
            return cls(config=config)
        return cls(config=config, mappings=load_mappings(config.mappings.directory))


class Change(msgspec.Struct, frozen=True, kw_only=True):
    """One configuration key that differs; ``old``/``new`` absent when added/removed."""

    key: str
    old: Any = None
    new: Any = None


class ReloadResult(msgspec.Struct, frozen=True, kw_only=True):
    file: str
    changed: list[Change]
    applied: dict[str, str]
    failed: dict[str, str]
    restart_required: list[str]


def config_diff(old: Settings, new: Settings) -> list[Change]:
    """Every leaf key whose value differs, in key order (dotted TOML paths; a mapping
    file's keys as ``mappings.<vendor>.entities.<entity>.fields.<field>.from`` …)."""
    before = _flatten(_builtins(old))
    after = _flatten(_builtins(new))
    return [
        Change(key=key, old=before.get(key), new=after.get(key))
        for key in sorted(before.keys() | after.keys())
        if before.get(key, _MISSING) != after.get(key, _MISSING)
    ]


_MISSING = object()


def _builtins(settings: Settings) -> dict[str, Any]:
    tree = msgspec.to_builtins(settings.config, enc_hook=str)
    for vendor, mapping in settings.mappings.items():
        # The file as written: each EntityMapping repeats the file's vendor and version.
        tree["mappings"][vendor] = {
            "version": mapping.version,
            "source": mapping.source,
            "entities": {
                name: {
                    "object": entity.object,
                    "fields": msgspec.to_builtins(entity.fields),
                }
                for name, entity in mapping.entities.items()
            },
        }
    return tree


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict) and value:
        flat: dict[str, Any] = {}
        for key, inner in value.items():
            flat.update(_flatten(inner, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    return {prefix: value}


def _covered(key: str, prefixes: tuple[str, ...]) -> bool:
    return any(key == p or key.startswith(p + ".") or key.startswith(p + "[") for p in prefixes)


class Reloader:
    """Holds the running configuration and replaces it on a valid reload."""

    def __init__(
        self,
        settings: Settings,
        *,
        config_file: str,
        environ: Mapping[str, str],
        registry: ControlRegistry,
        notifier: Notifier,
        status: Callable[[], str],
        on_result: Callable[[bool], None] | None = None,
    ) -> None:
        self.settings = settings
        # Told whether each reload succeeded (the metrics' config_last_reload_successful).
        self._on_result = on_result or (lambda success: None)
        self.config_file = config_file
        self._environ = environ
        self._registry = registry
        self._notifier = notifier
        self._status = status
        # Reloads from the socket and from SIGHUP are applied one at a time.
        self._lock = trio.Lock()

    @property
    def config(self) -> Config:
        """The running configuration."""
        return self.settings.config

    async def reload(self, origin: str) -> ReloadResult:
        """Reload from the file; ControlError ``invalid_config`` if refused."""
        if not self.config_file:
            raise ControlError("unavailable", "the daemon was started without a configuration file")
        async with self._lock:
            self._notifier.notify("RELOADING=1", f"MONOTONIC_USEC={monotonic_usec()}")
            try:
                result = await self._reload(origin)
            except ControlError:
                self._on_result(False)
                raise
            else:
                self._on_result(not result.failed)
                return result
            finally:
                self._notifier.ready(self._status())

    async def _reload(self, origin: str) -> ReloadResult:
        try:
            new = await trio.to_thread.run_sync(self._load)
            old = self.settings
            changes = config_diff(old, new)
            hooks = [
                hook
                for hook in list(self._registry.reload_hooks)
                if any(_covered(change.key, hook.prefixes) for change in changes)
            ]
            for hook in hooks:
                hook.check(old, new)
        except ConfigError as exc:
            problems = [str(problem) for problem in config_problems(exc)]
            log.error("daemon.reload_refused", origin=origin, problems=problems)
            raise ControlError(
                "invalid_config",
                "configuration refused, the running one is kept:\n" + "\n".join(problems),
            ) from None
        self.settings = new
        applied: dict[str, str] = {}
        failed: dict[str, str] = {}
        covered = [hook.prefixes for hook in hooks]
        for hook in hooks:
            name = hook.name
            try:
                applied[name] = await hook.apply(old, new)
            except Exception as exc:
                failed[name] = f"{type(exc).__name__}: {exc}"
                log.exception("daemon.reload_hook_failed", hook=name)
        restart = [
            c.key for c in changes if not any(_covered(c.key, prefixes) for prefixes in covered)
        ]
        result = ReloadResult(
            file=self.config_file,
            changed=changes,
            applied=applied,
            failed=failed,
            restart_required=restart,
        )
        log.info(
            "daemon.reloaded",
            origin=origin,
            changed=[c.key for c in changes],
            applied=sorted(applied),
            failed=sorted(failed),
            restart_required=restart,
        )
        return result

    def _load(self) -> Settings:
        config = load_config(self.config_file, environ=self._environ)
        resolve_all(config, SecretResolver(self._environ))
        return Settings.load(config)
