"""A set of simulated vendors, each behind its fault injector and admin view.

``build_sandbox(config)`` imports each configured vendor's subpackage lazily through
:data:`VENDOR_MODULES` (so the sandbox works before every vendor exists), calls its
``create_vendor(clock=…, seed=…, **options)``, wraps the raw app with a
:class:`~adapters.sandbox.faults.FaultInjector` and mounts the admin view. ``Sandbox.apps``
maps vendor name to the ASGI app to serve or to hand to ``httpx.ASGITransport``.

Persistence: ``Sandbox.persist()`` writes one JSON file (``{"version", "clock_offset_s",
"vendors": {name: snapshot}, "faults": {name: FaultConfig}}``) atomically;
``build_sandbox`` restores it when the file exists, so a demo can restart where it was.
"""

from __future__ import annotations

import importlib
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
from starlette.types import ASGIApp

from actors.errors import ConfigError

from .admin import admin_app, compose
from .clock import SandboxClock
from .faults import FaultConfig, FaultInjector
from .vendor import Vendor

#: Vendor name → module exporting ``create_vendor``.
VENDOR_MODULES: dict[str, str] = {
    "salesforce": "adapters.sandbox.salesforce",
    "kantata": "adapters.sandbox.kantata",
    "netsuite": "adapters.sandbox.netsuite",
    "stripe": "adapters.sandbox.stripe",
}

PERSIST_VERSION = 1


class SandboxConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Which vendors to simulate and how.

    ``credentials[vendor]`` and ``options[vendor]`` are passed to that vendor's
    ``create_vendor`` (``credentials=`` as one keyword, options spread as keywords).
    ``skip_missing`` skips vendors whose module is not installed instead of failing.
    ``seed_data`` fills a fresh sandbox (one with no persisted state) with the demo firm
    of :mod:`adapters.sandbox.seed`.
    """

    vendors: tuple[str, ...] = ("salesforce", "kantata", "netsuite", "stripe")
    faults: dict[str, FaultConfig] = {}
    seed: int = 0
    persist_path: str | None = None
    credentials: dict[str, dict[str, str]] = {}
    options: dict[str, dict[str, Any]] = {}
    skip_missing: bool = False
    seed_data: bool = False


@dataclass
class Sandbox:
    """The running set of simulated vendors."""

    clock: SandboxClock
    vendors: dict[str, Vendor]
    injectors: dict[str, FaultInjector]
    apps: dict[str, ASGIApp] = field(default_factory=dict)
    persist_path: Path | None = None
    skipped: list[str] = field(default_factory=list)

    def snapshot(self) -> dict[str, Any]:
        return {
            "version": PERSIST_VERSION,
            "clock_offset_s": self.clock.offset_s,
            "vendors": {name: vendor.state.snapshot() for name, vendor in self.vendors.items()},
            "faults": {
                name: msgspec.to_builtins(injector.config)
                for name, injector in self.injectors.items()
            },
        }

    def restore(self, data: dict[str, Any]) -> None:
        if data.get("version") != PERSIST_VERSION:
            raise ConfigError(f"unsupported sandbox snapshot version {data.get('version')!r}")
        self.clock.set_offset(max(self.clock.offset_s, float(data.get("clock_offset_s", 0.0))))
        for name, state in data.get("vendors", {}).items():
            if name in self.vendors:
                self.vendors[name].state.restore(state)
        for name, faults in data.get("faults", {}).items():
            if name in self.injectors:
                self.injectors[name].configure(msgspec.convert(faults, FaultConfig))

    def persist(self, path: str | os.PathLike[str] | None = None) -> str | None:
        """Write the snapshot to ``path`` (default: the configured one); returns the path."""
        target = Path(path) if path is not None else self.persist_path
        if target is None:
            return None
        target.parent.mkdir(parents=True, exist_ok=True)
        payload = msgspec.json.encode(self.snapshot())
        with tempfile.NamedTemporaryFile(dir=target.parent, delete=False, suffix=".tmp") as tmp:
            tmp.write(payload)
            tmp.flush()
            os.fsync(tmp.fileno())
        os.replace(tmp.name, target)
        return str(target)

    def load(self, path: str | os.PathLike[str] | None = None) -> bool:
        """Restore from ``path`` (default: the configured one); False when there is none."""
        source = Path(path) if path is not None else self.persist_path
        if source is None or not source.exists():
            return False
        try:
            data = msgspec.json.decode(source.read_bytes())
        except msgspec.DecodeError as exc:
            raise ConfigError(f"corrupt sandbox snapshot: {exc}", source=str(source)) from exc
        self.restore(data)
        return True


def load_vendor_factory(name: str) -> Any:
    """The ``create_vendor`` of vendor ``name``; ModuleNotFoundError if it is not built."""
    try:
        module_name = VENDOR_MODULES[name]
    except KeyError:
        raise ConfigError(f"unknown sandbox vendor {name!r}", path="sandbox.vendors") from None
    return importlib.import_module(module_name).create_vendor


def build_sandbox(config: SandboxConfig, *, clock: SandboxClock | None = None) -> Sandbox:
    """Create every configured vendor, wrap it with faults and admin, restore persisted state."""
    clock = clock or SandboxClock()
    sandbox = Sandbox(
        clock=clock,
        vendors={},
        injectors={},
        persist_path=Path(config.persist_path) if config.persist_path else None,
    )
    for name in config.vendors:
        try:
            factory = load_vendor_factory(name)
        except ModuleNotFoundError as exc:
            if config.skip_missing and exc.name == VENDOR_MODULES[name]:
                sandbox.skipped.append(name)
                continue
            raise
        options = dict(config.options.get(name, {}))
        if name in config.credentials:
            options["credentials"] = dict(config.credentials[name])
        vendor: Vendor = factory(clock=clock, seed=config.seed, **options)
        injector = FaultInjector(config.faults.get(name), vendor.errors, clock)
        admin = admin_app(vendor, injector, clock, persist=sandbox.persist)
        sandbox.vendors[name] = vendor
        sandbox.injectors[name] = injector
        sandbox.apps[name] = compose(vendor, injector, admin)
    if not sandbox.load() and config.seed_data:
        from .seed import seed_sandbox  # seed imports this module

        seed_sandbox(sandbox, seed=config.seed)
    return sandbox
