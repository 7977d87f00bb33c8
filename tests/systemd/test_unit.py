"""systemd/pssync.service: the commands .ci/checks-ops.sh runs, and the settings that matter.

systemd-analyze verify insists that ExecStart= binaries exist, so it checks a copy of the
unit whose /opt/pssync/venv/bin/pssync points at this checkout's pssync, nothing else
changed. Skipped only where systemd-analyze is missing.
"""

from __future__ import annotations

import ctypes
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "systemd" / "pssync.service"
SYSUSERS = ROOT / "systemd" / "pssync.sysusers.conf"
EXAMPLE = ROOT / "config" / "pssync.example.toml"
INSTALLED = "/opt/pssync/venv/bin/pssync"
#: systemd-analyze security's x10 scale: 20 means "2.0". The unit scores 1.3.
SECURITY_THRESHOLD = 20

SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="systemd-analyze not installed")


def settings() -> dict[str, list[str]]:
    """``[Section]Key`` → every value, repeated keys kept in order (configparser would
    reject the repeated keys systemd allows)."""
    found: dict[str, list[str]] = {}
    section = ""
    for line in UNIT.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            section = line
            continue
        key, _, value = line.partition("=")
        found.setdefault(f"{section}{key}", []).append(value)
    return found


@pytest.fixture
def checkable_unit(tmp_path: Path) -> Path:
    pssync = Path(sys.executable).with_name("pssync")
    assert pssync.exists(), "install the project into its venv (make install)"
    copy = tmp_path / "pssync.service"
    copy.write_text(UNIT.read_text().replace(INSTALLED, str(pssync)))
    return copy


@needs_analyze
def test_unit_passes_systemd_analyze_verify(checkable_unit: Path) -> None:
    result = subprocess.run(
        [SYSTEMD_ANALYZE, "verify", "--recursive-errors=no", "--man=no", str(checkable_unit)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stderr.strip() == "", result.stderr


@needs_analyze
def test_unit_security_exposure_is_below_threshold(checkable_unit: Path) -> None:
    result = subprocess.run(
        [
            SYSTEMD_ANALYZE,
            "security",
            "--offline=true",
            "--no-pager",
            f"--threshold={SECURITY_THRESHOLD}",
            str(checkable_unit),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    score = re.search(r"Overall exposure level for pssync\.service: ([\d.]+)", result.stdout)
    assert score is not None, result.stdout
    assert float(score[1]) * 10 <= SECURITY_THRESHOLD


def test_unit_has_the_required_settings() -> None:
    unit = settings()

    def one(key: str) -> str:
        [value] = unit[f"[Service]{key}"]
        return value

    assert one("Type") == "notify"
    assert one("ExecStart") == f"{INSTALLED} run --config ${{CONFIGURATION_DIRECTORY}}/pssync.toml"
    assert one("ExecReload").startswith(f"{INSTALLED} reload --config ")
    assert one("Restart") == "on-failure"
    assert one("RestartPreventExitStatus") == "2"  # EXIT_CONFIG in daemon/service.py
    assert one("WatchdogSec")
    assert one("TimeoutStopSec")
    assert one("User") == "pssync"
    for key in ("StateDirectory", "RuntimeDirectory", "ConfigurationDirectory"):
        assert one(key) == "pssync"
    assert one("ProtectSystem") == "strict"
    assert one("RestrictAddressFamilies") == "AF_UNIX AF_INET AF_INET6"
    assert unit["[Service]SystemCallFilter"][0] == "@system-service"
    for key in ("ProtectHome", "PrivateTmp", "NoNewPrivileges", "MemoryDenyWriteExecute"):
        assert one(key) == "yes"
    assert one("MemoryMax")
    assert one("CapabilityBoundingSet") == ""
    # Secrets never in Environment=.
    assert not any(
        "KEY" in v or "TOKEN" in v or "SECRET" in v for v in unit.get("[Service]Environment", [])
    )


def test_load_credential_matches_the_example_config() -> None:
    wanted = set(re.findall(r'"credential:([A-Za-z0-9_.-]+)"', EXAMPLE.read_text()))
    loaded = {v.split(":", 1)[0] for v in settings()["[Service]LoadCredential"]}
    assert wanted
    assert loaded == wanted


def test_sysusers_declares_the_user_and_operator_group() -> None:
    lines = [
        line.split()[:3]
        for line in SYSUSERS.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert ["u", "pssync", "-"] in lines
    assert ["g", "pssync-operators", "-"] in lines
    assert ["m", "pssync", "pssync-operators"] in lines
    assert settings()["[Service]SupplementaryGroups"] == ["pssync-operators"]


def _mdwe_available() -> bool:
    """PR_SET_MDWE (Linux ≥ 6.3) is what MemoryDenyWriteExecute=yes enforces."""
    if sys.platform != "linux":
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    return libc.prctl(66, 0, 0, 0, 0) >= 0  # PR_GET_MDWE


MDWE_CHILD = """
import ctypes, mmap, sys
libc = ctypes.CDLL(None, use_errno=True)
assert libc.prctl(65, 1, 0, 0, 0) == 0  # PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN
try:
    mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    sys.exit("W+X mapping was allowed: MDWE not in force")
except OSError:
    pass
import sqlite3, trio, httpx, msgspec, structlog, hypercorn.trio, prometheus_client
from cryptography.hazmat.primitives.asymmetric import rsa
import daemon.cli, daemon.service, daemon.metrics_server, adapters.auth, store
callback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int)(lambda x: x + 1)
assert callback(41) == 42
rsa.generate_private_key(public_exponent=65537, key_size=2048)
sqlite3.connect(":memory:").execute("CREATE TABLE t (x)")
async def main():
    async with trio.open_nursery() as nursery:
        nursery.start_soon(trio.sleep, 0)
    await trio.to_thread.run_sync(lambda: None)
trio.run(main)
print("ok")
"""


@pytest.mark.skipif(not _mdwe_available(), reason="kernel has no PR_SET_MDWE (Linux < 6.3)")
def test_python_stack_runs_without_writable_executable_memory() -> None:
    """Why MemoryDenyWriteExecute=yes is kept: CPython, trio, sqlite3, httpx, cryptography
    and ctypes callbacks all work with W+X mappings refused (the kernel's MDWE, the same
    rule systemd applies with a seccomp filter)."""
    result = subprocess.run(
        [sys.executable, "-c", MDWE_CHILD],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "ok"
