"""The journal: SQLite in WAL mode behind one writer thread. The truth of pssync.

``async with open_journal(path) as journal:`` is the way in; the records below are what
goes in and comes out. ``journal_stats``, ``verify_journal`` and ``backup_journal`` work
on a file without opening it for writing (the CLI's ``pssync journal …``).
"""

from .bench import BenchResult as BenchResult
from .bench import IdLayout as IdLayout
from .bench import bench_append as bench_append
from .bench import format_table as format_table
from .connection import Synchronous as Synchronous
from .journal import Journal as Journal
from .journal import open_journal as open_journal
from .offline import backup_journal as backup_journal
from .offline import journal_stats as journal_stats
from .offline import verify_journal as verify_journal
from .records import FINAL_STATUSES as FINAL_STATUSES
from .records import UNFINISHED_STATUSES as UNFINISHED_STATUSES
from .records import AppendResult as AppendResult
from .records import BackupReport as BackupReport
from .records import CommitBatch as CommitBatch
from .records import CommitStats as CommitStats
from .records import EventRecord as EventRecord
from .records import ExceptionCount as ExceptionCount
from .records import ExceptionRecord as ExceptionRecord
from .records import JournalStats as JournalStats
from .records import NewRun as NewRun
from .records import Problem as Problem
from .records import RunRecord as RunRecord
from .records import RunStatus as RunStatus
from .records import StepRecord as StepRecord
from .records import VerifyReport as VerifyReport
from .schema import SCHEMA_VERSION as SCHEMA_VERSION
from .writer import CheckpointPolicy as CheckpointPolicy
