"""Store-level records: what goes into and comes out of the journal.

The store never sees message classes. An event is an opaque ``body`` (the msgpack of the
envelope) plus the few envelope fields the journal indexes or reports on. All times are
epoch seconds as ``float``; money is ``Decimal`` and is stored as TEXT, never as REAL.

Records do not forbid unknown fields, and every new field gets a default, so that an
older reader can decode what a newer writer produced.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

import msgspec

RunStatus = Literal["pending", "running", "retry_wait", "waiting", "completed", "cancelled"]
"""``pending``: ready once ``next_attempt_at`` has passed; ``running``: leased to a claimer;
``retry_wait``: failed retryably, claimable again at ``next_attempt_at``; ``waiting``: parked
on an open exception; ``completed`` and ``cancelled`` are final."""

UNFINISHED_STATUSES: tuple[str, ...] = ("pending", "running", "retry_wait", "waiting")
FINAL_STATUSES: tuple[str, ...] = ("completed", "cancelled")

StepStatus = Literal["completed", "failed"]
ExceptionStatus = Literal["open", "resolved", "retry"]


class EventRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One event as the journal stores it; ``seq`` is set by the journal on append.

    The field order up to ``body`` is the INSERT column order (the append path uses
    ``msgspec.structs.astuple``): add new fields after ``seq`` and extend the insert.
    """

    id: str
    type: str
    key: str
    source: str
    correlation_id: str
    causation_id: str | None = None
    occurred_at: float
    recorded_at: float
    schema_version: int = 1
    body: bytes = b""
    seq: int | None = None


class AppendResult(msgspec.Struct, frozen=True):
    """Outcome of one append: per input record, its ``seq`` and whether it was new.

    A duplicate (an id already in the journal, or repeated within the same append) gets the
    ``seq`` of the row that was there first and ``new=False``.
    """

    seqs: tuple[int, ...]
    new: tuple[bool, ...]

    @property
    def new_count(self) -> int:
        """How many of the appended records were not in the journal before."""
        return sum(self.new)


class NewRun(msgspec.Struct, frozen=True, kw_only=True):
    """A run to create: one workflow over one triggering event or a group of one key's."""

    workflow: str
    key: str
    trigger_seqs: tuple[int, ...]
    correlation_id: str
    replay: bool = False
    next_attempt_at: float | None = None


class RunRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A workflow run as stored. ``attempts`` counts claims, including lease expiries;
    while a run is ``running`` its ``next_attempt_at`` is its lease expiry."""

    id: int
    workflow: str
    key: str
    trigger_seqs: tuple[int, ...]
    status: str
    attempts: int
    next_attempt_at: float
    lease_owner: str | None
    lease_expires_at: float | None
    correlation_id: str
    replay: bool
    last_error: str | None
    created_at: float
    updated_at: float


class StepRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A memoised step result of a run."""

    run_id: int
    name: str
    status: str
    result: bytes
    recorded_at: float


class ExceptionRecord(msgspec.Struct, frozen=True, kw_only=True):
    """An item on the exception queue: something a person has to look at."""

    id: int
    run_id: int | None
    workflow: str
    category: str
    owner: str
    amount: Decimal | None
    currency: str | None
    message: str
    detail: bytes
    correlation_id: str
    status: str
    opened_at: float
    updated_at: float
    resolved_at: float | None
    resolved_by: str | None
    resolution: str | None


class ExceptionCount(msgspec.Struct, frozen=True, kw_only=True):
    """Exceptions of one workflow and category (``Journal.count_exceptions``)."""

    workflow: str
    category: str
    count: int
    oldest_opened_at: float
    money_at_risk: dict[str, Decimal] = msgspec.field(default_factory=dict)
    """Currency -> the sum of the absolute amounts (a credit at risk is at risk too);
    exceptions without an amount count but add no money."""


class CommitBatch(msgspec.Struct, frozen=True, kw_only=True):
    """One successful group commit, as ``Journal.on_commit`` callbacks see it."""

    requests: int
    """Write requests the transaction carried (its batch size)."""
    events: int
    """New events it appended (duplicates skipped)."""
    duration_s: float
    """From ``BEGIN IMMEDIATE`` to the end of ``COMMIT`` (the fsync included)."""


class CommitStats(msgspec.Struct, frozen=True, kw_only=True):
    """Group-commit statistics of one open journal since it was opened.

    ``commits`` successful transactions carried ``requests`` write requests, among them
    ``events`` new events; ``checkpoints`` counts PASSIVE and TRUNCATE checkpoints, of
    which ``truncations`` were forced because readers starved the WAL.
    """

    commits: int
    requests: int
    events: int
    failed_commits: int
    checkpoints: int
    truncations: int
    mean_batch_size: float
    """Mean number of write requests committed per transaction."""


class Problem(msgspec.Struct, frozen=True):
    """One failed check of ``verify``: which check, and what it found."""

    check: str
    detail: str


class VerifyReport(msgspec.Struct, frozen=True, kw_only=True):
    """Result of ``verify``: SQLite's own integrity check plus the journal's invariants."""

    path: str
    ok: bool
    """True when SQLite reports ``ok`` and no invariant is violated."""
    integrity: tuple[str, ...]
    problems: tuple[Problem, ...]
    checks: tuple[str, ...]


class JournalStats(msgspec.Struct, frozen=True, kw_only=True):
    """Sizes and counts of a journal file."""

    path: str
    schema_version: int
    file_bytes: int
    wal_bytes: int
    page_size: int
    page_count: int
    freelist_count: int
    max_seq: int
    tables: dict[str, int]
    events_by_type: dict[str, int]
    runs_by_status: dict[str, int]
    exceptions_by_status: dict[str, int]


class BackupReport(msgspec.Struct, frozen=True, kw_only=True):
    """Result of an online backup."""

    source: str
    destination: str
    bytes: int
    pages: int
