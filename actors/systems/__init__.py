"""System actors: one per configured system, executing its commands and polling its feeds.

:func:`build_systems` wires every system for the daemon; :func:`execute` and friends ask a
system's :class:`SystemActor`; each :class:`Poller` moves one change feed into the journal.
"""

from .actor import SystemActor as SystemActor
from .control import FeedState as FeedState
from .control import FeedStatus as FeedStatus
from .control import SystemControl as SystemControl
from .control import SystemStatus as SystemStatus
from .lanes import LaneQueue as LaneQueue
from .messages import ExecuteCommand as ExecuteCommand
from .messages import GetSystemStatus as GetSystemStatus
from .messages import PauseSystem as PauseSystem
from .messages import QueryReceivables as QueryReceivables
from .messages import QueryTotals as QueryTotals
from .messages import ReceivablesNotOffered as ReceivablesNotOffered
from .messages import ResumeSystem as ResumeSystem
from .messages import SystemRequest as SystemRequest
from .messages import execute as execute
from .messages import pause_system as pause_system
from .messages import query_receivables as query_receivables
from .messages import query_totals as query_totals
from .messages import resume_system as resume_system
from .messages import system_status as system_status
from .poller import Backlog as Backlog
from .poller import Poller as Poller
from .poller import PollSettings as PollSettings
from .records import event_record as event_record
from .wiring import Systems as Systems
from .wiring import SystemSettings as SystemSettings
from .wiring import build_systems as build_systems
