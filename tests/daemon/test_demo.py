"""``pssync demo``: its readings, live display, summary and checks, and one real run."""

from __future__ import annotations

import datetime as dt
import io
import os
import re
import subprocess
import sys
from decimal import Decimal

import pytest

from daemon.cli.main import main
from daemon.demo.calendar import plan_calendar
from daemon.demo.config import demo_environment, load_demo_config, write_demo_config
from daemon.demo.progress import ProgressDisplay, ProgressView, render_line
from daemon.demo.readings import ExceptionGroup, JournalReading, SandboxReading, read_journal
from daemon.demo.runner import prepare_state_dir
from daemon.demo.summary import DemoOutcome, ScenarioTotals, build_summary, render_summary
from daemon.secrets import SecretResolver, resolve_all
from store import EventRecord, NewRun, open_journal

WORKFLOWS = ("deal_to_project", "time_expense_to_erp", "reconcile")


def journal_reading(**changes) -> JournalReading:
    """A journal after a small demo: runs of three workflows, exceptions, ids mapped."""
    values = {
        "runs": {
            "deal_to_project": {"completed": 9, "waiting": 3},
            "time_expense_to_erp": {"completed": 40, "retry_wait": 2},
            "reconcile": {"completed": 1},
        },
        "exceptions": (
            ExceptionGroup("deal_to_project", "contract", "deal-desk", "USD", 2, Decimal("1500")),
            ExceptionGroup("deal_to_project", "master_data", "mdm", "ZAR", 1, Decimal("99.50")),
            ExceptionGroup("reconcile", "billing", "billing-ops", "EUR", 1, Decimal("250")),
            ExceptionGroup(
                "deal_to_project", "contract", "deal-desk", "USD", 4, Decimal("7"), "resolved"
            ),
        ),
        "events_by_source": {"crm": 12, "psa": 700},
        "events_by_type": {"deal.won": 12, "time.approved": 700},
        "max_seq": 712,
        "cursors": dict.fromkeys(WORKFLOWS, 712),
        "id_map": {("erp", "account"): 9, ("psa", "project"): 9},
        "held": {"time_expense_to_erp": 1},
    }
    values.update(changes)
    return JournalReading(**values)


def sandbox_reading(*, customers: int = 9, duplicates: int = 0) -> SandboxReading:
    return SandboxReading(
        counts={
            "netsuite": {"customer": customers, "employee": 100},
            "kantata": {"workspaces": 9, "users": 101},
        },
        duplicates={
            "netsuite": [{"type": "customer", "source_key": "A-1", "ids": ["1", "2"]}] * duplicates
        },
        requests={"netsuite": 120, "kantata": 300},
    )


def outcome(**changes) -> DemoOutcome:
    values = {
        "journal": journal_reading(),
        "before": SandboxReading(
            counts={"netsuite": {"customer": 0, "employee": 100}, "kantata": {"workspaces": 0}},
            requests={"netsuite": 0, "kantata": 0},
        ),
        "after": sandbox_reading(),
        "journal_path": "/demo/journal.sqlite3",
        "state_dir": "/demo",
        "log_path": "/demo/daemon.log",
        "elapsed_s": 61.2,
        "scenario": ScenarioTotals(weeks=5, deals_won=30, malformed_deals=3, month_end_spike=500),
        "workflows": WORKFLOWS,
        "reconcile_period": "2026-12",
    }
    values.update(changes)
    return DemoOutcome(**values)


# ------------------------------------------------------------------------- the summary


def test_a_consistent_demo_summarises_runs_exceptions_reconciliation_and_the_journal():
    summary = build_summary(outcome())
    text = render_summary(summary)

    assert summary.ok, summary.problems
    # runs, completed, pending, parked, held behind a parked run, cancelled
    assert re.search(r"deal_to_project\s+12\s+9\s+0\s+3\s+0\s+0", text)
    assert re.search(r"time_expense_to_erp\s+42\s+40\s+1\s+0\s+1\s+0", text)
    # Open exceptions only, grouped by category and owner, money per currency.
    assert re.search(r"contract\s+deal-desk\s+2\s+1,500.00 USD", text)
    assert re.search(r"master_data\s+mdm\s+1\s+99.50 ZAR", text)
    assert "1 mismatches found for 2026-12 (1 of 1 runs completed), amount 250.00 EUR" in text
    assert re.search(r"ERP customers\s+9\s+9\s+ok", text)
    assert "duplicates found by the sandbox: 0" in text
    assert "events journaled: deal.won 12 · time.approved 700" in text
    assert "pssync journal stats --journal /demo/journal.sqlite3" in text
    assert "pssync replay --journal /demo/journal.sqlite3 --workflow deal_to_project" in text
    assert "consistent:" in text
    assert "\x1b[" not in text  # no colour unless asked


