"""The demo's closing summary, computed from the journal and the sandbox and checked.

:func:`build_summary` compares what pssync says it created (its id map: one canonical id
per object it made in a system) with what the sandbox holds that it did not hold before
the demo, collects the sandbox's duplicate report, and lists every inconsistency as a
problem; :func:`render_summary` prints it. The demo exits 1 when there is any problem.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from ..render import table
from .readings import JournalReading, SandboxReading

_RED = "\x1b[31;1m"
_GREEN = "\x1b[32m"
_RESET = "\x1b[0m"


@dataclass(frozen=True)
class CreatedObject:
    """One kind of object only pssync creates: its id-map kind and the sandbox type."""

    system: str
    kind: str
    vendor: str
    object_type: str
    label: str


#: The objects the workflows create and map (system, id-map kind) ⇄ (vendor, sandbox type).
#: Only objects nobody else creates in the demo are compared: the scenario itself makes
#: Salesforce deals and Kantata time entries, and Stripe raises subscription invoices.
CREATED_OBJECTS: tuple[CreatedObject, ...] = (
    CreatedObject("erp", "account", "netsuite", "customer", "ERP customers"),
    CreatedObject("erp", "project", "netsuite", "job", "ERP projects (jobs)"),
    CreatedObject("erp", "time_entry", "netsuite", "timebill", "ERP time bills"),
    CreatedObject("erp", "invoice", "netsuite", "invoice", "ERP invoices"),
    CreatedObject("erp", "payment", "netsuite", "customerpayment", "ERP payments"),
    CreatedObject("psa", "account", "kantata", "workspace_groups", "PSA clients"),
    CreatedObject("psa", "project", "kantata", "workspaces", "PSA projects (workspaces)"),
    CreatedObject("billing", "account", "stripe", "customer", "billing customers"),
    CreatedObject("billing", "subscription", "stripe", "subscription", "billing subscriptions"),
)


@dataclass(frozen=True)
class CreatedCheck:
    """pssync's count of one object kind against the sandbox's."""

    item: CreatedObject
    pssync: int
    sandbox: int

    @property
    def ok(self) -> bool:
        return self.pssync == self.sandbox


@dataclass(frozen=True)
class ScenarioTotals:
    """What the business did over the demo (sums of the scenario's weekly reports)."""

    weeks: int = 0
    first_day: str = ""
    last_day: str = ""
    deals_created: int = 0
    deals_won: int = 0
    malformed_deals: int = 0
    time_entries_logged: int = 0
    expenses_logged: int = 0
    time_entries_approved: int = 0
    month_end_spike: int = 0
    milestones_completed: int = 0
    invoices_paid: int = 0
    payment_fates: dict[str, int] = field(default_factory=dict)
    """Open invoices the customers saw, by fate: on_time, late (five weeks), never."""


@dataclass(frozen=True)
class DemoOutcome:
    """The inputs of the summary."""

    journal: JournalReading
    before: SandboxReading
    after: SandboxReading
    journal_path: str
    state_dir: str
    log_path: str
    elapsed_s: float
    scenario: ScenarioTotals = ScenarioTotals()
    workflows: Sequence[str] = ()
    reconcile_period: str = ""
    reconcile_workflow: str = "reconcile"
    unavailable: Sequence[str] = ()
    """Parts of the demo that could not run (named, never replaced with made-up numbers)."""
    drained: bool = True
    created_objects: Sequence[CreatedObject] = CREATED_OBJECTS


@dataclass(frozen=True)
class Summary:
    """The summary's figures and the problems found in them."""

    outcome: DemoOutcome
    created: tuple[CreatedCheck, ...]
    problems: tuple[str, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return not self.problems


def build_summary(outcome: DemoOutcome) -> Summary:
    """Compare pssync's figures with the sandbox's; every difference is a problem."""
    created = tuple(
        CreatedCheck(
            item=item,
            pssync=outcome.journal.id_map.get((item.system, item.kind), 0),
            sandbox=outcome.after.counts.get(item.vendor, {}).get(item.object_type, 0)
            - outcome.before.counts.get(item.vendor, {}).get(item.object_type, 0),
        )
        for item in outcome.created_objects
        if item.vendor in outcome.after.counts
    )
    problems = [
        f"{check.item.label}: pssync created {check.pssync:,}, "
        f"the sandbox holds {check.sandbox:,} new"
        for check in created
        if not check.ok
    ]
    duplicates = outcome.after.duplicate_count()
    if duplicates:
        problems.append(f"the sandbox found {duplicates:,} duplicated records")
    problems.extend(f"not available: {part}" for part in outcome.unavailable)
    if not outcome.drained:
        backlog = outcome.journal.backlog(list(outcome.workflows))
        problems.append(f"the pipeline did not drain in time ({backlog:,} still in the backlog)")
    return Summary(outcome=outcome, created=created, problems=tuple(problems))


def _money(amounts: dict[str | None, Decimal]) -> str:
    parts = [
        f"{amount:,.2f} {currency}"
        for currency, amount in sorted(amounts.items(), key=_by_key)
        if currency is not None
    ]
    return ", ".join(parts) or "-"


def _by_key(item: tuple[str | None, Decimal]) -> str:
    return item[0] or ""


def _workflow_table(outcome: DemoOutcome) -> str:
    journal = outcome.journal
    names = list(outcome.workflows) or sorted(journal.runs)
    rows = []
    for name in names:
        runs = journal.runs.get(name, {})
        rows.append(
            (
                name,
                sum(runs.values()),
                runs.get("completed", 0),
                journal.pending(name),
                runs.get("waiting", 0),
                journal.held_runs(name),
                runs.get("cancelled", 0),
            )
        )
    return table(
        rows, ("workflow", "runs", "completed", "pending", "parked", "held behind", "cancelled")
    )


def _exception_table(outcome: DemoOutcome) -> str:
    grouped: dict[tuple[str, str], list[object]] = {}
    for group in outcome.journal.exceptions:
        if group.status != "open":
            continue
        entry = grouped.setdefault((group.category, group.owner), [0, defaultdict(Decimal)])
        entry[0] += group.count  # type: ignore[operator]
        entry[1][group.currency] += group.amount  # type: ignore[index]
    if not grouped:
        return "none"
    rows = [
        (category, owner, count, _money(amounts))  # type: ignore[arg-type]
        for (category, owner), (count, amounts) in sorted(grouped.items())
    ]
    return table(rows, ("category", "owner", "open", "amount at risk"))


def _reconciliation(outcome: DemoOutcome) -> list[str]:
    name = outcome.reconcile_workflow
    runs = outcome.journal.runs.get(name, {})
    if not runs:
        return ["  no reconciliation ran"]
    mismatches = [group for group in outcome.journal.exceptions if group.workflow == name]
    found = sum(group.count for group in mismatches)
    amounts: dict[str | None, Decimal] = defaultdict(Decimal)
    for group in mismatches:
        amounts[group.currency] += group.amount
    period = f" for {outcome.reconcile_period}" if outcome.reconcile_period else ""
    runs_text = f"{runs.get('completed', 0)} of {sum(runs.values())} runs completed"
    if not found:
        return [f"  PSA, ERP and billing totals agree{period} ({runs_text})"]
    return [
        f"  {found:,} mismatches found{period} ({runs_text}), amount {_money(amounts)}",
        "  (each is an open exception: pssync exceptions list --workflow reconcile)",
    ]


def _created_table(summary: Summary, color: bool) -> str:
    if not summary.created:
        return "nothing to compare"
    rows = []
    for check in summary.created:
        verdict = "ok" if check.ok else "DIFFERS"
        if color:
            verdict = f"{_GREEN if check.ok else _RED}{verdict}{_RESET}"
        rows.append((check.item.label, check.pssync, check.sandbox, verdict))
    return table(rows, ("object", "pssync created", "sandbox new", ""))


def _scenario(outcome: DemoOutcome) -> list[str]:
    s = outcome.scenario
    return [
        f"  {s.weeks} business week{'' if s.weeks == 1 else 's'} "
        f"({s.first_day} to {s.last_day}), 100 consultants",
        f"  deals won {s.deals_won:,} (of which malformed {s.malformed_deals:,}), "
        f"new open deals {s.deals_created:,}",
        f"  time entries logged {s.time_entries_logged:,}, approved {s.time_entries_approved:,}"
        f" (month-end spike {s.month_end_spike:,}), expenses {s.expenses_logged:,}",
        f"  milestones completed {s.milestones_completed:,}, invoices paid {s.invoices_paid:,}"
        f" (customers' payment habits for {sum(s.payment_fates.values()):,} invoices: "
        f"{s.payment_fates.get('on_time', 0):,} pay the next week, "
        f"{s.payment_fates.get('late', 0):,} five weeks late, "
        f"{s.payment_fates.get('never', 0):,} never)",
    ]


def render_summary(summary: Summary, *, color: bool = False) -> str:
    """The summary as text for a terminal or a log (ANSI colour only when ``color``)."""
    outcome = summary.outcome
    duplicates = outcome.after.duplicate_count()
    journal = outcome.journal_path
    lines = [
        "",
        f"pssync demo — summary (took {outcome.elapsed_s:.0f} s)",
        "",
        "Scenario",
        *_scenario(outcome),
        "",
        "Workflows (runs by status; held behind: queued after a parked run of the same key)",
        _indent(_workflow_table(outcome)),
        "",
        "Open exceptions by category and owner",
        _indent(_exception_table(outcome)),
        "",
        "Reconciliation",
        *_reconciliation(outcome),
        "",
        "Created objects: pssync's id map against the sandbox's own counts",
        _indent(_created_table(summary, color)),
        f"  duplicates found by the sandbox: {duplicates:,}",
        *_duplicates(outcome.after),
        f"  API calls: {_pairs(outcome.after.requests, outcome.before.requests)}",
        "  events journaled: "
        + (
            " · ".join(
                f"{kind} {count:,}"
                for kind, count in sorted(outcome.journal.events_by_type.items())
            )
            or "none"
        ),
        "",
        f"Left behind in {outcome.state_dir}",
        f"  journal        {journal}",
        f"  configuration  {outcome.state_dir}/pssync.toml",
        f"  daemon log     {outcome.log_path}",
        f"  sandbox counts {outcome.state_dir}/sandbox-counts.json",
        f"  pssync journal stats --journal {journal}",
        f"  pssync journal verify --journal {journal}",
        f"  pssync replay --journal {journal} --workflow deal_to_project --from-seq 1 --dry-run",
        "",
    ]
    if summary.problems:
        start, end = (_RED, _RESET) if color else ("", "")
        lines.append(f"{start}INCONSISTENT:{end}")
        lines.extend(f"{start}  ✗ {problem}{end}" for problem in summary.problems)
    else:
        start, end = (_GREEN, _RESET) if color else ("", "")
        lines.append(f"{start}consistent: pssync's figures match the sandbox, no duplicates{end}")
    return "\n".join(lines) + "\n"


_SHOWN_DUPLICATES = 5


def _duplicates(after: SandboxReading) -> list[str]:
    found = [
        (vendor, duplicate)
        for vendor, listed in sorted(after.duplicates.items())
        for duplicate in listed
    ]
    lines = [
        f"    {vendor} {item.get('type')} {item.get('source_key')}: "
        f"{len(item.get('ids', ())):,} records"
        for vendor, item in found[:_SHOWN_DUPLICATES]
    ]
    if len(found) > _SHOWN_DUPLICATES:
        lines.append(f"    … and {len(found) - _SHOWN_DUPLICATES:,} more (sandbox-counts.json)")
    return lines


def _pairs(after: dict[str, int], before: dict[str, int]) -> str:
    return (
        " · ".join(
            f"{name} {count - before.get(name, 0):,}" for name, count in sorted(after.items())
        )
        or "none"
    )


def _indent(text: str) -> str:
    return "\n".join(
        f"  {line}" if line and not line.startswith("  ") else line for line in text.splitlines()
    )
