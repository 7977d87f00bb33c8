"""Checks that span several tables of the configuration; each problem names its key path.

The schema (:mod:`daemon.config`) checks one value at a time; these check how values fit
together: a vendor's kind, plain HTTP only to loopback, ERP routing by legal entity and
what a NetSuite system's options add to it, the systems a workflow or the customer-master
field ownership refers to.

:func:`check_adapters` is separate: whether this version has an adapter for each vendor
is a property of the build, not of the file, so it runs where systems are wired (and in
``pssync config check``), not in every load.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from actors.errors import ConfigError
from adapters.http import HttpConfig

from .config import ADAPTER_VENDORS, VENDOR_KINDS, WORKFLOWS, Config, NetSuiteSystem
from .errors import key_path

Problem = Callable[[str, str], None]  # (dotted key path, message)

_SYSTEM_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_LISTEN = re.compile(r"^(?:\[(?P<ipv6>[0-9A-Fa-f:.]+)\]|(?P<host>[^:\s\[\]]+)):(?P<port>\d{1,5})$")


def check_config(config: Config, *, source: str = "") -> list[ConfigError]:
    """Every cross-table problem in ``config``, in file order (empty when it is sound)."""
    problems: list[ConfigError] = []

    def problem(path: str, message: str) -> None:
        problems.append(ConfigError(message, path=path, source=source))

    _check_metrics(config, problem)
    _check_systems(config, problem)
    _check_workflows(config, problem)
    _check_governance(config, problem)
    return problems


def check_adapters(config: Config, *, source: str = "") -> list[ConfigError]:
    """A problem for every system whose vendor has no adapter in this version."""
    available = ", ".join(sorted(ADAPTER_VENDORS))
    return [
        ConfigError(
            f'vendor "{system.vendor}" has no adapter in this version of pssync, so system '
            f'"{name}" cannot run (vendors with an adapter: {available})',
            path=key_path(key_path("systems", name), "vendor"),
            source=source,
        )
        for name, system in config.systems.items()
        if system.vendor not in ADAPTER_VENDORS
    ]


def _check_metrics(config: Config, problem: Problem) -> None:
    match = _LISTEN.match(config.metrics.listen)
    if match is None or not 0 < int(match["port"]) < 65536:
        problem("metrics.listen", f"expected HOST:PORT, got {_quote(config.metrics.listen)}")


def _check_systems(config: Config, problem: Problem) -> None:
    erp_systems = [name for name, system in config.systems.items() if system.kind == "erp"]
    routed: dict[str, str] = {}  # legal entity → the ERP system it is routed to
    for name, system in config.systems.items():
        path = key_path("systems", name)
        if not _SYSTEM_NAME.match(name):
            problem(
                path,
                "a system name must be lower case letters, digits and '_', starting with a "
                "letter (it labels metrics and log lines)",
            )
        vendor_kind = VENDOR_KINDS[system.vendor]
        if system.kind != vendor_kind:
            problem(
                key_path(path, "kind"),
                f'vendor "{system.vendor}" is a {vendor_kind} system, not {system.kind}',
            )
        try:
            HttpConfig(base_url=system.base_url)
        except ValueError:
            problem(
                key_path(path, "base_url"),
                f"must be https:// (plain http:// only for a loopback host, such as the "
                f"sandbox), got {_quote(system.base_url)}",
            )
        if isinstance(system, NetSuiteSystem):
            _check_netsuite(path, system, problem)
        if system.legal_entities and system.kind != "erp":
            problem(key_path(path, "legal_entities"), "only ERP systems route legal entities")
            continue
        if system.kind == "erp" and len(erp_systems) > 1 and not system.legal_entities:
            problem(
                key_path(path, "legal_entities"),
                f"required when more than one ERP system is configured "
                f"({', '.join(erp_systems)}): ERP routing is by legal entity",
            )
        for entity in system.legal_entities:
            owner = routed.setdefault(entity, name)
            if owner != name:
                problem(
                    key_path(key_path(path, "legal_entities"), entity),
                    f'legal entity "{entity}" is already routed to system "{owner}"',
                )


def _check_netsuite(path: str, system: NetSuiteSystem, problem: Problem) -> None:
    """Subsidiaries have one home (legal_entities' erp_id); mapped currencies cover them."""
    options = key_path(path, "options")
    for code in system.options.subsidiaries:
        if code in system.legal_entities:
            problem(
                key_path(key_path(options, "subsidiaries"), code),
                f'"{code}" is a legal entity of this system: its subsidiary is '
                f"{key_path(key_path(key_path(path, 'legal_entities'), code), 'erp_id')} "
                f"({_quote(system.legal_entities[code].erp_id)}); set it there only",
            )
    currencies = system.options.currencies
    if not currencies:
        return  # none mapped at all: postings name the problem (options.currencies)
    for code, entity in system.legal_entities.items():
        if entity.currency not in currencies:
            problem(
                key_path(key_path(key_path(path, "legal_entities"), code), "currency"),
                f'currency "{entity.currency}" has no internal id in '
                f"{key_path(options, 'currencies')} (mapped: {', '.join(sorted(currencies))})",
            )


def _check_workflows(config: Config, problem: Problem) -> None:
    configured = ", ".join(sorted(config.systems)) or "none"
    for name, workflow in config.workflows.items():
        path = key_path("workflows", name)
        if name not in WORKFLOWS:
            problem(path, f"unknown workflow; known workflows: {', '.join(sorted(WORKFLOWS))}")
            continue
        backoff = workflow.backoff
        if backoff.max_s < backoff.initial_s:
            problem(
                key_path(key_path(path, "backoff"), "max_s"),
                f"must be at least initial_s ({backoff.initial_s:g}), got {backoff.max_s:g}",
            )
        for index, system in enumerate(workflow.systems):
            if system not in config.systems:
                problem(
                    key_path(key_path(path, "systems"), index),
                    f'unknown system "{system}" (configured: {configured})',
                )
        if name == "reconcile" and workflow.interval_s is None:
            problem(key_path(path, "interval_s"), "required for the scheduled reconcile workflow")
        if name != "tm_close" and workflow.close_after_days is not None:
            problem(key_path(path, "close_after_days"), "only for the tm_close workflow")
        if not workflow.enabled:
            continue
        chosen = workflow.systems or tuple(config.systems)
        kinds = {config.systems[s].kind for s in chosen if s in config.systems}
        for kind in WORKFLOWS[name]:
            if kind not in kinds:
                where = "among its systems" if workflow.systems else "configured"
                problem(path, f"needs a {kind} system; none is {where}")


def _check_governance(config: Config, problem: Problem) -> None:
    configured = ", ".join(sorted(config.systems)) or "none"
    for field, system in config.governance.customer_master.items():
        if system not in config.systems:
            problem(
                key_path(key_path("governance", "customer_master"), field),
                f'unknown system "{system}" (configured: {configured})',
            )


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