def test_a_count_that_differs_from_the_sandbox_is_a_problem_shown_in_red():
    summary = build_summary(outcome(after=sandbox_reading(customers=10)))
    text = render_summary(summary, color=True)

    assert not summary.ok
    assert summary.problems == ("ERP customers: pssync created 9, the sandbox holds 10 new",)
    assert "\x1b[31;1mDIFFERS" in text
    assert "\x1b[31;1m  ✗ ERP customers: pssync created 9, the sandbox holds 10 new" in text


def test_duplicates_a_missing_part_and_an_undrained_pipeline_are_problems():
    summary = build_summary(
        outcome(
            after=sandbox_reading(duplicates=2),
            unavailable=("reconciliation: no handler",),
            drained=False,
        )
    )

    assert summary.problems == (
        "the sandbox found 2 duplicated records",
        "not available: reconciliation: no handler",
        "the pipeline did not drain in time (1 still in the backlog)",
    )
    text = render_summary(summary)
    assert "INCONSISTENT:" in text
    assert text.count("    netsuite customer A-1: 2 records") == 2


# ------------------------------------------------------------------------- the journal


KEYS = ("D-0", "D-1", "D-2", "D-1")


async def test_read_journal_counts_runs_exceptions_events_and_mapped_ids(tmp_path):
    # Given D-0 completed, D-1 parked, D-2 pending and a second D-1 run queued behind it
    path = str(tmp_path / "journal.sqlite3")
    async with open_journal(path) as journal:
        await journal.append(
            [
                EventRecord(
                    id=f"e{number}",
                    type="deal.won",
                    key=key,
                    source="crm",
                    correlation_id=f"c{number}",
                    occurred_at=1.0,
                    recorded_at=1.0,
                )
                for number, key in enumerate(KEYS)
            ]
        )
        run_ids = await journal.create_runs(
            [
                NewRun(
                    workflow="deal_to_project",
                    key=key,
                    trigger_seqs=(number + 1,),
                    correlation_id=f"c{number}",
                )
                for number, key in enumerate(KEYS)
            ],
            now=10.0,
        )
        claimed = await journal.claim_runs(owner="me", now=10.0, lease_s=60.0, limit=2)
        await journal.complete_run(claimed[0].id, "me", now=11.0)
        await journal.park_run(
            claimed[1].id,
            "me",
            now=11.0,
            category="contract",
            exception_owner="deal-desk",
            message="no billing contact",
            amount=Decimal("1200.50"),
            currency="USD",
        )
        await journal.map_id("customer", "A-1", "erp", "101", now=12.0)
        await journal.set_cursor("deal_to_project", 3, now=12.0)

    reading = read_journal(path, now=20.0)

    assert len(run_ids) == 4
    assert reading.runs == {"deal_to_project": {"completed": 1, "waiting": 1, "pending": 2}}
    # The second D-1 run waits for a person (D-1's exception), not for the daemon.
    assert reading.held == {"deal_to_project": 1}
    assert reading.pending() == 1
    assert reading.due_runs == 1
    # One event past the cursor (seq 4) plus D-2's run.
    assert reading.backlog(["deal_to_project"]) == 2
    assert reading.exceptions == (
        ExceptionGroup(
            "deal_to_project", "contract", "deal-desk", "USD", 1, Decimal("1200.50"), "open"
        ),
    )
    assert reading.events_by_source == {"crm": 4}
    assert reading.id_map == {("erp", "customer"): 1}


# ------------------------------------------------------------------------- progress


def view(elapsed_s: float, completed: int = 9) -> ProgressView:
    journal = journal_reading(
        runs={"deal_to_project": {"completed": completed, "pending": 2}}, held={}
    )
    return ProgressView(
        elapsed_s=elapsed_s,
        phase="week 2 of 5",
        business_date="2026-12-14",
        journal=journal,
        sandbox=sandbox_reading(),
        workflows=("deal_to_project",),
    )


def test_without_a_terminal_progress_is_one_plain_line_every_interval():
    stream = io.StringIO()
    now = [0.0]
    display = ProgressDisplay(stream, tty=False, interval_s=5.0, clock=lambda: now[0])

    for moment in (0.0, 1.0, 4.9, 5.0, 7.0):
        now[0] = moment
        display.update(view(moment, completed=int(moment)))
    display.update(view(8.0, completed=8), force=True)

    lines = stream.getvalue().splitlines()
    assert lines == [
        render_line(view(0.0, completed=0)),
        render_line(view(5.0, completed=5)),
        render_line(view(8.0, completed=8)),
    ]
    assert "\x1b" not in stream.getvalue()
    assert lines[1] == (
        "[0:05] week 2 of 5 (2026-12-14): runs completed 5 pending 2 held 0 · backlog 2 · "
        "exceptions 4 · events 712 · API calls 420"
    )


