"""`pssync sandbox`: settings file errors, and a real process answering HTTP on loopback."""

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from actors.errors import ConfigError
from daemon.cli import main
from daemon.cli.sandbox_cmd import load_sandbox_config

EXAMPLE = Path(__file__).parents[2] / "config" / "sandbox.example.toml"


def test_example_settings_load_with_paths_relative_to_the_file():
    config = load_sandbox_config(str(EXAMPLE))

    assert config.seed == 7
    assert config.faults["netsuite"].error_rate == 0.02
    assert config.persist_path == str(EXAMPLE.parent.resolve() / "sandbox-state.json")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('seed = "seven"', 'seed: expected an integer, got "seven"'),
        ("[faults.stripe]\nerror_rat = 0.1", "faults.stripe.error_rat: unknown key"),
        ("colour = 1", "colour: unknown key"),
    ],
)
def test_bad_settings_name_the_key(tmp_path, text, message):
    path = tmp_path / "sandbox.toml"
    path.write_text(text)

    with pytest.raises(ConfigError) as caught:
        load_sandbox_config(str(path))

    assert message in str(caught.value)
    assert str(caught.value).startswith(str(path))


def test_cli_reports_a_bad_settings_file_with_exit_2(tmp_path, capsys):
    path = tmp_path / "sandbox.toml"
    path.write_text("vendors = 3")

    assert main(["sandbox", "--config", str(path)]) == 2
    assert "vendors: expected an array" in capsys.readouterr().err


@pytest.mark.slow
def test_sandbox_process_serves_every_vendor_and_stops_on_sigterm():
    process = subprocess.Popen(
        [sys.executable, "-m", "daemon", "sandbox", "--ephemeral-ports"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        urls: dict[str, str] = {}
        assert process.stdout is not None
        for line in process.stdout:  # the banner comes before "serving"
            if match := re.match(r"\s+(\w+)\s+(http://127\.0\.0\.1:\d+)/", line):
                urls[match[1]] = match[2]
            if line.startswith("sandbox: serving"):
                break
        assert sorted(urls) == ["kantata", "netsuite", "salesforce", "stripe"]

        with httpx.Client(timeout=10) as client:
            stripe = client.get(f"{urls['stripe']}/v1/customers", auth=("sk_test_x", ""))
            kantata = client.get(f"{urls['kantata']}/api/v1/users.json")
            for vendor, url in urls.items():
                counts = client.get(f"{url}/_sandbox/counts")
                assert counts.status_code == 200, vendor
        assert stripe.status_code == 401
        assert stripe.json()["error"]["type"] == "invalid_request_error"
        assert kantata.status_code == 401
        assert kantata.json()["errors"][0]["type"] == "oauth"
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=20)
    assert process.returncode == 0, output
    assert "sandbox: stopped" in output
