"""Configuration: every error names the dotted key path and what was expected."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest
from msgspec.structs import fields

from actors.errors import ConfigError
from adapters.http import HttpConfig
from adapters.kantata import KantataOptions
from adapters.netsuite import NetSuiteOptions
from adapters.salesforce import SalesforceOptions
from adapters.stripe import StripeOptions
from daemon.config import (
    Config,
    HttpSettings,
    KantataSystem,
    NetSuiteSystem,
    NetSuiteTba,
    SalesforceSystem,
    StripeSystem,
    schedule_interval_s,
)
from daemon.config_load import load_config, parse_config
from daemon.errors import ConfigErrors, config_problems
from daemon.secrets import SecretRef

from .conftest import BASE, EXAMPLE, GOVERNANCE

SF = """
[systems.crm]
kind = "crm"
vendor = "salesforce"
base_url = "https://acme.my.salesforce.com"
"""
SF_AUTH = 'auth = { method = "client_credentials", client_id = "app", client_secret = %s }\n'
PSA = """
[systems.psa]
kind = "psa"
vendor = "kantata"
base_url = "https://api.mavenlink.com/api/v1"
auth = { method = "bearer", token = "env:KANTATA_TOKEN" }
"""
US01 = '[systems.erp.legal_entities.US01]\nerp_id = "1"\ncurrency = "USD"\n'

# (id, TOML added to BASE, the error exactly as str(ConfigError) renders it)
BAD = [
    (
        "type-float-got-str",
        '[systems.erp.limits]\nrate_per_s = "fast"\n',
        'systems.erp.limits.rate_per_s: expected a number, got "fast"',
    ),
    (
        "type-int-got-float",
        "[systems.erp.limits]\nburst = 2.5\n",
        "systems.erp.limits.burst: expected an integer, got 2.5",
    ),
    (
        "type-bool-got-str",
        '[metrics]\nenabled = "yes"\n',
        'metrics.enabled: expected true or false, got "yes"',
    ),
    (
        "type-table-got-int",
        "[systems.erp.legal_entities]\nUS01 = 1\n",
        "systems.erp.legal_entities.US01: expected a table, got 1",
    ),
    (
        "type-array-item",
        '[workflows.time_expense_to_erp]\nsystems = ["erp", 3]\n',
        "workflows.time_expense_to_erp.systems[1]: expected a string, got 3",
    ),
    (
        "type-date",
        "[journal]\npath = 2024-01-01\n",
        "journal.path: expected a string, got 2024-01-01",
    ),
    (
        "constraint-min",
        "[systems.erp.limits]\nburst = 0\n",
        "systems.erp.limits.burst: expected an integer >= 1, got 0",
    ),
    (
        "constraint-fraction",
        "[systems.erp.limits]\nquota_reserve_fraction = 1.5\n",
        "systems.erp.limits.quota_reserve_fraction: expected a number < 1.0, got 1.5",
    ),
    (
        "constraint-url",
        SF.replace("https://acme.my.salesforce.com", "ftp://acme") + SF_AUTH % '"env:SF"',
        'systems.crm.base_url: expected an http:// or https:// URL, got "ftp://acme"',
    ),
    (
        "unknown-key",
        "[systems.erp.limits]\nrat = 5\n",
        "systems.erp.limits.rat: unknown key; allowed keys: burst, daily_quota, "
        "max_concurrency, quota_reserve_fraction, rate_per_s",
    ),
    (
        "unknown-top-level-table",
        "[database]\npath = 1\n",
        "database: unknown key; allowed keys: control, governance, journal, log, mappings, "
        "metrics, systems, workflows",
    ),
    (
        "unknown-key-vendor-specific",
        '[systems.psa]\nkind = "psa"\nvendor = "kantata"\nbase_url = "https://api.mavenlink.com"\n'
        'auth = { token = "env:K" }\naccount_id = "1"\n',
        "systems.psa.account_id: unknown key; allowed keys: auth, base_url, http, kind, "
        "legal_entities, limits, options, poll_interval_s, vendor",
    ),
    (
        "missing-required",
        SF + SF_AUTH % '"env:SF"' + 'api_version = "v66.0"\n[systems.billing]\nkind = "billing"\n'
        'vendor = "stripe"\nbase_url = "https://api.stripe.com"\nauth = { api_key = "env:S" }\n',
        "systems.billing.api_version: missing required key",
    ),
    (
        "missing-vendor",
        '[systems.crm]\nkind = "crm"\nbase_url = "https://x.example"\n',
        'systems.crm.vendor: missing required key; expected one of "salesforce", "kantata", '
        '"netsuite", "stripe", "business_central", "sap", "oracle"',
    ),
    (
        "bad-vendor",
        '[systems.crm]\nkind = "crm"\nvendor = "hubspot"\n',
        'systems.crm.vendor: expected one of "salesforce", "kantata", "netsuite", "stripe", '
        '"business_central", "sap", "oracle", got "hubspot"',
    ),
    (
        "bad-enum-type",
        "[log]\nlevel = 3\n",
        'log.level: expected one of "debug", "error", "info", "warning", got 3',
    ),
    (
        "bad-enum",
        '[journal]\nsynchronous = "OFF"\n',
        'journal.synchronous: expected one of "FULL", "NORMAL", got "OFF"',
    ),
    (
        "bad-kind",
        SF.replace('kind = "crm"', 'kind = "cmr"') + SF_AUTH % '"env:SF"',
        'systems.crm.kind: expected one of "billing", "crm", "erp", "psa", got "cmr"',
    ),
    (
        "bad-auth-method",
        SF + 'auth = { method = "password", client_id = "app" }\n',
        'systems.crm.auth.method: expected one of "client_credentials", "jwt_bearer", '
        'got "password"',
    ),
    (
        "plain-string-secret",
        SF + SF_AUTH % '"s3cr3t-value-123"',
        "systems.crm.auth.client_secret: expected a secret reference (file:/path, "
        "credential:NAME or env:VAR), got a plain string: secret values never go in the "
        "configuration file",
    ),
    (
        "secret-not-a-string",
        SF + SF_AUTH % "123456",
        "systems.crm.auth.client_secret: expected a secret reference (file:/path, "
        "credential:NAME or env:VAR), got an integer",
    ),
    (
        "bad-secret-kind",
        SF + SF_AUTH % '"vault:crm/secret"',
        "systems.crm.auth.client_secret: unknown secret reference kind; expected "
        "file:/path, credential:NAME or env:VAR",
    ),
    (
        "bad-secret-file",
        SF + SF_AUTH % '"file:secrets/sf"',
        "systems.crm.auth.client_secret: file: secret reference needs an absolute path, "
        'got "secrets/sf"',
    ),
    (
        "bad-secret-credential",
        SF + SF_AUTH % '"credential:../sf"',
        "systems.crm.auth.client_secret: credential: secret reference needs a credential name "
        "(letters, digits, '_', '.', '@', '-'), got \"../sf\"",
    ),
    (
        "bad-secret-env",
        SF + SF_AUTH % '"env:1X"',
        "systems.crm.auth.client_secret: env: secret reference needs an environment variable "
        'name, got "1X"',
    ),
    (
        "bad-currency",
        '[systems.erp.legal_entities.US01]\nerp_id = "1"\ncurrency = "usd"\n',
        "systems.erp.legal_entities.US01.currency: expected a three-letter ISO 4217 currency "
        'code, got "usd"',
    ),
    (
        "quoted-key-in-path",
        '[systems."my crm"]\nkind = 3\n',
        'systems."my crm".vendor: missing required key; expected one of "salesforce", '
        '"kantata", "netsuite", "stripe", "business_central", "sap", "oracle"',
    ),
    (
        "second-of-several-dict-entries",
        '[workflows.deal_to_project]\nwidth = 2\n[workflows.reconcile]\nwidth = "wide"\n',
        'workflows.reconcile.width: expected an integer, got "wide"',
    ),
    # cross-field checks
    (
        "vendor-kind-mismatch",
        SF.replace('kind = "crm"', 'kind = "billing"') + SF_AUTH % '"env:SF"',
        'systems.crm.kind: vendor "salesforce" is a crm system, not billing',
    ),
    (
        "workflow-unknown-system",
        '[workflows.time_expense_to_erp]\nenabled = false\nsystems = ["erp", "kantata"]\n',
        'workflows.time_expense_to_erp.systems[1]: unknown system "kantata" (configured: erp)',
    ),
    (
        "workflow-unknown-name",
        "[workflows.deal_to_projct]\nwidth = 2\n",
        "workflows.deal_to_projct: unknown workflow; known workflows: customer_master, "
        "deal_to_project, invoice_feedback, milestone_to_invoice, reconcile, time_expense_to_erp, "
        "tm_close",
    ),
    (
        "workflow-missing-kind",
        "[workflows.time_expense_to_erp]\nwidth = 2\n",
        "workflows.time_expense_to_erp: needs a psa system; none is configured",
    ),
    (
        "reconcile-needs-interval",
        "[workflows.reconcile]\nenabled = false\n",
        "workflows.reconcile.interval_s: required for the scheduled reconcile workflow",
    ),
    (
        "tm-close-days-negative",
        "[workflows.tm_close]\nenabled = false\nclose_after_days = -1\n",
        "workflows.tm_close.close_after_days: expected an integer >= 0, got -1",
    ),
    (
        "tm-close-days-not-whole",
        "[workflows.tm_close]\nenabled = false\nclose_after_days = 1.5\n",
        "workflows.tm_close.close_after_days: expected an integer, got 1.5",
    ),
    (
        "tm-close-interval-positive",
        "[workflows.tm_close]\nenabled = false\ninterval_s = 0\n",
        "workflows.tm_close.interval_s: expected a number > 0.0, got 0",
    ),
    (
        "close-after-days-only-for-tm-close",
        "[workflows.reconcile]\nenabled = false\ninterval_s = 60\nclose_after_days = 3\n",
        "workflows.reconcile.close_after_days: only for the tm_close workflow",
    ),
    (
        "tm-close-needs-billing",
        "[workflows.tm_close]\n",
        "workflows.tm_close: needs a billing system; none is configured",
    ),
    (
        "backoff-order",
        "[workflows.reconcile]\nenabled = false\ninterval_s = 60\n"
        "backoff = { initial_s = 10, max_s = 5 }\n",
        "workflows.reconcile.backoff.max_s: must be at least initial_s (10), got 5",
    ),
    (
        "legal-entity-on-crm",
        SF + SF_AUTH % '"env:SF"' + '[systems.crm.legal_entities.US01]\nerp_id = "1"\n'
        'currency = "USD"\n',
        "systems.crm.legal_entities: only ERP systems route legal entities",
    ),
    (
        "governance-unknown-system",
        '[governance.customer_master]\ntax_id = "sap"\n',
        'governance.customer_master.tax_id: unknown system "sap" (configured: erp)',
    ),
    (
        "metrics-listen",
        '[metrics]\nlisten = "9464"\n',
        'metrics.listen: expected HOST:PORT, got "9464"',
    ),
    (
        "system-name",
        '[systems.ERP2]\nkind = "erp"\nvendor = "sap"\nbase_url = "https://my1-api.s4hana.cloud.sap"\n'
        'auth = { method = "basic", username = "COMM", password = "env:SAP" }\n'
        '[systems.ERP2.legal_entities.DE01]\nerp_id = "1010"\ncurrency = "EUR"\n'
        '[systems.erp.legal_entities.US01]\nerp_id = "1"\ncurrency = "USD"\n',
        "systems.ERP2: a system name must be lower case letters, digits and '_', starting with a "
        "letter (it labels metrics and log lines)",
    ),
    # [systems.<name>.options]: the adapter's Options, decoded with the same paths
    (
        "options-dict-value",
        "[systems.erp.options.subsidiaries]\nX01 = 3\n",
        "systems.erp.options.subsidiaries.X01: expected a string, got 3",
    ),
    (
        "options-nested-table",
        "[systems.erp.options.record_types]\ncustomer = 1\n",
        "systems.erp.options.record_types.customer: expected a string, got 1",
    ),
    (
        "options-constraint",
        "[systems.erp.options]\nsuiteql_page_size = 5000\n",
        "systems.erp.options.suiteql_page_size: expected an integer <= 1000, got 5000",
    ),
    (
        "options-adapter-check",
        '[systems.erp.options]\nexternal_id_prefix = "has space"\n',
        "systems.erp.options: external_id_prefix: 1-20 letters, digits, '_' or '-'",
    ),
    (
        "options-unknown-key",
        PSA + "[systems.psa.options]\ntemplate = {}\n",
        "systems.psa.options.template: unknown key; allowed keys: creator_role, overlap_s, "
        "per_page, service_name, start_watermark, templates",
    ),
    (
        "options-system-key",
        '[systems.erp.options]\naccount_id = "1234567"\n',
        "systems.erp.options.account_id: set in [systems.erp] only (the adapter gets it from "
        "there), not in its options",
    ),
    (
        "options-not-a-table",
        PSA + 'options = "fast"\n',
        'systems.psa.options: expected a table, got "fast"',
    ),
    # [systems.<name>.http]
    (
        "http-type",
        '[systems.erp.http]\nread_timeout_s = "slow"\n',
        'systems.erp.http.read_timeout_s: expected a number, got "slow"',
    ),
    (
        "http-constraint",
        "[systems.erp.http]\nconnect_timeout_s = 0\n",
        "systems.erp.http.connect_timeout_s: expected a number > 0.0, got 0",
    ),
    (
        "http-no-verify-switch",
        "[systems.erp.http]\nverify = false\n",
        "systems.erp.http.verify: unknown key; allowed keys: ca_bundle, connect_timeout_s, "
        "keepalive_expiry_s, max_connections, max_keepalive_connections, pool_timeout_s, "
        "read_timeout_s, retry, write_timeout_s",
    ),
    (
        "http-retry",
        "[systems.erp.http.retry]\nmax_attempts = 0\n",
        "systems.erp.http.retry: max_attempts must be >= 1 and delays >= 0",
    ),
    (
        "salesforce-api-version",
        SF + SF_AUTH % '"env:SF"' + 'api_version = "66.0"\n',
        'systems.crm.api_version: expected an API version such as "v66.0", got "66.0"',
    ),
    (
        "stripe-api-version",
        '[systems.billing]\nkind = "billing"\nvendor = "stripe"\n'
        'base_url = "https://api.stripe.com"\napi_version = "latest"\n'
        'auth = { method = "api_key", api_key = "env:STRIPE_API_KEY" }\n',
        'systems.billing.api_version: expected an API version date such as "2024-06-20", '
        'got "latest"',
    ),
    # cross-field checks of systems
    (
        "plain-http-off-loopback",
        PSA.replace("https://api.mavenlink.com", "http://api.mavenlink.com"),
        "systems.psa.base_url: must be https:// (plain http:// only for a loopback host, such "
        'as the sandbox), got "http://api.mavenlink.com/api/v1"',
    ),
    (
        "netsuite-subsidiary-twice",
        US01 + '[systems.erp.options.subsidiaries]\nUS01 = "1"\n',
        'systems.erp.options.subsidiaries.US01: "US01" is a legal entity of this system: its '
        'subsidiary is systems.erp.legal_entities.US01.erp_id ("1"); set it there only',
    ),
    (
        "netsuite-currency-unmapped",
        US01 + '[systems.erp.legal_entities.UK01]\nerp_id = "3"\ncurrency = "GBP"\n'
        '[systems.erp.options]\ncurrencies = { USD = "1" }\n',
        'systems.erp.legal_entities.UK01.currency: currency "GBP" has no internal id in '
        "systems.erp.options.currencies (mapped: USD)",
    ),
]

LINE = BASE.count("\n")  # the added TOML starts on line LINE + 1

TWO_ERPS = """
[systems.erp_legacy]
kind = "erp"
vendor = "business_central"
base_url = "https://api.businesscentral.dynamics.com"
company_id = "c0ffee"
auth = { tenant_id = "t", client_id = "c", client_secret = "credential:bc-secret" }
"""


@pytest.mark.parametrize(("toml", "expected"), [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_bad_config_names_path_and_expectation(toml: str, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(BASE + toml, source="pssync.toml")

    assert str(caught.value) == f"pssync.toml: {expected}"
    assert caught.value.source == "pssync.toml"
    assert expected.startswith(caught.value.path + ": ")


@pytest.mark.parametrize("value", ["hunter2-very-secret", "admin:hunter2", "sk_live_hunter2"])
def test_plain_string_secret_is_never_echoed(value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(BASE + SF + SF_AUTH % f'"{value}"', source="pssync.toml")

    assert caught.value.path == "systems.crm.auth.client_secret"
    assert "hunter2" not in str(caught.value)
    assert "admin" not in str(caught.value)


def test_type_error_in_secret_field_shows_no_value() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(BASE + SF + SF_AUTH % "987654321", source="pssync.toml")

    assert "987654321" not in str(caught.value)


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        (
            "[journal\npath = 1\n",
            f"pssync.toml:{LINE + 1}:9: TOML syntax error: Expected ']' at the end of a table "
            "declaration",
        ),
        ("[log]\nlevel = = 1\n", f"pssync.toml:{LINE + 2}:9: TOML syntax error: Invalid value"),
        (
            '[metrics]\nlisten = "a:1"\nlisten = "b:2"\n',
            f"pssync.toml:{LINE + 3}:15: TOML syntax error: Cannot overwrite a value",
        ),
    ],
    ids=["unclosed-table", "double-equals", "duplicate-key"],
)
def test_toml_syntax_error_gives_file_line_column(toml: str, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(BASE + toml, source="pssync.toml")

    assert str(caught.value) == expected


def test_several_cross_field_problems_are_reported_together() -> None:
    toml = BASE + TWO_ERPS + '[governance.customer_master]\nname = "crm"\n'

    with pytest.raises(ConfigErrors) as caught:
        parse_config(toml, source="pssync.toml")

    assert [str(p) for p in config_problems(caught.value)] == [
        "pssync.toml: systems.erp.legal_entities: required when more than one ERP system is "
        "configured (erp, erp_legacy): ERP routing is by legal entity",
        "pssync.toml: systems.erp_legacy.legal_entities: required when more than one ERP "
        "system is configured (erp, erp_legacy): ERP routing is by legal entity",
        'pssync.toml: governance.customer_master.name: unknown system "crm" '
        "(configured: erp, erp_legacy)",
    ]


def test_overlapping_legal_entity_routing_is_an_error() -> None:
    toml = (
        BASE
        + TWO_ERPS
        + '[systems.erp.legal_entities.US01]\nerp_id = "1"\ncurrency = "USD"\n'
        + '[systems.erp_legacy.legal_entities.US01]\nerp_id = "CRONUS US"\ncurrency = "USD"\n'
        + '[systems.erp_legacy.legal_entities.UK01]\nerp_id = "CRONUS UK"\ncurrency = "GBP"\n'
    )

    with pytest.raises(ConfigError) as caught:
        parse_config(toml, source="pssync.toml")

    assert str(caught.value) == (
        'pssync.toml: systems.erp_legacy.legal_entities.US01: legal entity "US01" is already '
        'routed to system "erp"'
    )


def test_two_erps_with_disjoint_legal_entities_are_fine() -> None:
    toml = (
        BASE
        + TWO_ERPS
        + '[systems.erp.legal_entities.US01]\nerp_id = "1"\ncurrency = "USD"\n'
        + '[systems.erp_legacy.legal_entities.UK01]\nerp_id = "CRONUS UK"\ncurrency = "GBP"\n'
    )

    config = parse_config(toml)

    assert sorted(config.systems["erp_legacy"].legal_entities) == ["UK01"]


def test_missing_governance_is_reported() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config("", source="pssync.toml")

    assert str(caught.value) == "pssync.toml: governance: missing required key"


def test_unreadable_file_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "absent.toml")

    assert (
        str(caught.value) == f"{tmp_path / 'absent.toml'}: cannot read: No such file or directory"
    )


def test_valid_config_decodes_into_structs(write_config) -> None:
    path = write_config(BASE)

    config = load_config(path, environ={})

    assert isinstance(config, Config)
    erp = config.systems["erp"]
    assert isinstance(erp, NetSuiteSystem)
    assert erp.vendor == "netsuite"
    assert isinstance(erp.auth, NetSuiteTba)
    assert erp.auth.token_secret == SecretRef("env", "NS_TS")
    assert erp.limits.rate_per_s == 5.0
    assert erp.poll_interval_s == 60.0


def test_state_and_runtime_paths_default_from_systemd_directories(write_config) -> None:
    path = write_config(GOVERNANCE)

    config = load_config(path, environ={"STATE_DIRECTORY": "/srv/st", "RUNTIME_DIRECTORY": "/r"})

    assert config.journal.path == "/srv/st/journal.sqlite3"
    assert config.journal.backup_dir == "/srv/st/backups"
    assert config.control.socket_path == "/r/control.sock"
    assert config.mappings.directory == str(path.parent / "mappings")


def test_paths_default_outside_systemd(write_config) -> None:
    config = load_config(write_config(GOVERNANCE), environ={})

    assert config.journal.path == "/var/lib/pssync/journal.sqlite3"
    assert config.control.socket_path == "/run/pssync/control.sock"


def test_relative_paths_are_relative_to_the_config_file(write_config) -> None:
    path = write_config(GOVERNANCE + '[journal]\npath = "state/j.sqlite3"\n')

    config = load_config(path, environ={"STATE_DIRECTORY": "/ignored"})

    assert config.journal.path == str(path.parent / "state" / "j.sqlite3")


def test_example_config_is_accepted() -> None:
    config = load_config(EXAMPLE, environ={})

    assert {name: s.vendor for name, s in config.systems.items()} == {
        "crm": "salesforce",
        "psa": "kantata",
        "erp": "netsuite",
        "billing": "stripe",
    }
    assert sorted(config.systems["erp"].legal_entities) == ["UK01", "US01"]
    assert config.governance.owners.billing == "billing-ops@acme.example"


def test_tm_close_schedule_defaults_to_daily_three_days_after_month_end() -> None:
    from daemon.pipeline import config_wiring

    example = load_config(EXAMPLE, environ={})
    assert example.workflows["tm_close"].close_after_days == 3
    assert config_wiring(example)["tm_close_interval_s"] == 86_400.0

    bare = parse_config(BASE + "[workflows.tm_close]\nenabled = false\n", source="pssync.toml")
    assert schedule_interval_s("tm_close", bare.workflows["tm_close"]) == 86_400.0
    wiring = config_wiring(bare)
    assert (wiring["tm_close_interval_s"], wiring["close_after_days"]) == (86_400.0, 3)

    set_ = parse_config(
        BASE + "[workflows.tm_close]\nenabled = false\ninterval_s = 600\nclose_after_days = 0\n",
        source="pssync.toml",
    )
    wiring = config_wiring(set_)
    assert (wiring["tm_close_interval_s"], wiring["close_after_days"]) == (600.0, 0)

    # No table: no schedule (and reconcile's has no default: its interval_s is required).
    assert config_wiring(parse_config(BASE, source="pssync.toml"))["tm_close_interval_s"] is None
    assert schedule_interval_s("tm_close", None) is None


def test_non_utf8_file_is_a_config_error(write_config) -> None:
    path = write_config("")
    path.write_bytes(GOVERNANCE.encode() + b'[log]\nlevel = "\xff"\n')

    with pytest.raises(ConfigError) as caught:
        load_config(path)

    assert str(caught.value) == (
        f"{path}: not UTF-8 text (byte {len(GOVERNANCE) + 15}): TOML files are UTF-8"
    )


def test_erp_routing_by_legal_entity() -> None:
    two = parse_config(
        BASE
        + TWO_ERPS
        + '[systems.erp.legal_entities.US01]\nerp_id = "1"\ncurrency = "USD"\n'
        + '[systems.erp_legacy.legal_entities.UK01]\nerp_id = "CRONUS UK"\ncurrency = "GBP"\n'
    )
    single_for_all = parse_config(BASE)

    assert (two.erp_for("US01"), two.erp_for("UK01"), two.erp_for("DE01")) == (
        "erp",
        "erp_legacy",
        None,
    )
    assert single_for_all.erp_for("DE01") == "erp"


# ------------------------------------------------------------------ options and http tables

OPTION_TABLES = [
    (SalesforceSystem, SalesforceOptions, ("api_version",)),
    (KantataSystem, KantataOptions, ()),
    (NetSuiteSystem, NetSuiteOptions, ("account_id",)),
    (StripeSystem, StripeOptions, ("api_version",)),
]


@pytest.mark.parametrize(
    ("system", "options", "system_keys"),
    OPTION_TABLES,
    ids=[options.__name__ for _, options, _ in OPTION_TABLES],
)
def test_options_table_is_the_adapters_options_without_the_system_keys(
    system: type, options: type, system_keys: tuple[str, ...]
) -> None:
    table = {f.name: f.type for f in msgspec.structs.fields(system)}["options"]
    table_fields = {f.name: (f.type, f.default, f.default_factory) for f in fields(table)}
    adapter_fields = {f.name: (f.type, f.default, f.default_factory) for f in fields(options)}

    assert table_fields == {k: v for k, v in adapter_fields.items() if k not in system_keys}
    assert set(system_keys) <= {f.name for f in fields(system)}  # they live up there


def test_http_table_defaults_are_the_http_layers() -> None:
    ours = {f.name: f.default for f in fields(HttpSettings)}
    theirs = {f.name: f.default for f in fields(HttpConfig)}

    assert {name: theirs.get(name) for name in ours if name != "retry"} == {
        name: default for name, default in ours.items() if name != "retry"
    }
    assert HttpSettings().retry == HttpConfig(base_url="https://x.example").retry


def test_netsuite_adapter_options_join_the_system_table(write_config) -> None:
    toml = (
        BASE
        + US01
        + '[systems.erp.legal_entities.UK01]\nerp_id = "3"\ncurrency = "GBP"\n'
        + "[systems.erp.options]\n"
        + 'currencies = { USD = "1", GBP = "2" }\n'
        + 'subsidiaries = { ELIM = "9" }\n'  # an elimination subsidiary, not a legal entity
        + "suiteql_page_size = 500\n"
        + "[systems.erp.http]\n"
        + 'ca_bundle = "certs/proxy-ca.pem"\n'
        + "read_timeout_s = 120\n"
    )
    path = write_config(toml)

    erp = load_config(path, environ={}).systems["erp"]
    options = erp.adapter_options()

    assert isinstance(options, NetSuiteOptions)
    assert options.account_id == "1234567"
    assert options.subsidiaries == {"US01": "1", "UK01": "3", "ELIM": "9"}
    assert options.currencies == {"USD": "1", "GBP": "2"}
    assert (options.suiteql_page_size, options.lookup_chunk_size) == (500, 500)
    assert erp.http.read_timeout_s == 120
    assert erp.http.ca_bundle == str(path.parent / "certs" / "proxy-ca.pem")


def test_api_version_is_said_once_in_the_system_table() -> None:
    toml = (
        BASE
        + SF
        + SF_AUTH % '"env:SF"'
        + 'api_version = "v62.0"\n'
        + "[systems.crm.options]\noverlap_s = 30\n"
        + '[systems.billing]\nkind = "billing"\nvendor = "stripe"\n'
        + 'base_url = "https://api.stripe.com"\napi_version = "2024-06-20"\n'
        + 'auth = { method = "api_key", api_key = "env:STRIPE_API_KEY" }\n'
    )

    config = parse_config(toml)
    crm = config.systems["crm"].adapter_options()
    billing = config.systems["billing"].adapter_options()

    assert (crm.api_version, crm.overlap_s, crm.data_path) == (
        "v62.0",
        30.0,
        "/services/data/v62.0",
    )
    assert billing == StripeOptions(api_version="2024-06-20")


def test_example_config_builds_every_adapters_options() -> None:
    config = load_config(EXAMPLE, environ={})

    built = {name: system.adapter_options() for name, system in config.systems.items()}

    assert built["erp"].subsidiaries == {"US01": "1", "UK01": "3"}
    assert built["psa"].templates["implementation"] == "Implementation template"
    assert built["crm"].fields.project_status == "Project_Status__c"
    assert built["billing"].collection_method == "send_invoice"