def test_on_a_terminal_the_block_is_redrawn_in_place_and_notes_stay_above_it():
    stream = io.StringIO()
    display = ProgressDisplay(stream, tty=True, width=lambda: 200)

    display.update(view(1.0))
    first = stream.getvalue()
    display.note("week 3 from 2026-12-21: 5 deals won")
    display.update(view(2.0))

    block_lines = first.count("\n")
    assert first.startswith("pssync demo · week 2 of 5 · business date 2026-12-14")
    assert re.search(r"deal_to_project\s+9\s+2\s+0\s+3", first)
    assert "API calls: kantata 300 · netsuite 120" in first
    rest = stream.getvalue()[len(first) :]
    # The note clears the block (up N lines, clear), then the block is drawn again below it.
    assert rest.startswith(f"\x1b[{block_lines}F\x1b[Jweek 3 from 2026-12-21: 5 deals won\n")
    assert rest.endswith(first.replace("elapsed 0:01", "elapsed 0:02"))


def test_on_a_narrow_terminal_lines_are_cut_so_the_redraw_stays_in_place():
    stream = io.StringIO()
    display = ProgressDisplay(stream, tty=True, width=lambda: 41)

    display.update(view(1.0))
    display.update(view(2.0))

    frames = stream.getvalue().split("\x1b[J")
    assert all(len(line) <= 40 for line in frames[1].splitlines())
    assert frames[0].endswith(f"\x1b[{len(frames[1].splitlines())}F")


# ------------------------------------------------------------------------- set-up


@pytest.mark.parametrize("weeks", [1, 2, 5, 12])
def test_the_month_end_falls_late_in_the_run_when_there_is_time_to_approve(weeks):
    calendar = plan_calendar(weeks, dt.date(2026, 11, 25))
    spike_week = {1: 1, 2: 2, 5: 4, 12: 11}[weeks]
    week_start = calendar.start + dt.timedelta(days=7 * (spike_week - 1))

    assert calendar.start > dt.date(2026, 11, 25)
    assert week_start <= calendar.month_end < week_start + dt.timedelta(days=7)
    assert (calendar.month_end + dt.timedelta(days=1)).day == 1
    assert calendar.period == f"{calendar.month_end:%Y-%m}"


def test_the_built_in_config_points_at_the_sandbox_and_keeps_secrets_out_of_the_file(tmp_path):
    class Vendor:
        def __init__(self, credentials):
            self.credentials = credentials

    class Sandbox:
        vendors = {
            "salesforce": Vendor({"client_secret": "sf-secret"}),
            "kantata": Vendor({"access_token": "kt-token"}),
            "netsuite": Vendor(
                {
                    "consumer_key": "ck",
                    "consumer_secret": "cs",
                    "token_id": "ti",
                    "token_secret": "ts",
                }
            ),
            "stripe": Vendor({"api_key": "sk_test_x"}),
        }

    urls = {name: f"http://127.0.0.1:{port}" for port, name in enumerate(Sandbox.vendors, 9000)}
    path = write_demo_config(tmp_path, urls, poll_interval_s=0.5)
    config = load_demo_config(path)
    secrets = resolve_all(config, SecretResolver(demo_environment(Sandbox())))

    text = path.read_text()
    assert config.systems["crm"].base_url == "http://127.0.0.1:9000"
    assert config.systems["psa"].base_url == "http://127.0.0.1:9001/api/v1"
    assert config.systems["erp"].poll_interval_s == 0.5
    assert config.journal.path == str(tmp_path / "journal.sqlite3")
    assert not config.metrics.enabled
    assert secrets["systems.billing.auth.api_key"].reveal() == "sk_test_x"
    for value in ("sf-secret", "kt-token", "sk_test_x", "@SALESFORCE_URL@", "@POLL_S@"):
        assert value not in text


def test_the_demo_refuses_a_state_directory_that_already_holds_a_journal(tmp_path):
    from actors.errors import ConfigError

    (tmp_path / "journal.sqlite3").write_bytes(b"")

    with pytest.raises(ConfigError, match="already holds a journal"):
        prepare_state_dir(tmp_path)


# ------------------------------------------------------------------------- a real run


@pytest.mark.slow
def test_pssync_demo_one_fast_week_runs_to_a_consistent_summary(tmp_path):
    state = tmp_path / "state"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "daemon",
            "demo",
            "--weeks",
            "1",
            "--fast",
            "--state-dir",
            str(state),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )

    output = result.stdout
    assert result.returncode == 0, output + result.stderr
    assert "pssync demo — summary" in output
    assert "duplicates found by the sandbox: 0" in output
    assert "consistent:" in output
    assert "\x1b[" not in output  # not a terminal: plain lines
    # The three malformed deals are exceptions with their owners, not silent failures.
    assert re.search(r"contract\s+deal-desk@northwind.example\s+1\s+141,000.00 ZAR", output)
    assert re.search(r"master_data\s+mdm@northwind.example\s+2\s", output)
    assert re.search(r"PSA projects \(workspaces\)\s+(\d+)\s+\1\s+ok", output)
    # The journal is left behind for the offline commands the summary names.
    journal = state / "journal.sqlite3"
    assert f"pssync journal stats --journal {journal}" in output
    assert main(["journal", "stats", "--journal", str(journal)]) == 0
    replay = ["replay", "--journal", str(journal), "--workflow", "deal_to_project"]
    assert main([*replay, "--from-seq", "1", "--dry-run"]) == 0
