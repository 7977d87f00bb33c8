"""Simulated vendor systems (ASGI apps) speaking the real wire formats.

Table of contents:

- :mod:`.clock` — :class:`SandboxClock`, the time every vendor reads.
- :mod:`.limits` — :class:`TokenBucket`, :class:`ConcurrencyGate`, :class:`RollingQuota`.
- :mod:`.faults` — :class:`FaultConfig`, :class:`FaultInjector` (5xx, 429 bursts, timeouts,
  latency, malformed bodies).
- :mod:`.vendor` — the contract: :class:`Vendor`, :class:`VendorState`, :class:`VendorErrors`;
  each vendor subpackage exports ``create_vendor(*, clock, seed=0, **options) -> Vendor``.
- :mod:`.admin` — the ``/_sandbox/`` admin view mounted on every vendor.
- :mod:`.sandbox` — :class:`SandboxConfig`, :class:`Sandbox`, :func:`build_sandbox`.
- :mod:`.server` — :func:`serve_sandbox` (hypercorn on trio), :func:`print_banner`, and
  :func:`run_sandbox`, the whole ``pssync sandbox`` command in one call.
- vendors: ``salesforce``, ``kantata``, ``netsuite``, ``stripe`` (imported lazily).
- :mod:`.seed` — :func:`seed_sandbox`, a deterministic demo firm (also ``seed_data=True``).
- :mod:`.scenario` — :class:`Scenario` (deals won, time logged and approved, month-end
  spike, milestones, invoice payments) and :func:`run_scenario` for ``pssync demo``.
"""

from .clock import SandboxClock as SandboxClock
from .faults import FaultConfig as FaultConfig
from .faults import FaultInjector as FaultInjector
from .limits import ConcurrencyGate as ConcurrencyGate
from .limits import RollingQuota as RollingQuota
from .limits import TokenBucket as TokenBucket
from .sandbox import Sandbox as Sandbox
from .sandbox import SandboxConfig as SandboxConfig
from .sandbox import build_sandbox as build_sandbox
from .scenario import Scenario as Scenario
from .scenario import WeekReport as WeekReport
from .scenario import run_scenario as run_scenario
from .seed import seed_sandbox as seed_sandbox
from .server import print_banner as print_banner
from .server import run_sandbox as run_sandbox
from .server import serve_sandbox as serve_sandbox
from .vendor import Vendor as Vendor
from .vendor import VendorErrors as VendorErrors
from .vendor import VendorState as VendorState
