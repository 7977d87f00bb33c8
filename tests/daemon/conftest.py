from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from daemon.redaction import REDACTOR

# Valid on its own: governance plus one NetSuite ERP, so each bad case below is one change.
GOVERNANCE = """
[governance.owners]
contract = "deal-desk"
project = "pmo"
time = "resourcing"
billing = "billing-ops"
master_data = "mdm"
mapping = "integration"
"""

ERP = """
[systems.erp]
kind = "erp"
vendor = "netsuite"
base_url = "https://1234567.suitetalk.api.netsuite.com"
account_id = "1234567"

[systems.erp.auth]
method = "tba"
consumer_key = "env:NS_CK"
consumer_secret = "env:NS_CS"
token_id = "env:NS_TI"
token_secret = "env:NS_TS"
"""

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "config" / "pssync.example.toml"

# The repository's mapping files: `config check` refuses a system without its vendor's.
MAPPINGS = f"""
[mappings]
directory = "{REPO / "config" / "mappings"}"
"""

BASE = GOVERNANCE + MAPPINGS + ERP


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """Each test configures logging afresh; put structlog and stdlib logging back after."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()
    root.handlers[:] = handlers
    root.setLevel(level)
    REDACTOR.clear()


@pytest.fixture
def write_config(tmp_path: Path):
    def write(text: str, name: str = "pssync.toml") -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return write
