"""What the demo reads while it runs and at the end: the journal and the sandbox.

Both readings are plain snapshots, so the live display and the summary are pure functions
of them (and tests build them by hand). The journal is read through its own read-only
SQLite connection (WAL lets it read beside the daemon's writer thread); the sandbox is
read from its in-process vendor states, the same functions its admin view serves.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import msgspec

from store.connection import connect

#: Run statuses that still need the daemon's attention (``waiting`` is parked on an
#: exception: a person's work, not backlog).
ACTIVE_STATUSES = ("pending", "running", "retry_wait")


@dataclass(frozen=True)
class ExceptionGroup:
    """Exceptions of one workflow, category, owner and currency, with their amounts."""

    workflow: str
    category: str
    owner: str
    currency: str | None
    count: int
    amount: Decimal
    status: str = "open"


@dataclass(frozen=True)
class JournalReading:
    """Counts from the journal at one instant."""

    runs: dict[str, dict[str, int]] = field(default_factory=dict)
    """workflow → status → runs."""
    exceptions: tuple[ExceptionGroup, ...] = ()
    events_by_source: dict[str, int] = field(default_factory=dict)
    events_by_type: dict[str, int] = field(default_factory=dict)
    max_seq: int = 0
    cursors: dict[str, int] = field(default_factory=dict)
    id_map: dict[tuple[str, str], int] = field(default_factory=dict)
    """(system, kind) → canonical ids mapped to that system: what pssync says it created."""
    due_runs: int = 0
    """Active runs, not held, whose next attempt is due now (or leased)."""
    held: dict[str, int] = field(default_factory=dict)
    """workflow → active runs queued behind a parked run of their key: one key's runs go
    in order, so these wait for a person to resolve that exception, not for the daemon."""

    def active(self, workflow: str | None = None) -> int:
        """Runs pending, running or waiting for a retry (of one workflow, or all)."""
        names = [workflow] if workflow is not None else list(self.runs)
        return sum(
            self.runs.get(name, {}).get(status, 0) for name in names for status in ACTIVE_STATUSES
        )

    def held_runs(self, workflow: str | None = None) -> int:
        """Active runs held behind a parked run of their key (one workflow, or all)."""
        if workflow is not None:
            return self.held.get(workflow, 0)
        return sum(self.held.values())

    def pending(self, workflow: str | None = None) -> int:
        """Active runs the daemon can get on with (not held behind an exception)."""
        return self.active(workflow) - self.held_runs(workflow)

    def undispatched(self, workflows: list[str]) -> int:
        """Events past the slowest of ``workflows``' dispatcher cursors."""
        if not workflows:
            return 0
        return max(max(0, self.max_seq - self.cursors.get(name, 0)) for name in workflows)

    def backlog(self, workflows: list[str]) -> int:
        """Runs the daemon can get on with plus events not yet turned into runs."""
        return self.pending() + self.undispatched(workflows)

    def exceptions_open(self) -> int:
        return sum(group.count for group in self.exceptions if group.status == "open")


_ACTIVE = "run.status IN ('pending', 'running', 'retry_wait')"
_HELD = (
    "EXISTS (SELECT 1 FROM runs AS parked WHERE parked.workflow = run.workflow"
    " AND parked.key = run.key AND parked.status = 'waiting' AND parked.id < run.id)"
)


def read_journal(path: str, *, now: float) -> JournalReading:
    """A :class:`JournalReading` of the journal file at ``path`` (blocking: run in a thread)."""
    conn = connect(path, readonly=True)
    try:
        return _read(conn, now)
    finally:
        conn.close()


def _read(conn: sqlite3.Connection, now: float) -> JournalReading:
    runs: dict[str, dict[str, int]] = defaultdict(dict)
    for workflow, status, count in conn.execute(
        "SELECT workflow, status, COUNT(*) FROM runs GROUP BY workflow, status"
    ):
        runs[workflow][status] = count
    held = dict(
        conn.execute(
            f"SELECT workflow, COUNT(*) FROM runs AS run WHERE {_ACTIVE} AND {_HELD}"
            " GROUP BY workflow"
        )
    )
    due = conn.execute(
        f"SELECT COUNT(*) FROM runs AS run WHERE {_ACTIVE} AND NOT {_HELD}"
        " AND (next_attempt_at <= ? OR status = 'running')",
        (now,),
    ).fetchone()[0]
    groups: dict[tuple[str, str, str, str | None, str], list[Any]] = {}
    for workflow, category, owner, currency, status, amount in conn.execute(
        "SELECT workflow, category, owner, currency, status, amount FROM exceptions"
    ):
        entry = groups.setdefault((workflow, category, owner, currency, status), [0, Decimal(0)])
        entry[0] += 1
        entry[1] += _decimal(amount)
    exceptions = tuple(
        ExceptionGroup(
            workflow=workflow,
            category=category,
            owner=owner,
            currency=currency,
            status=status,
            count=count,
            amount=amount,
        )
        for (workflow, category, owner, currency, status), (count, amount) in sorted(
            groups.items(), key=lambda item: tuple(str(part) for part in item[0])
        )
    )
    return JournalReading(
        runs=dict(runs),
        exceptions=exceptions,
        events_by_source=dict(conn.execute("SELECT source, COUNT(*) FROM events GROUP BY source")),
        events_by_type=dict(conn.execute("SELECT type, COUNT(*) FROM events GROUP BY type")),
        max_seq=conn.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()[0],
        cursors=dict(conn.execute("SELECT workflow, seq FROM cursors")),
        id_map={
            (system, kind): count
            for system, kind, count in conn.execute(
                "SELECT system, kind, COUNT(*) FROM id_map GROUP BY system, kind"
            )
        },
        due_runs=due,
        held=held,
    )


def _decimal(text: str | None) -> Decimal:
    if text is None:
        return Decimal(0)
    try:
        return Decimal(text)
    except InvalidOperation:
        return Decimal(0)


@dataclass(frozen=True)
class SandboxReading:
    """What the simulated vendors hold and saw, by vendor."""

    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    """vendor → object type → live records."""
    duplicates: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    """vendor → records sharing a source key (the admin view's duplicate detection)."""
    requests: dict[str, int] = field(default_factory=dict)
    """vendor → API requests served (admin requests excluded)."""
    throttled: dict[str, int] = field(default_factory=dict)

    def duplicate_count(self) -> int:
        return sum(len(found) for found in self.duplicates.values())


def read_sandbox(sandbox: Any) -> SandboxReading:
    """A :class:`SandboxReading` of an in-process :class:`~adapters.sandbox.Sandbox`."""
    counts: dict[str, dict[str, int]] = {}
    duplicates: dict[str, list[dict[str, Any]]] = {}
    requests: dict[str, int] = {}
    throttled: dict[str, int] = {}
    for name, vendor in sandbox.vendors.items():
        counts[name] = dict(vendor.state.counts())
        duplicates[name] = list(vendor.state.duplicates())
        injector = sandbox.injectors.get(name)
        if injector is not None:
            requests[name] = injector.stats.requests
            throttled[name] = injector.stats.throttled
    return SandboxReading(
        counts=counts, duplicates=duplicates, requests=requests, throttled=throttled
    )


def save_sandbox_counts(path: Path, before: SandboxReading, after: SandboxReading) -> None:
    """Leave the sandbox's counts (before and after the demo) and duplicates beside the
    journal: the sandbox goes away with the demo, the evidence should not."""
    payload = {
        "before": before.counts,
        "after": after.counts,
        "duplicates": after.duplicates,
        "requests": after.requests,
    }
    path.write_bytes(msgspec.json.format(msgspec.json.encode(payload)))
