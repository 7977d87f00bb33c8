"""The workflow engine: durable, replayable workflows over the journal (DESIGN §6).

- :class:`WorkflowSpec` declares a workflow; :data:`REGISTRY` holds them by name.
- :class:`Dispatcher` turns journal events into runs (one per event, or per group of
  one key's events for batching workflows) and moves each workflow's cursor with them.
- :class:`WorkflowRunner` executes one workflow's runs under leases, per key in order
  and across keys in parallel, with durable steps (:class:`RunContext`), retries with
  backoff, and exceptions for what it cannot do by itself.
- :func:`replay` re-runs a workflow over part of its history.
"""

from .context import RunContext as RunContext
from .context import WorkflowFailure as WorkflowFailure
from .context import idempotency_key as idempotency_key
from .deps import NoSla as NoSla
from .deps import SlaRecorder as SlaRecorder
from .deps import WorkflowDeps as WorkflowDeps
from .dispatcher import Dispatcher as Dispatcher
from .dispatcher import Enabled as Enabled
from .dispatcher import group_runs as group_runs
from .replay import ReplayResult as ReplayResult
from .replay import ReplaySelection as ReplaySelection
from .replay import plan_replay as plan_replay
from .replay import replay as replay
from .replay import select_events as select_events
from .runner import ATTEMPTS_STEP as ATTEMPTS_STEP
from .runner import RunOutcome as RunOutcome
from .runner import WorkflowRunner as WorkflowRunner
from .runner import default_owner as default_owner
from .spec import CATEGORIES as CATEGORIES
from .spec import REGISTRY as REGISTRY
from .spec import BackoffPolicy as BackoffPolicy
from .spec import Category as Category
from .spec import Registry as Registry
from .spec import WorkflowSettings as WorkflowSettings
from .spec import WorkflowSpec as WorkflowSpec
from .spec import exception_owners as exception_owners
from .wakeup import Wakeup as Wakeup
