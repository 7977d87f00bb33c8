"""The pipeline from the daemon's configuration: :func:`build_pipeline` builds the clients
and adapters (:mod:`daemon.systems`) and hands :func:`~.wiring.assemble` what the
configuration says (:func:`config_wiring`)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import httpx

from actors.systems import SystemSettings
from actors.systems.poller import PollSettings
from actors.workflows import Enabled, WorkflowSettings, WorkflowSpec, exception_owners
from actors.workflows.catalog import SPECS
from actors.workflows.schedule import DEFAULT_CLOSE_AFTER_DAYS
from adapters.base import VendorAdapter
from adapters.mapping import MappingSet, load_mappings
from store import Journal

from ..config import Config, schedule_interval_s
from ..systems import build_adapters, build_system_clients
from .reload_hooks import register_reload_hooks
from .wiring import Pipeline, assemble

if TYPE_CHECKING:
    from ..control import ControlRegistry
    from ..metrics import Metrics
    from ..secrets import Secret

__all__ = [
    "build_pipeline",
    "config_wiring",
    "enabled_workflows",
    "entity_currencies",
    "erp_routes",
    "roles",
    "system_settings",
]


# ------------------------------------------------------------------------ from config


def roles(config: Config) -> dict[str, tuple[str, ...]]:
    """System kind → configured system names (sorted)."""
    found: dict[str, list[str]] = {}
    for name, system in sorted(config.systems.items()):
        found.setdefault(system.kind, []).append(name)
    return {kind: tuple(names) for kind, names in found.items()}


def erp_routes(config: Config) -> dict[str, str]:
    """Legal entity → the ERP system that books for it (``legal_entities`` tables)."""
    routes: dict[str, str] = {}
    for name, system in sorted(config.systems.items()):
        if system.kind == "erp":
            for entity in system.legal_entities:
                routes.setdefault(entity, name)
    return routes


def enabled_workflows(
    config: Config, specs: Mapping[str, WorkflowSpec], *, lease_s: float = 60.0
) -> list[Enabled]:
    """The ``[workflows.<name>]`` tables that are enabled, with their specs and settings.

    A configured workflow without a spec is a bug of this build (config validation knows
    the seven names), so it raises KeyError naming it.
    """
    enabled: list[Enabled] = []
    for name, table in sorted(config.workflows.items()):
        if not table.enabled:
            continue
        if name not in specs:
            raise KeyError(f"workflow {name!r} is configured but not implemented")
        settings = WorkflowSettings.from_config(table, lease_s=lease_s)
        enabled.append(Enabled(spec=specs[name], settings=settings))
    return enabled


def system_settings(config: Config) -> dict[str, SystemSettings]:
    """Each system's actor settings: concurrency from its limits, its poll interval."""
    return {
        name: SystemSettings(
            max_concurrency=system.limits.max_concurrency,
            poll=PollSettings(poll_interval_s=system.poll_interval_s),
        )
        for name, system in config.systems.items()
    }


def build_pipeline(
    config: Config,
    secrets: Mapping[str, Secret],
    journal: Journal,
    *,
    registry: ControlRegistry,
    metrics: Metrics | None,
    transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
    now: Callable[[], float] = time.time,
    specs: Mapping[str, WorkflowSpec] | None = None,
    mappings: Mapping[str, MappingSet] | None = None,
) -> Pipeline:
    """The daemon's pipeline from its configuration (see the module docstring).

    ``transports`` points systems at the sandbox (tests, the demo); ``specs`` defaults to
    the seven business workflows of :mod:`actors.workflows.catalog`; ``mappings`` (by
    vendor) default to the files of ``[mappings] directory``. Raises ConfigError for an
    unusable system (see :func:`daemon.systems.build_system_clients`). What a reload can
    change is registered in ``registry`` (:mod:`.reload_hooks`).
    """
    if specs is None:
        specs = SPECS
    workflows = enabled_workflows(config, specs)
    adapters: dict[str, VendorAdapter] = {}
    if config.systems:
        # Closing goes through the adapters (Pipeline.aclose). Should building an adapter
        # fail, the clients are dropped unopened: they hold no connection yet.
        clients = build_system_clients(config, secrets, transports=transports)
        if mappings is None:
            mappings = load_mappings(config.mappings.directory)
        adapters = build_adapters(config, clients, mappings)
    pipeline = assemble(
        list(adapters.values()),
        journal,
        workflows,
        registry=registry,
        metrics=metrics,
        now=now,
        **config_wiring(config),
    )
    register_reload_hooks(pipeline, registry)
    return pipeline


def config_wiring(config: Config) -> dict[str, Any]:
    """What :func:`assemble` takes from the configuration, as its keyword arguments:
    exception owners, roles, ERP routes, field owners, system settings, the reconcile
    interval, the tm_close schedule (interval, close_after_days) and the optional
    WorkflowDeps capabilities."""
    reconcile = config.workflows.get("reconcile")
    tm_close = config.workflows.get("tm_close")
    close_after = tm_close.close_after_days if tm_close is not None else None
    return {
        "owners": exception_owners(config.governance.owners),
        "roles": roles(config),
        "erp_routes": erp_routes(config),
        "field_owners": config.governance.customer_master,
        "system_settings": system_settings(config),
        "reconcile_interval_s": reconcile.interval_s if reconcile is not None else None,
        "tm_close_interval_s": schedule_interval_s("tm_close", tm_close),
        "close_after_days": DEFAULT_CLOSE_AFTER_DAYS if close_after is None else close_after,
        "deps_extras": {"entity_currencies": entity_currencies(config)},
    }


def entity_currencies(config: Config) -> dict[str, tuple[str, ...]]:
    """Legal entity → the currencies it bills in (its ERP ``legal_entities`` tables)."""
    currencies: dict[str, set[str]] = {}
    for system in config.systems.values():
        for code, entity in system.legal_entities.items():
            currencies.setdefault(code, set()).add(entity.currency)
    return {code: tuple(sorted(found)) for code, found in sorted(currencies.items())}
