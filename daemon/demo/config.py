"""The configuration ``pssync demo`` runs the daemon with, built in.

:data:`TEMPLATE` is ``config/pssync.sandbox.toml`` at the demo's pace: the four simulated
vendors on the loopback ports the demo bound, short poll intervals and backoffs (a business
week passes in seconds), state in the demo's throwaway directory. :func:`write_demo_config`
fills in its ``@…@`` placeholders and writes ``<state dir>/pssync.toml`` — left behind
with the journal, so ``pssync journal stats --config`` works on it afterwards — and
:func:`load_demo_config` loads that file the way ``pssync run`` would.

Secrets are ``env:`` references resolved from :func:`demo_environment`, a mapping the demo
builds from the sandbox's published demo credentials — never from the process's
environment, and never printed.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..config import Config
from ..config_load import load_config

# fmt: off
TEMPLATE = """\
# Written by `pssync demo` (daemon/demo/config.py) into its state directory and loaded from
# there. It is config/pssync.sandbox.toml with the demo's pace: the four simulated vendors on the
# loopback ports the demo bound, short poll intervals and backoffs (a business week passes
# in a few seconds), state in the demo's throwaway directory. Secrets are env: references
# that the demo resolves from its own environment mapping, never from the process's.

[journal]
path = "journal.sqlite3"              # relative to this file: the demo's state directory
synchronous = "NORMAL"                # demo data: speed over surviving a power cut

[control]
socket_path = "@CONTROL_SOCKET@"

[metrics]
enabled = false                       # nothing scrapes a demo; keeps port 9464 free

[log]
level = "info"
format = "json"                       # into <state dir>/daemon.log, not the terminal

[mappings]
directory = "@MAPPINGS@"

# --------------------------------------------------------------------------- systems

[systems.crm]
kind = "crm"
vendor = "salesforce"
base_url = "@SALESFORCE_URL@"
api_version = "v66.0"
poll_interval_s = @POLL_S@

[systems.crm.auth]
method = "client_credentials"
client_id = "@SALESFORCE_CLIENT_ID@"
client_secret = "env:PSSYNC_DEMO_SALESFORCE_CLIENT_SECRET"

[systems.crm.limits]
rate_per_s = 50
burst = 50
max_concurrency = 8
daily_quota = 100000
quota_reserve_fraction = 0.1

[systems.crm.options]
overlap_s = 60

[systems.psa]
kind = "psa"
vendor = "kantata"
base_url = "@KANTATA_URL@/api/v1"
poll_interval_s = @POLL_S@
auth = { method = "bearer", token = "env:PSSYNC_DEMO_KANTATA_TOKEN" }

[systems.psa.limits]
rate_per_s = 50                       # the demo's sandbox allows 60/s, burst 120
burst = 100
max_concurrency = 8

[systems.psa.options]
per_page = 200

[systems.psa.options.templates]
implementation = "Implementation template"
advisory_retainer = "Advisory retainer template"
managed_services = "Managed services template"

[systems.erp]
kind = "erp"
vendor = "netsuite"
base_url = "@NETSUITE_URL@"
account_id = "@NETSUITE_ACCOUNT@"
poll_interval_s = @POLL_S@

[systems.erp.auth]
method = "tba"
consumer_key = "env:PSSYNC_DEMO_NETSUITE_CONSUMER_KEY"
consumer_secret = "env:PSSYNC_DEMO_NETSUITE_CONSUMER_SECRET"
token_id = "env:PSSYNC_DEMO_NETSUITE_TOKEN_ID"
token_secret = "env:PSSYNC_DEMO_NETSUITE_TOKEN_SECRET"

[systems.erp.limits]
rate_per_s = 50
burst = 50
max_concurrency = 4                   # under the sandbox account's concurrency limit of 5

[systems.erp.legal_entities.PSF-US]
erp_id = "1"
currency = "USD"

[systems.erp.legal_entities.PSF-UK]
erp_id = "2"
currency = "GBP"

