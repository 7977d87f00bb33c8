"""``pssync replay --journal``: replay runs created offline in the journal file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import trio

from daemon.cli.common import ExitCode
from daemon.cli.main import main
from store import EventRecord, NewRun, open_journal

WORKFLOW = "deal_to_project"
T0 = 1_767_225_600.0


def deal(number: int, key: str) -> EventRecord:
    return EventRecord(
        id=f"crm:opportunity:{number}:1",
        type="deal.won",
        key=key,
        source="crm",
        correlation_id=f"corr-{number}",
        occurred_at=T0 + number,
        recorded_at=T0 + number * 3600,
        body=b"",  # replay never decodes a trigger; the run does
    )


async def _prepare(path: Path) -> None:
    """Three won deals (two of one account), dispatched once; a fourth not yet."""
    async with open_journal(path, synchronous="NORMAL") as journal:
        events = [deal(1, "account:A"), deal(2, "account:B"), deal(3, "account:A")]
        seqs = (await journal.append(events)).seqs
        runs = [
            NewRun(workflow=WORKFLOW, key=e.key, trigger_seqs=(s,), correlation_id=e.correlation_id)
            for e, s in zip(events, seqs, strict=True)
        ]
        await journal.create_runs_and_advance(WORKFLOW, runs, seqs[-1], T0)
        await journal.append([deal(4, "account:A")])


async def _runs(path: Path) -> list:
    async with open_journal(path, synchronous="NORMAL") as journal:
        return await journal.list_runs(workflow=WORKFLOW)


@pytest.fixture
def journal_file(tmp_path: Path) -> Path:
    path = tmp_path / "journal.sqlite3"
    trio.run(_prepare, path)
    return path


def test_creates_replay_runs_for_a_key(journal_file: Path, capsys) -> None:
    status = main(
        ["replay", "--journal", str(journal_file), "--workflow", WORKFLOW, "--key", "account:A"]
    )

    assert status == ExitCode.OK
    runs = trio.run(_runs, journal_file)
    replays = [run for run in runs if run.replay]
    # Deal 4 is past the cursor: the dispatcher gives it its first run, not the replay.
    assert [(run.key, run.trigger_seqs) for run in replays] == [
        ("account:A", (1,)),
        ("account:A", (3,)),
    ]
    assert {run.status for run in replays} == {"pending"}
    out = capsys.readouterr().out
    assert "created 2 replay run(s) of deal_to_project" in out
    assert "next start" in out


def test_dry_run_writes_nothing(journal_file: Path, capsys) -> None:
    status = main(
        [
            "replay",
            WORKFLOW,
            "--journal",
            str(journal_file),
            "--from-seq",
            "1",
            "--dry-run",
            "--json",
        ]
    )

    assert status == ExitCode.OK
    result = json.loads(capsys.readouterr().out)
    assert result["dry_run"] is True
    assert result["runs"] == 3
    assert result["run_ids"] == []
    assert result["keys"] == ["account:A", "account:B"]
    assert not [run for run in trio.run(_runs, journal_file) if run.replay]


def test_since_takes_iso_time(journal_file: Path, capsys) -> None:
    # Deal 2 was recorded at T0 + 2 h, deal 3 at T0 + 3 h.
    status = main(
        [
            "replay",
            "--workflow",
            WORKFLOW,
            "--journal",
            str(journal_file),
            "--since",
            "2026-01-01T02:00:00Z",
            "--json",
        ]
    )

    assert status == ExitCode.OK
    result = json.loads(capsys.readouterr().out)
    assert result["events"] == 2
    assert len(result["run_ids"]) == 2


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--workflow", WORKFLOW], "exactly one of from_seq, since or key"),
        (["--workflow", WORKFLOW, "--key", "K", "--from-seq", "1"], "exactly one"),
        (["--workflow", "no_such_workflow", "--key", "K"], "no workflow named 'no_such_workflow'"),
        (["--workflow", WORKFLOW, "--since", "1", "--until", "2"], "--until is not supported"),
        ([WORKFLOW, "--workflow", "reconcile", "--key", "K"], "give the workflow once"),
        (["--key", "K"], "the workflow is required"),
    ],
)
def test_refuses_a_bad_selection(journal_file: Path, capsys, argv: list[str], message: str) -> None:
    status = main(["replay", "--journal", str(journal_file), *argv])

    assert status == ExitCode.USAGE
    assert message in capsys.readouterr().err
    assert not [run for run in trio.run(_runs, journal_file) if run.replay]


def test_refuses_a_missing_journal(tmp_path: Path, capsys) -> None:
    missing = tmp_path / "nothing.sqlite3"
    status = main(["replay", "--journal", str(missing), "--workflow", WORKFLOW, "--key", "K"])

    assert status == ExitCode.USAGE
    assert "no journal at" in capsys.readouterr().err
    assert not missing.exists()
