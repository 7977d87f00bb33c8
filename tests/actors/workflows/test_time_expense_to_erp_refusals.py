"""time_expense_to_erp's refusal of single entries, without a stack: which entries are
refused, and the message and amount of the one exception that names them (the stack
tests are in test_time_expense_to_erp.py)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import msgspec

from actors.messages import Money, Project, TimeEntry
from actors.workflows.time_expense_to_erp import (
    ProjectFacts,
    find_refusals,
    refusal_message,
    refused_amount,
)


def test_a_long_refusal_names_twenty_entries_and_the_detail_every_one() -> None:
    facts = ProjectFacts(
        project=Project(id="PRJ-1", name="Audit", account_id="A-1", currency="USD"),
        psa_id="7",
        time_and_materials=True,
    )
    times = [
        TimeEntry(
            id=f"T{i:02d}",
            project_id="7",
            consultant_id="C1",
            date_performed=date(2026, 1, 5),
            hours=Decimal(2),
            bill_rate=Money.of("90.00", "EUR"),
        )
        for i in range(25)
    ]
    both = msgspec.structs.replace(times[0], id="both", hours=Decimal(-1), bill_rate=None)
    good = msgspec.structs.replace(times[0], id="good", bill_rate=Money.of("150.00", "USD"))
    refusals = find_refusals(facts, [*times, both, good])
    assert [refusal.entry.id for refusal in refusals] == [e.id for e in times] + ["both"]

    message = refusal_message(facts, refusals, posted=1)

    assert message.startswith(
        "Project Audit (PRJ-1, PSA workspace 7): 26 time entries cannot be posted "
        "(the batch's other 1 entry is posted): time entry T00 of consultant C1 on "
        "2026-01-05 has a bill rate in EUR, but the project bills in USD: fix the rate "
        "card in the PSA and approve the timesheet again; time entry T01 "
    )
    assert "time entry T19 " in message
    assert "time entry T20 " not in message
    assert "; and 6 more (the detail names every one). Once the PSA has sent" in message
    assert refusals[-1].detail() == {
        "entry_id": "both",
        "consultant_id": "C1",
        "date": "2026-01-05",
        "hours": "-1",
        "reasons": [
            "has -1 hours: correct the hours in the PSA (or delete the entry) and approve "
            "the timesheet again",
            "is billable on a time-and-materials project but has no bill rate: set the "
            "consultant's rate in the PSA rate card and approve the timesheet again",
        ],
    }
    # At risk: the refused entries' billable amount only (25 x 2 h at EUR 90).
    assert refused_amount(refusals) == Money.of("4500.00", "EUR")