[systems.erp.legal_entities.PSF-EU]
erp_id = "3"
currency = "EUR"

[systems.erp.options]
currencies = { USD = "1", GBP = "2", CAD = "3", EUR = "4" }
departments = { Consulting = "1", Delivery = "2" }
classes = { Advisory = "1", Implementation = "2" }
locations = { "New York" = "1", London = "2" }
time_item_id = "1"
invoice_item_id = "1"
milestone_item_id = "2"
expense_accounts = { travel = "6", meals = "7" }
default_expense_account_id = "8"
reimbursement_account_id = "3"
receivables_account_id = "2"
void_account_id = "4"
write_off_account_id = "7"

[systems.billing]
kind = "billing"
vendor = "stripe"
base_url = "@STRIPE_URL@"
api_version = "2024-06-20"
poll_interval_s = @POLL_S@
auth = { method = "api_key", api_key = "env:PSSYNC_DEMO_STRIPE_API_KEY" }

[systems.billing.limits]
rate_per_s = 20                       # Stripe test mode allows 25/s
burst = 20
max_concurrency = 8

[systems.billing.options]
days_until_due = 30

# --------------------------------------------------------------------------- workflows
# Short backoffs: a run that meets a throttle retries within the demo, not minutes later.

[workflows.deal_to_project]
width = 8
max_attempts = 4
backoff = { initial_s = 0.2, max_s = 2 }

[workflows.time_expense_to_erp]
width = 4
max_batch = 500
max_attempts = 4
backoff = { initial_s = 0.2, max_s = 2 }

[workflows.milestone_to_invoice]
width = 4
max_attempts = 4
backoff = { initial_s = 0.2, max_s = 2 }

[workflows.invoice_feedback]
width = 8
max_attempts = 4
backoff = { initial_s = 0.2, max_s = 2 }

[workflows.customer_master]
width = 4
systems = ["crm", "erp", "billing"]
max_attempts = 4
backoff = { initial_s = 0.2, max_s = 2 }

[workflows.reconcile]
interval_s = 86400                    # the demo asks for its reconciliation itself
max_attempts = 3
backoff = { initial_s = 0.2, max_s = 2 }

[workflows.tm_close]
interval_s = 3600                     # the daemon's wall clock, not the business one:
                                      # it closes a real past month (no drafts of the demo)
close_after_days = 3
max_attempts = 3
backoff = { initial_s = 0.2, max_s = 2 }

# --------------------------------------------------------------------------- governance

[governance.owners]
contract = "deal-desk@northwind.example"
project = "pmo@northwind.example"
time = "resource-management@northwind.example"
billing = "billing-ops@northwind.example"
master_data = "mdm@northwind.example"
mapping = "integration-team@northwind.example"

[governance.customer_master]
name = "crm"
parent_account = "crm"
billing_address = "erp"
tax_id = "erp"
payment_terms = "erp"
invoice_email = "billing"
"""
# fmt: on

#: Placeholder → sandbox vendor whose base URL replaces it.
_URL_PLACEHOLDERS = {
    "@SALESFORCE_URL@": "salesforce",
    "@KANTATA_URL@": "kantata",
    "@NETSUITE_URL@": "netsuite",
    "@STRIPE_URL@": "stripe",
}

# A Unix socket path must fit sun_path (108 bytes on Linux, with its terminating NUL).
_MAX_SOCKET_PATH = 100


def mappings_directory() -> Path:
    """The field mappings of the checkout pssync runs from (``config/mappings``)."""
    return Path(__file__).resolve().parents[2] / "config" / "mappings"


def demo_environment(sandbox: Any) -> dict[str, str]:
    """The env: secrets of :data:`TEMPLATE`, from the sandbox vendors' demo credentials."""
    credentials = {name: vendor.credentials for name, vendor in sandbox.vendors.items()}
    salesforce = credentials.get("salesforce", {})
    netsuite = credentials.get("netsuite", {})
    environ = {
        "PSSYNC_DEMO_SALESFORCE_CLIENT_SECRET": salesforce.get("client_secret", ""),
        "PSSYNC_DEMO_KANTATA_TOKEN": credentials.get("kantata", {}).get("access_token", ""),
        "PSSYNC_DEMO_NETSUITE_CONSUMER_KEY": netsuite.get("consumer_key", ""),
        "PSSYNC_DEMO_NETSUITE_CONSUMER_SECRET": netsuite.get("consumer_secret", ""),
        "PSSYNC_DEMO_NETSUITE_TOKEN_ID": netsuite.get("token_id", ""),
        "PSSYNC_DEMO_NETSUITE_TOKEN_SECRET": netsuite.get("token_secret", ""),
        "PSSYNC_DEMO_STRIPE_API_KEY": credentials.get("stripe", {}).get("api_key", ""),
    }
    # Empty values would fail as "is not set"-like errors anyway; drop them for a clear one.
    return {name: value for name, value in environ.items() if value}


