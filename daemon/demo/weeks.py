"""The scenario's weekly reports, as lines while it plays and as totals at the end."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Mapping

from adapters.sandbox.scenario import WeekReport

from .calendar import BusinessCalendar
from .summary import ScenarioTotals


def describe_week(week: int, report: WeekReport) -> str:
    """One line per business week, kept above the live display."""
    spike = f", month-end spike {report.month_end_spike:,}" if report.month_end_spike else ""
    malformed = f" (+{len(report.malformed_deals)} malformed)" if report.malformed_deals else ""
    return (
        f"week {week} from {report.week_start}: {len(report.deals_won)} deals won{malformed}, "
        f"{report.time_entries_logged:,} time entries logged, "
        f"{report.time_entries_approved:,} approved{spike}, "
        f"{report.expenses_logged:,} expenses, "
        f"{len(report.milestones_completed)} milestones completed, "
        f"{len(report.invoices_paid)} invoices paid"
    )


def totals(
    reports: list[WeekReport],
    calendar: BusinessCalendar,
    fates: Mapping[str, tuple[str, int]] | None = None,
) -> ScenarioTotals:
    """The weekly reports summed for the summary (``fates``: the scenario's invoice fates)."""
    return ScenarioTotals(
        payment_fates=dict(Counter(fate for fate, _ in (fates or {}).values())),
        weeks=len(reports),
        first_day=calendar.start.isoformat(),
        last_day=(calendar.start + dt.timedelta(days=7 * len(reports) - 1)).isoformat(),
        deals_created=sum(len(r.deals_created) for r in reports),
        deals_won=sum(len(r.deals_won) + len(r.malformed_deals) for r in reports),
        malformed_deals=sum(len(r.malformed_deals) for r in reports),
        time_entries_logged=sum(r.time_entries_logged for r in reports),
        expenses_logged=sum(r.expenses_logged for r in reports),
        time_entries_approved=sum(r.time_entries_approved for r in reports),
        month_end_spike=sum(r.month_end_spike for r in reports),
        milestones_completed=sum(len(r.milestones_completed) for r in reports),
        invoices_paid=sum(len(r.invoices_paid) for r in reports),
    )
