"""The command line, called as ``main([...])``: output, errors and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import trio

from daemon.cli import main
from daemon.cli.common import ExitCode
from store import EventRecord, open_journal

from .conftest import BASE, ERP, EXAMPLE, GOVERNANCE


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == ExitCode.OK
    assert capsys.readouterr().out == "pssync 0.1.0\n"


def test_no_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == ExitCode.USAGE
    assert "the following arguments are required: COMMAND" in capsys.readouterr().err


def test_unknown_option_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "check", "--frobnicate", "x.toml"]) == ExitCode.USAGE
    assert "unrecognized arguments: --frobnicate" in capsys.readouterr().err


def test_config_check_accepts_the_example(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "check", str(EXAMPLE)]) == ExitCode.OK

    out = capsys.readouterr().out
    assert out.startswith(f"OK {EXAMPLE}: 4 systems, 7 workflows enabled\n")
    assert "erp      erp      netsuite" in out
    assert "UK01, US01" in out


def test_config_check_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "check", "--json", str(EXAMPLE)]) == ExitCode.OK

    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is True
    assert report["config"]["systems"]["billing"]["auth"]["api_key"] == "env:STRIPE_API_KEY"


def test_config_check_bad_file_prints_each_problem_and_exits_2(
    write_config, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config(BASE + '[systems.erp.limits]\nrate_per_s = "fast"\n')

    assert main(["config", "check", str(path)]) == ExitCode.USAGE

    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        f'pssync: error: {path}: systems.erp.limits.rate_per_s: expected a number, got "fast"\n'
    )


def test_config_check_reports_several_problems(
    write_config, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config(
        BASE + "[workflows.time_expense_to_erp]\nwidth = 1\n[workflows.deal_to_projct]\n"
    )

    assert main(["config", "check", str(path)]) == ExitCode.USAGE

    assert capsys.readouterr().err.splitlines() == [
        f"pssync: error: {path}: workflows.time_expense_to_erp: needs a psa system; none is "
        "configured",
        f"pssync: error: {path}: workflows.deal_to_projct: unknown workflow; known workflows: "
        "customer_master, deal_to_project, invoice_feedback, milestone_to_invoice, reconcile, "
        "time_expense_to_erp, tm_close",
    ]


def test_config_check_bad_file_json(write_config, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_config(BASE + '[log]\nformat = "text"\n')

    assert main(["config", "check", "--json", str(path)]) == ExitCode.USAGE

    assert json.loads(capsys.readouterr().out) == {
        "ok": False,
        "file": str(path),
        "errors": [
            {
                "source": str(path),
                "path": "log.format",
                "message": 'expected one of "console", "json", got "text"',
            }
        ],
    }


def test_config_check_syntax_error(write_config, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_config(GOVERNANCE + "[log\n")

    assert main(["config", "check", str(path)]) == ExitCode.USAGE

    line = GOVERNANCE.count("\n") + 1
    assert capsys.readouterr().err == (
        f"pssync: error: {path}:{line}:5: TOML syntax error: Expected ']' at the end of a table "
        "declaration\n"
    )


def test_config_check_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.toml"

    assert main(["config", "check", str(missing)]) == ExitCode.USAGE
    assert capsys.readouterr().err == (
        f"pssync: error: {missing}: cannot read: No such file or directory\n"
    )


def test_config_check_resolve_secrets(
    write_config, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_config(BASE)
    for name in ("NS_CK", "NS_CS", "NS_TI"):
        monkeypatch.setenv(name, f"value-{name}-secret")
    monkeypatch.delenv("NS_TS", raising=False)

    assert main(["config", "check", "--resolve-secrets", str(path)]) == ExitCode.USAGE
    captured = capsys.readouterr()
    assert captured.err == (
        "pssync: error: systems.erp.auth.token_secret: environment variable NS_TS is not set\n"
    )
    assert "value-NS" not in captured.out + captured.err

    monkeypatch.setenv("NS_TS", "value-NS_TS-secret")
    assert main(["config", "check", "--resolve-secrets", str(path)]) == ExitCode.OK
    assert "value-NS" not in capsys.readouterr().out


# ---------------------------------------------------------------------------- journal


def make_journal(path: Path, events: int = 3) -> None:
    async def fill() -> None:
        async with open_journal(str(path)) as journal:
            await journal.append(
                [
                    EventRecord(
                        id=f"psa:time:{n}:1",
                        type="TimeApproved",
                        key="P-1",
                        source="psa",
                        correlation_id=f"c-{n}",
                        occurred_at=0.0,
                        recorded_at=0.0,
                        body=b"\x80",
                    )
                    for n in range(events)
                ]
            )

    trio.run(fill)


def test_journal_stats_table_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    journal = tmp_path / "journal.sqlite3"
    make_journal(journal)

    assert main(["journal", "stats", "--journal", str(journal)]) == ExitCode.OK
    out = capsys.readouterr().out
    assert f"journal         {journal}" in out
    assert "TimeApproved" in out

    assert main(["journal", "stats", "--json", "--journal", str(journal)]) == ExitCode.OK
    stats = json.loads(capsys.readouterr().out)
    assert stats["max_seq"] == 3
    assert stats["events_by_type"] == {"TimeApproved": 3}


def test_journal_path_from_config(
    tmp_path: Path, write_config, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "state").mkdir()
    make_journal(tmp_path / "state" / "j.sqlite3")
    config = write_config(GOVERNANCE + '[journal]\npath = "state/j.sqlite3"\n')

    assert main(["journal", "verify", "--config", str(config)]) == ExitCode.OK
    assert capsys.readouterr().out.startswith(f"OK {tmp_path / 'state' / 'j.sqlite3'}\n")


def test_journal_verify_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    journal = tmp_path / "journal.sqlite3"
    make_journal(journal)

    assert main(["journal", "verify", "--json", "--journal", str(journal)]) == ExitCode.OK
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is True
    assert report["report"]["integrity"] == ["ok"]


def test_journal_verify_corrupt_file_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    journal = tmp_path / "journal.sqlite3"
    journal.write_bytes(b"this is not a database" * 100)

    assert main(["journal", "verify", "--journal", str(journal)]) == ExitCode.FAILED
    assert capsys.readouterr().err.startswith(f"pssync: error: {journal}")


def test_journal_backup(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    journal, copy = tmp_path / "journal.sqlite3", tmp_path / "copy.sqlite3"
    make_journal(journal)

    assert main(["journal", "backup", "--journal", str(journal), str(copy)]) == ExitCode.OK
    assert capsys.readouterr().out.startswith(f"backed up {journal} to {copy} (")
    assert main(["journal", "stats", "--json", "--journal", str(copy)]) == ExitCode.OK
    assert json.loads(capsys.readouterr().out)["max_seq"] == 3

    # the destination must not exist: a backup never overwrites
    assert main(["journal", "backup", "--journal", str(journal), str(copy)]) == ExitCode.FAILED
    assert "already exists" in capsys.readouterr().err


def test_journal_missing_file_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "none.sqlite3"

    assert main(["journal", "stats", "--journal", str(missing)]) == ExitCode.FAILED
    assert capsys.readouterr().err == f"pssync: error: {missing}: no such journal file\n"
    assert not missing.exists()


def test_journal_needs_a_source(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["journal", "stats"]) == ExitCode.USAGE
    assert "one of the arguments --journal --config is required" in capsys.readouterr().err


def test_journal_with_bad_config_is_a_config_error(
    write_config, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(GOVERNANCE + "[journal]\nbusy_timeout_ms = -1\n")

    assert main(["journal", "stats", "--config", str(config)]) == ExitCode.USAGE
    assert capsys.readouterr().err == (
        f"pssync: error: {config}: journal.busy_timeout_ms: expected an integer >= 0, got -1\n"
    )


# ---------------------------------------------------------------------------- bench


def test_bench_journal_quick_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "journal", "--quick", "--json", "--dir", str(tmp_path)]) == ExitCode.OK

    results = json.loads(capsys.readouterr().out)
    assert {(r["synchronous"], r["concurrency"]) for r in results} == {
        ("FULL", 1),
        ("FULL", 10),
        ("NORMAL", 1),
        ("NORMAL", 10),
    }
    assert all(r["events"] > 0 for r in results)
    assert list(tmp_path.iterdir()) == []  # temporary journals are removed


def test_config_check_refuses_a_vendor_without_an_adapter(tmp_path, capsys):
    path = tmp_path / "pssync.toml"
    path.write_text(
        GOVERNANCE
        + """