#: The sandbox's identifiers for seed 0 (used when a vendor does not publish its own).
DEFAULT_IDENTIFIERS = {
    "salesforce_client_id": "3MVG9pssync.sandbox.consumer.key",
    "netsuite_account_id": "1234567_SB1",
}


def sandbox_identifiers(sandbox: Any) -> dict[str, str]:
    """The Salesforce client id and NetSuite account id the sandbox's vendors publish."""

    def published(vendor: str, key: str) -> str | None:
        found = sandbox.vendors.get(vendor)
        return found.credentials.get(key) if found is not None else None

    identifiers = {
        "salesforce_client_id": published("salesforce", "client_id"),
        "netsuite_account_id": published("netsuite", "account_id"),
    }
    return {name: value for name, value in identifiers.items() if value}


def control_socket_path(state_dir: Path) -> str:
    """``<state dir>/control.sock``, or a short temporary path when that is too long."""
    path = state_dir / "control.sock"
    if len(os.fsencode(path)) <= _MAX_SOCKET_PATH:
        return str(path)
    return str(Path(tempfile.mkdtemp(prefix="pssync-demo-")) / "control.sock")


def render_demo_config(
    base_urls: Mapping[str, str],
    *,
    control_socket: str,
    poll_interval_s: float = 1.0,
    mappings: Path | None = None,
    identifiers: Mapping[str, str] | None = None,
) -> str:
    """:data:`TEMPLATE` with the sandbox's base URLs, the socket and the poll interval;
    ``identifiers`` are the sandbox's account id and client id (:func:`sandbox_identifiers`:
    not secrets, but they follow the seed)."""
    ids = {**DEFAULT_IDENTIFIERS, **(identifiers or {})}
    text = TEMPLATE
    for placeholder, vendor in _URL_PLACEHOLDERS.items():
        text = text.replace(placeholder, base_urls[vendor].rstrip("/"))
    return (
        text.replace("@CONTROL_SOCKET@", control_socket)
        .replace("@MAPPINGS@", str(mappings or mappings_directory()))
        .replace("@POLL_S@", repr(float(poll_interval_s)))
        .replace("@SALESFORCE_CLIENT_ID@", ids["salesforce_client_id"])
        .replace("@NETSUITE_ACCOUNT@", ids["netsuite_account_id"])
    )


def write_demo_config(
    state_dir: Path,
    base_urls: Mapping[str, str],
    *,
    poll_interval_s: float = 1.0,
    identifiers: Mapping[str, str] | None = None,
) -> Path:
    """Write the demo's configuration into ``state_dir``; its path."""
    path = state_dir / "pssync.toml"
    path.write_text(
        render_demo_config(
            base_urls,
            control_socket=control_socket_path(state_dir),
            poll_interval_s=poll_interval_s,
            identifiers=identifiers,
        ),
        encoding="utf-8",
    )
    return path


def load_demo_config(path: Path) -> Config:
    """Load the written configuration as ``pssync run --config`` would."""
    return load_config(path, environ={})
