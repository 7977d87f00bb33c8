"""The pipeline: systems, dispatcher and workflow runners as the root supervisor's children.

- :mod:`.from_config` — :func:`build_pipeline` (what ``pssync run`` calls) and the
  pieces it reads from the configuration (:func:`config_wiring`).
- :mod:`.wiring` — :func:`assemble`, the wiring itself from adapters already built (the
  end-to-end test stack runs it too), and :class:`Pipeline`, what it returns.
- :mod:`.reload_hooks` — what ``pssync reload`` applies live: :class:`LimitsReload`,
  :class:`MappingsReload`, :class:`ScheduleReload`.
- :mod:`.slots` — the handles that outlive restarts and that operators steer:
  :class:`WorkflowSlot` / :class:`WorkflowHost`, :class:`DispatcherSlot`,
  :class:`SystemPausable`.
"""

from .from_config import build_pipeline as build_pipeline
from .from_config import config_wiring as config_wiring
from .from_config import enabled_workflows as enabled_workflows
from .from_config import entity_currencies as entity_currencies
from .from_config import erp_routes as erp_routes
from .from_config import roles as roles
from .from_config import system_settings as system_settings
from .reload_hooks import LimitsReload as LimitsReload
from .reload_hooks import MappingsReload as MappingsReload
from .reload_hooks import ScheduleReload as ScheduleReload
from .reload_hooks import register_reload_hooks as register_reload_hooks
from .slots import DispatcherSlot as DispatcherSlot
from .slots import SystemPausable as SystemPausable
from .slots import WorkflowHost as WorkflowHost
from .slots import WorkflowSlot as WorkflowSlot
from .wiring import Pipeline as Pipeline
from .wiring import assemble as assemble
from .wiring import parse_period as parse_period
from .wiring import replay_summary as replay_summary
