"""Wiring: config/pssync.sandbox.toml → governed clients → adapters → the in-process sandbox."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
import trio
from structlog.testing import capture_logs

from actors.errors import ConfigError
from actors.messages import Account, CreateProjectFromTemplate, Money, Project, UpsertCustomer
from adapters.auth import (
    BearerToken,
    NetSuiteM2M,
    NetSuiteTba,
    OAuth2ClientCredentials,
    SalesforceJwtBearer,
)
from adapters.governor import GovernorConfig
from adapters.http import HttpConfig, SystemClient
from adapters.kantata import KantataAdapter
from adapters.mapping import MappingSet, load_mappings
from adapters.netsuite import NetSuiteAdapter, NetSuiteErrorSignals
from adapters.salesforce import SalesforceAdapter
from adapters.sandbox import Sandbox, SandboxClock, SandboxConfig, Scenario, build_sandbox
from adapters.sandbox.netsuite import demo_m2m_credentials
from adapters.signals import KantataSignals, SalesforceSignals, StripeSignals
from adapters.stripe import StripeAdapter
from daemon.config import Config, Limits
from daemon.config_checks import check_adapters
from daemon.config_load import load_config, parse_config
from daemon.errors import ConfigErrors, config_problems
from daemon.secrets import Secret, SecretResolver, resolve_all
from daemon.systems import (
    build_adapters,
    build_system_clients,
    governor_config,
    open_system_clients,
)

from .conftest import BASE

SANDBOX_CONFIG = Path(__file__).resolve().parents[2] / "config" / "pssync.sandbox.toml"
START = 1_767_225_600.0  # 2026-01-01T00:00:00Z

# The variables config/pssync.sandbox.toml documents → (vendor, credential in the banner).
SANDBOX_ENV = {
    "PSSYNC_SANDBOX_SALESFORCE_CLIENT_SECRET": ("salesforce", "client_secret"),
    "PSSYNC_SANDBOX_KANTATA_TOKEN": ("kantata", "access_token"),
    "PSSYNC_SANDBOX_NETSUITE_CONSUMER_KEY": ("netsuite", "consumer_key"),
    "PSSYNC_SANDBOX_NETSUITE_CONSUMER_SECRET": ("netsuite", "consumer_secret"),
    "PSSYNC_SANDBOX_NETSUITE_TOKEN_ID": ("netsuite", "token_id"),
    "PSSYNC_SANDBOX_NETSUITE_TOKEN_SECRET": ("netsuite", "token_secret"),
    "PSSYNC_SANDBOX_STRIPE_API_KEY": ("stripe", "api_key"),
}


@dataclass
class Wired:
    sandbox: Sandbox
    config: Config
    env: dict[str, str]
    secrets: dict[str, Secret]
    mappings: dict[str, MappingSet]

    @property
    def transports(self) -> dict[str, httpx.AsyncBaseTransport]:
        return {
            name: httpx.ASGITransport(app=self.sandbox.apps[system.vendor])
            for name, system in self.config.systems.items()
        }

    def now(self) -> float:
        return self.sandbox.clock.now()


@pytest.fixture
async def wired() -> Wired:
    # Async: the sandbox clock follows trio's, so seed data is stamped inside trio.
    clock = SandboxClock(start=START, monotonic_source=trio.current_time)
    sandbox = build_sandbox(SandboxConfig(seed_data=True), clock=clock)
    env = {
        variable: sandbox.vendors[vendor].credentials[key]
        for variable, (vendor, key) in SANDBOX_ENV.items()
    }
    config = load_config(SANDBOX_CONFIG, environ=env)
    secrets = resolve_all(config, SecretResolver(env))
    return Wired(sandbox, config, env, secrets, load_mappings(config.mappings.directory))


@pytest.fixture
async def adapters(wired: Wired) -> AsyncIterator[dict[str, Any]]:
    async with open_system_clients(
        wired.config, wired.secrets, transports=wired.transports, wall_clock=wired.now
    ) as clients:
        yield build_adapters(wired.config, clients, wired.mappings, wall_clock=wired.now)


def account() -> Account:
    return Account(id="001WIRE", name="Wiring Test Ltd", legal_entity="PSF-US", currency="USD")


def upsert_customer(key: str) -> UpsertCustomer:
    return UpsertCustomer(idempotency_key=key, correlation_id="corr-wiring", account=account())


def provision_command(today: dt.date) -> CreateProjectFromTemplate:
    project = Project(
        id="PRJ-WIRE",
        name="Wiring rollout",
        account_id="001WIRE",
        currency="USD",
        start_date=today,
        end_date=today + dt.timedelta(days=90),
        budget=Money.of("120000.00", "USD"),
    )
    return CreateProjectFromTemplate(
        idempotency_key="wiring:psa_project",
        correlation_id="corr-wiring",
        template_id="implementation",
        project=project,
    )


def feed(adapter: Any, name: str) -> Any:
    return next(f for f in adapter.feeds() if f.name == name)


# ------------------------------------------------------------------------- the config


async def test_sandbox_config_names_every_env_variable_it_uses(wired: Wired) -> None:
    refs = {str(secret.ref) for secret in wired.secrets.values()}

    assert refs == {f"env:{variable}" for variable in SANDBOX_ENV}
    for variable in SANDBOX_ENV:
        assert variable in SANDBOX_CONFIG.read_text()  # documented in the file's header


async def test_sandbox_config_points_at_the_default_loopback_ports_and_the_mappings(
    wired: Wired,
) -> None:
    from adapters.sandbox.server import DEFAULT_PORTS

    ports = {s.vendor: httpx.URL(s.base_url).port for s in wired.config.systems.values()}

    assert ports == DEFAULT_PORTS
    assert check_adapters(wired.config) == []
    assert set(wired.mappings) == {s.vendor for s in wired.config.systems.values()}


# ------------------------------------------------------------------------- the clients


async def test_each_system_gets_its_auth_signals_governor_and_http_settings(
    wired: Wired,
) -> None:
    async with open_system_clients(wired.config, wired.secrets) as clients:
        crm, psa, erp, billing = (clients[n] for n in ("crm", "psa", "erp", "billing"))

        assert isinstance(crm.auth, OAuth2ClientCredentials)
        assert crm.auth.token_url == "http://127.0.0.1:8701/services/oauth2/token"
        assert isinstance(psa.auth, BearerToken)
        assert isinstance(erp.auth, NetSuiteTba)
        assert erp.auth.account_id == "1234567_SB1"
        assert isinstance(billing.auth, BearerToken)
        assert [type(c.signals) for c in (crm, psa, erp, billing)] == [
            SalesforceSignals,
            KantataSignals,
            NetSuiteErrorSignals,
            StripeSignals,
        ]
        # limits: rate 20, burst 40, 8 at once, 100000 a day with 10 % reserved
        assert crm.governor.config == GovernorConfig(
            rate_per_s=20.0, burst=40, max_concurrency=8, daily_quota=100_000, quota_reserve=10_000
        )
        assert crm.governor.name == "crm"
        assert psa.config == HttpConfig(base_url="http://127.0.0.1:8702/api/v1")
        assert str(psa.http.base_url) == "http://127.0.0.1:8702/api/v1/"


@pytest.mark.parametrize(
    ("limits", "reserve"),
    [
        (Limits(daily_quota=100_000, quota_reserve_fraction=0.15), 15_000),
        (Limits(daily_quota=100, quota_reserve_fraction=0.29), 29),  # not 28 (0.29 * 100)
        (Limits(daily_quota=1, quota_reserve_fraction=0.9), 0),  # below the quota, always
        (Limits(quota_reserve_fraction=0.5), 0),  # no quota, nothing to reserve
    ],
)
def test_quota_reserve_is_an_absolute_count_of_the_daily_quota(
    limits: Limits, reserve: int
) -> None:
    assert governor_config(limits).quota_reserve == reserve


async def test_http_table_reaches_the_client(wired: Wired) -> None:
    toml = SANDBOX_CONFIG.read_text().replace(
        "[systems.erp.limits]",
        "[systems.erp.http]\nread_timeout_s = 120\nmax_connections = 3\n"
        "retry = { max_attempts = 2 }\n\n[systems.erp.limits]",
    )
    config = parse_config(toml, base_dir=SANDBOX_CONFIG.parent)

    async with open_system_clients(config, wired.secrets) as clients:
        http = clients["erp"].config

    assert (http.read_timeout_s, http.max_connections, http.retry.max_attempts) == (120, 3, 2)
    assert http.connect_timeout_s == HttpConfig(base_url="https://x.example").connect_timeout_s


async def test_open_system_clients_closes_every_client_even_when_cancelled(
    wired: Wired,
) -> None:
    seen: dict[str, SystemClient] = {}
    with trio.CancelScope() as scope:
        async with open_system_clients(wired.config, wired.secrets) as clients:
            seen.update(clients)
            scope.cancel()
            await trio.sleep_forever()

    assert sorted(seen) == ["billing", "crm", "erp", "psa"]
    assert all(client.http.is_closed for client in seen.values())


# ------------------------------------------------------------------------- one real call each


async def test_one_real_call_per_adapter_against_the_sandbox(
    autojump_clock: trio.testing.MockClock, wired: Wired, adapters: dict[str, Any]
) -> None:
    assert isinstance(adapters["crm"], SalesforceAdapter)
    assert isinstance(adapters["psa"], KantataAdapter)
    assert isinstance(adapters["erp"], NetSuiteAdapter)
    assert isinstance(adapters["billing"], StripeAdapter)
    today = dt.datetime.fromtimestamp(wired.now(), dt.UTC).date()

    # Kantata: a workspace from the template [systems.psa.options] names for the line.
    provisioned = await adapters["psa"].execute(provision_command(today))
    # A fortnight of business: deals won in Salesforce, time logged and approved in Kantata.
    scenario = Scenario(wired.sandbox, seed=1, month_end_entries=0)
    reports = [scenario.run_week() for _ in range(2)]
    # Two weeks on: NetSuite TBA signatures and Stripe follow the sandbox clock.
    erp = await adapters["erp"].execute(upsert_customer("wiring:erp_customer"))
    billing = await adapters["billing"].execute(upsert_customer("wiring:billing_customer"))
    time_page = await feed(adapters["psa"], "approved_time").poll(None, limit=50)
    deals_page = await feed(adapters["crm"], "won_deals").poll(None, limit=50)

    assert provisioned.created
    assert provisioned.ids["template"]
    assert erp.created
    assert erp.details["external_id"] == "pssync-cus-001WIRE"
    assert billing.created
    assert billing.ids["001WIRE"].startswith("cus_")
    assert time_page.envelopes, "approved time was read"
    assert {env.body.entry.project_id for env in time_page.envelopes} == {
        provisioned.ids["workspace"]
    }
    won = {deal for report in reports for deal in report.deals_won}
    assert won
    assert won <= {env.body.opportunity.id for env in deals_page.envelopes}
    counts = {name: vendor.state.counts() for name, vendor in wired.sandbox.vendors.items()}
    assert counts["netsuite"]["customer"] == 1
    assert counts["stripe"]["customer"] == 1


async def test_secrets_never_appear_in_reprs_or_logs(wired: Wired) -> None:
    values = [secret.reveal() for secret in wired.secrets.values()]
    with capture_logs() as logs:
        async with open_system_clients(
            wired.config, wired.secrets, transports=wired.transports, wall_clock=wired.now
        ) as clients:
            adapters = build_adapters(wired.config, clients, wired.mappings, wall_clock=wired.now)
            await adapters["erp"].execute(upsert_customer("wiring:erp_customer"))
            await feed(adapters["crm"], "changed_accounts").poll(None, limit=5)
            shown = [
                repr(thing)
                for name, client in clients.items()
                for thing in (
                    client,
                    client.auth,
                    client.config,
                    client.governor,
                    client.http.headers,
                    adapters[name],
                    adapters[name].options,
                    wired.config.systems[name],
                )
            ]
            shown += [str(wired.secrets), str(msgspec.to_builtins(wired.config, enc_hook=str))]

    assert [log["event"] for log in logs].count("systems.client") == 4
    text = "\n".join([*shown, *(repr(log) for log in logs)])
    assert clients["crm"].auth.current is not None  # a token was fetched …
    values.append(clients["crm"].auth.current.value)  # … and is a secret too
    leaked = [value for value in values if value in text]
    assert leaked == []


# ------------------------------------------------------------------------- refusals

TWO_ERPS = """
[systems.erp_legacy]
kind = "erp"
vendor = "business_central"
base_url = "https://api.businesscentral.dynamics.com"
company_id = "c0ffee"
auth = { tenant_id = "t", client_id = "c", client_secret = "env:BC" }
[systems.erp_legacy.legal_entities.UK01]
erp_id = "CRONUS UK"
currency = "GBP"
[systems.erp.legal_entities.US01]
erp_id = "1"
currency = "USD"
"""
BASE_SECRETS = {
    f"systems.erp.auth.{field}": Secret(f"{field}-value")
    for field in ("consumer_key", "consumer_secret", "token_id", "token_secret")
}


def test_a_vendor_without_an_adapter_cannot_be_wired() -> None:
    config = parse_config(BASE + TWO_ERPS)  # the schema keeps such vendors …
    secrets = BASE_SECRETS | {"systems.erp_legacy.auth.client_secret": Secret("bc")}

    with pytest.raises(ConfigError) as caught:
        build_system_clients(config, secrets)  # … but they cannot run

    assert caught.value.path == "systems.erp_legacy.vendor"
    assert caught.value.message == (
        'vendor "business_central" has no adapter in this version of pssync, so system '
        '"erp_legacy" cannot run (vendors with an adapter: kantata, netsuite, salesforce, '
        "stripe)"
    )
    assert [p.path for p in check_adapters(config)] == ["systems.erp_legacy.vendor"]


def test_every_vendor_without_an_adapter_is_reported_at_once() -> None:
    sap = (
        '[systems.erp_de]\nkind = "erp"\nvendor = "sap"\n'
        'base_url = "https://my1-api.s4hana.cloud.sap"\n'
        'auth = { method = "basic", username = "COMM", password = "env:SAP" }\n'
        '[systems.erp_de.legal_entities.DE01]\nerp_id = "1010"\ncurrency = "EUR"\n'
    )
    config = parse_config(BASE + TWO_ERPS + sap)

    with pytest.raises(ConfigErrors) as caught:
        build_system_clients(config, BASE_SECRETS)

    assert [p.path for p in config_problems(caught.value)] == [
        "systems.erp_legacy.vendor",
        "systems.erp_de.vendor",
    ]


async def test_a_secret_that_was_not_resolved_is_named() -> None:
    config = parse_config(BASE)
    secrets = dict(BASE_SECRETS)
    del secrets["systems.erp.auth.token_secret"]

    with pytest.raises(ConfigError) as caught:
        build_system_clients(config, secrets)

    assert caught.value.path == "systems.erp.auth.token_secret"


def test_a_transport_for_an_unknown_system_is_a_programming_error() -> None:
    config = parse_config(BASE)

    with pytest.raises(ValueError, match="not configured"):
        build_system_clients(
            config, BASE_SECRETS, transports={"crm": httpx.MockTransport(lambda r: None)}
        )


def test_an_unreadable_ca_bundle_names_its_key(tmp_path: Path) -> None:
    toml = BASE + '[systems.erp.http]\nca_bundle = "missing-ca.pem"\n'
    config = parse_config(toml, base_dir=tmp_path)

    with pytest.raises(ConfigError) as caught:
        build_system_clients(config, BASE_SECRETS)

    assert caught.value.path == "systems.erp.http.ca_bundle"
    assert str(tmp_path / "missing-ca.pem") in caught.value.message


def test_a_bad_m2m_private_key_is_a_config_error_that_never_quotes_it() -> None:
    m2m = BASE.replace(
        'method = "tba"\nconsumer_key = "env:NS_CK"\nconsumer_secret = "env:NS_CS"\n'
        'token_id = "env:NS_TI"\ntoken_secret = "env:NS_TS"\n',
        'method = "oauth2_m2m"\nclient_id = "c"\ncertificate_id = "k"\n'
        'private_key = "env:NS_KEY"\n',
    )
    config = parse_config(m2m)
    key = "-----BEGIN PRIVATE KEY-----\nnot-a-key-but-secret-anyway\n-----END PRIVATE KEY-----"

    with pytest.raises(ConfigError) as caught:
        build_system_clients(config, {"systems.erp.auth.private_key": Secret(key)})

    assert caught.value.path == "systems.erp.auth.private_key"
    assert "not-a-key" not in str(caught.value)


def rsa_pem() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


JWT_CRM = (
    BASE
    + '[systems.crm]\nkind = "crm"\nvendor = "salesforce"\n'
    + 'base_url = "https://acme.my.salesforce.com"\n'
    + 'auth = { method = "jwt_bearer", client_id = "app", username = "int@acme.example", '
    + 'private_key = "env:SF_KEY" }\n'
)


def test_salesforce_jwt_bearer_is_wired_to_the_my_domain_token_endpoint() -> None:
    secrets = BASE_SECRETS | {"systems.crm.auth.private_key": Secret(rsa_pem())}

    clients = build_system_clients(parse_config(JWT_CRM), secrets)

    assert isinstance(clients["crm"].auth, SalesforceJwtBearer)
    assert clients["crm"].auth.token_url == "https://acme.my.salesforce.com/services/oauth2/token"


def test_a_bad_jwt_bearer_key_fails_when_wired_not_at_the_first_call() -> None:
    garbled = rsa_pem().replace("\n", "")[:200]
    secrets = BASE_SECRETS | {"systems.crm.auth.private_key": Secret(garbled)}

    with pytest.raises(ConfigError) as caught:
        build_system_clients(parse_config(JWT_CRM), secrets)

    assert caught.value.path == "systems.crm.auth.private_key"
    assert garbled[40:80] not in str(caught.value)


async def test_netsuite_m2m_is_wired_against_the_sandbox(wired: Wired) -> None:
    m2m = demo_m2m_credentials(0)
    toml = SANDBOX_CONFIG.read_text().replace(
        'method = "tba"\n'
        'consumer_key = "env:PSSYNC_SANDBOX_NETSUITE_CONSUMER_KEY"\n'
        'consumer_secret = "env:PSSYNC_SANDBOX_NETSUITE_CONSUMER_SECRET"\n'
        'token_id = "env:PSSYNC_SANDBOX_NETSUITE_TOKEN_ID"\n'
        'token_secret = "env:PSSYNC_SANDBOX_NETSUITE_TOKEN_SECRET"\n',
        f'method = "oauth2_m2m"\nclient_id = "{m2m.client_id}"\n'
        f'certificate_id = "{m2m.certificate_id}"\n'
        'private_key = "env:PSSYNC_SANDBOX_NETSUITE_PRIVATE_KEY"\n',
    )
    config = parse_config(toml, base_dir=SANDBOX_CONFIG.parent)
    env = wired.env | {"PSSYNC_SANDBOX_NETSUITE_PRIVATE_KEY": m2m.private_key_pem}
    secrets = resolve_all(config, SecretResolver(env))

    async with open_system_clients(
        config, secrets, transports=wired.transports, wall_clock=wired.now
    ) as clients:
        adapters = build_adapters(config, clients, wired.mappings, wall_clock=wired.now)
        result = await adapters["erp"].execute(upsert_customer("wiring:erp_customer"))

    assert isinstance(clients["erp"].auth, NetSuiteM2M)
    assert clients["erp"].auth.fetches == 1
    assert result.created


async def test_a_vendor_with_no_mapping_file_names_the_mappings_directory(
    wired: Wired,
) -> None:
    mappings = {v: m for v, m in wired.mappings.items() if v != "stripe"}

    async with open_system_clients(wired.config, wired.secrets) as clients:
        with pytest.raises(ConfigError) as caught:
            build_adapters(wired.config, clients, mappings)

    assert caught.value.path == "mappings.directory"
    assert 'vendor "stripe" (systems billing)' in caught.value.message