[systems.erp]
kind = "erp"
vendor = "oracle"
base_url = "https://acme.fa.us2.oraclecloud.com"
auth = { method = "basic", username = "pssync", password = "env:ORACLE_PASSWORD" }
"""
    )

    assert main(["config", "check", str(path)]) == 2
    assert 'systems.erp.vendor: vendor "oracle" has no adapter in this version' in (
        capsys.readouterr().err
    )


def test_config_check_refuses_mappings_the_adapters_cannot_use(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mappings = tmp_path / "mappings"
    mappings.mkdir()
    netsuite = (Path(__file__).resolve().parents[2] / "config/mappings/netsuite.toml").read_text()
    (mappings / "netsuite.toml").write_text(netsuite.replace("[entities.payment", "[entities.pay"))
    path = tmp_path / "pssync.toml"
    path.write_text(GOVERNANCE + ERP + '[mappings]\ndirectory = "mappings"\n')

    # What `pssync run` would refuse at start is refused here, naming file and entity.
    assert main(["config", "check", str(path)]) == ExitCode.USAGE
    assert capsys.readouterr().err == (
        f"pssync: error: {mappings / 'netsuite.toml'}: entities.payment: no mapping for "
        "entity 'payment', which the netsuite adapter uses (have: customer, expense_line, "
        "invoice, invoice_line, invoice_record, job, job_row, journal_entry, pay, "
        "receivable_totals, timebill, timebill_totals)\n"
    )

    (mappings / "netsuite.toml").unlink()
    assert main(["config", "check", str(path)]) == ExitCode.USAGE
    assert 'no mapping file for vendor "netsuite" (systems erp)' in capsys.readouterr().err
