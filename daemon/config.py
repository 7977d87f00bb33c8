"""The configuration schema: frozen, keyword-only msgspec Structs, one per TOML table.

Every table forbids unknown keys (a typo is an error, not a silently ignored setting) and
every quantity carries its unit in its name (``poll_interval_s``, ``busy_timeout_ms``).
Secret fields hold :class:`~daemon.secrets.SecretRef` references, never values.

A system table is chosen by its ``vendor`` key (a tagged union), and its ``auth`` table by
``method``, so each vendor accepts exactly the settings its API needs::

    [systems.crm]
    kind = "crm"
    vendor = "salesforce"
    base_url = "https://acme.my.salesforce.com"
    auth = { method = "client_credentials", client_id = "3MVG9…",
             client_secret = "credential:salesforce-client-secret" }

    [systems.crm.limits]        # the governor (rate, burst, concurrency, daily quota)
    [systems.crm.http]          # timeouts, connection pool, CA bundle, retries
    [systems.crm.options]       # the vendor adapter's own settings

Each key has one home. The system table says *which* account and API version pssync talks
to (``base_url``, NetSuite's ``account_id``, ``api_version``) because auth needs them too;
``options`` holds what only the adapter reads, with exactly the keys, types and defaults of
the adapter's Options Struct minus those system keys (:func:`options_table`). ERP legal
entities carry their ERP id (for NetSuite: the subsidiary internal id) in
``legal_entities``; :meth:`NetSuiteSystem.adapter_options` hands them to the adapter.

Loading (TOML → raw tables → Structs, with error paths in dotted TOML form) lives in
:mod:`daemon.config_load`; checks that span several tables in :mod:`daemon.config_checks`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar

import msgspec
from msgspec import Meta

from adapters.backoff import RetryPolicy
from adapters.kantata import KantataOptions
from adapters.netsuite import NetSuiteOptions
from adapters.salesforce import SalesforceOptions
from adapters.stripe import StripeOptions

from .secrets import SecretRef

Kind = Literal["crm", "psa", "erp", "billing"]
LogLevel = Literal["debug", "info", "warning", "error"]

PositiveFloat = Annotated[float, Meta(gt=0)]
PositiveInt = Annotated[int, Meta(ge=1)]
NonNegativeInt = Annotated[int, Meta(ge=0)]
Name = Annotated[str, Meta(min_length=1)]
Url = Annotated[str, Meta(pattern=r"^https?://[^\s/]+\S*$")]
CurrencyCode = Annotated[str, Meta(pattern=r"^[A-Z]{3}$")]
# The Salesforce adapter's pattern (adapters.salesforce.SalesforceOptions.api_version).
SalesforceApiVersion = Annotated[str, Meta(pattern=r"^v\d{2,3}\.\d$")]
StripeApiVersion = Annotated[str, Meta(pattern=r"^\d{4}-\d{2}-\d{2}(\.[a-z]+)?$")]

# The workflows pssync implements (DESIGN §6); a [workflows.<name>] table must name one.
WORKFLOWS: dict[str, tuple[Kind, ...]] = {
    # workflow name → the kinds of system it cannot run without
    "deal_to_project": ("crm", "psa", "erp", "billing"),
    "time_expense_to_erp": ("psa", "erp"),
    "milestone_to_invoice": ("psa", "billing", "erp", "crm"),
    "invoice_feedback": ("billing", "erp", "crm"),
    "customer_master": ("crm",),
    "reconcile": ("psa", "erp", "billing"),
    # Finalizes the month's T&M drafts in billing; invoice_feedback posts them to the ERP.
    "tm_close": ("billing",),
}

SCHEDULED_WORKFLOWS: dict[str, float | None] = {
    # workflow name → its schedule's interval_s when its table sets none (None: no schedule)
    "reconcile": None,  # interval_s is required (daemon.config_checks)
    "tm_close": 86_400.0,  # daily
}

# Which kind of system each vendor is.
VENDOR_KINDS: dict[str, Kind] = {
    "salesforce": "crm",
    "kantata": "psa",
    "netsuite": "erp",
    "business_central": "erp",
    "sap": "erp",
    "oracle": "erp",
    "stripe": "billing",
}

# Vendors this version has an adapter for (daemon/systems.py wires them). The others may be
# configured, but such a system cannot run: daemon.config_checks.check_adapters says so.
ADAPTER_VENDORS: frozenset[str] = frozenset({"salesforce", "kantata", "netsuite", "stripe"})


class Section(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Base of every configuration table (subclasses repeat ``kw_only``: it is not inherited)."""


# ---------------------------------------------------------------------------- process


class JournalConfig(Section, kw_only=True):
    """``[journal]``: the SQLite journal (store/)."""

    # Empty means the default: $STATE_DIRECTORY/journal.sqlite3, else
    # /var/lib/pssync/journal.sqlite3. A relative path is relative to the config file.
    path: str = ""
    # FULL: every commit survives power loss (financial postings). NORMAL: faster, may lose
    # the last commits on power loss (never corrupts).
    synchronous: Literal["FULL", "NORMAL"] = "FULL"
    busy_timeout_ms: NonNegativeInt = 5000
    # Empty means <state directory>/backups.
    backup_dir: str = ""


class ControlConfig(Section, kw_only=True):
    """``[control]``: the operator control socket."""

    # Empty means $RUNTIME_DIRECTORY/control.sock, else /run/pssync/control.sock.
    socket_path: str = ""
    # Members of this group may run mutating commands (pause, replay, resolve, …).
    operator_group: str | None = None


class MetricsConfig(Section, kw_only=True):
    """``[metrics]``: the Prometheus exposition endpoint."""

    enabled: bool = True
    # HOST:PORT; loopback by default so metrics are not published by accident.
    listen: str = "127.0.0.1:9464"


class LogConfig(Section, kw_only=True):
    """``[log]``: structlog output on stdout."""

    level: LogLevel = "info"
    # console is used only when stdout is a terminal; journald always gets JSON.
    format: Literal["json", "console"] = "json"


class MappingsConfig(Section, kw_only=True):
    """``[mappings]``: declarative, versioned field mappings."""

    # Relative to the config file's directory.
    directory: str = "mappings"


# ---------------------------------------------------------------------------- systems


class Limits(Section, kw_only=True):
    """``[systems.<name>.limits]``: what the governor allows this system."""

    rate_per_s: PositiveFloat = 5.0
    burst: PositiveInt = 10
    max_concurrency: PositiveInt = 4
    # Requests per rolling 24 h; unset means the vendor imposes none we must track.
    daily_quota: PositiveInt | None = None
    # Share of the daily quota kept for critical work (financial postings).
    quota_reserve_fraction: Annotated[float, Meta(ge=0, lt=1)] = 0.1


class LegalEntity(Section, kw_only=True):
    """``[systems.<erp>.legal_entities.<code>]``: a legal entity this ERP books for."""

    # The ERP's own id for it: NetSuite subsidiary, Business Central company, SAP company code.
    erp_id: Name
    currency: CurrencyCode


class HttpSettings(Section, kw_only=True):
    """``[systems.<name>.http]``: connections to this system (``adapters.http.HttpConfig``).

    TLS verification is always on: a private CA is trusted only through ``ca_bundle`` (a
    PEM file; relative to the config file). Plain ``http://`` base URLs are accepted for
    loopback hosts only (the sandbox). The defaults are HttpConfig's.
    """

    connect_timeout_s: PositiveFloat = 10.0
    read_timeout_s: PositiveFloat = 60.0
    write_timeout_s: PositiveFloat = 30.0
    # Waiting for a free connection from the pool.
    pool_timeout_s: PositiveFloat = 10.0
    max_connections: PositiveInt = 20
    max_keepalive_connections: NonNegativeInt = 10
    keepalive_expiry_s: PositiveFloat = 30.0
    ca_bundle: Name | None = None
    # Retries of one request (retryable and throttled answers), exponential with jitter.
    retry: RetryPolicy = RetryPolicy()


_Options = TypeVar("_Options", bound=msgspec.Struct)


def options_table(options: type[msgspec.Struct], *, system_keys: tuple[str, ...] = ()) -> Any:
    """The ``[systems.<name>.options]`` table of an adapter whose settings are ``options``.

    The same keys, types, defaults and ``__post_init__`` checks as ``options`` (so decode
    errors name ``systems.<name>.options.<key>``), minus ``system_keys``: those are set in
    the system table only and joined back by :func:`join_options`.
    """
    fields: list[tuple[str, Any, Any]] = []
    for field in msgspec.structs.fields(options):
        if field.encode_name in system_keys:
            continue
        if field.default_factory is not msgspec.NODEFAULT:
            default = msgspec.field(default_factory=field.default_factory, name=field.encode_name)
        elif field.default is not msgspec.NODEFAULT:
            default = msgspec.field(default=field.default, name=field.encode_name)
        else:
            default = msgspec.field(name=field.encode_name)
        fields.append((field.name, field.type, default))
    without = f" without {', '.join(system_keys)} (system-table keys)" if system_keys else ""
    namespace: dict[str, Any] = {
        "__doc__": f"``options``: {options.__name__}{without}.",
        # Read by the loader to say where such a key belongs.
        "system_keys": system_keys,
    }
    post_init = getattr(options, "__post_init__", None)
    if post_init is not None:
        namespace["__post_init__"] = post_init
    return msgspec.defstruct(
        f"{options.__name__}Table",
        fields,
        bases=(Section,),
        module=__name__,
        namespace=namespace,
        kw_only=True,
        frozen=True,
        forbid_unknown_fields=True,
    )


def join_options(options: type[_Options], table: msgspec.Struct, **system_values: Any) -> _Options:
    """The adapter's ``options`` Struct from its config ``table`` plus the system-table keys.

    Raises ValueError when the adapter's own checks refuse the combination.
    """
    values = {field.name: getattr(table, field.name) for field in msgspec.structs.fields(table)}
    return options(**(values | system_values))


SalesforceOptionsTable = options_table(SalesforceOptions, system_keys=("api_version",))
KantataOptionsTable = options_table(KantataOptions)
NetSuiteOptionsTable = options_table(NetSuiteOptions, system_keys=("account_id",))
StripeOptionsTable = options_table(StripeOptions, system_keys=("api_version",))


class SystemConfig(Section, kw_only=True, tag_field="vendor"):
    """``[systems.<name>]``: settings every vendor shares; ``vendor`` picks the subclass."""

    kind: Kind
    base_url: Url
    poll_interval_s: PositiveFloat = 60.0
    limits: Limits = Limits()
    http: HttpSettings = HttpSettings()
    # ERP routing: legal entity code → how this ERP knows it. ERP systems only.
    legal_entities: dict[str, LegalEntity] = {}

    @property
    def vendor(self) -> str:
        """The vendor tag (``salesforce``, ``netsuite``, …)."""
        return str(self.__struct_config__.tag)


class Auth(Section, kw_only=True, tag_field="method"):
    """Base of the ``auth`` tables; ``method`` picks the subclass within a vendor."""


# Salesforce (CRM) --------------------------------------------------------------------


class SalesforceClientCredentials(Auth, kw_only=True, tag="client_credentials"):
    """OAuth 2.0 client credentials against the org's My Domain token endpoint."""

    client_id: Name
    client_secret: SecretRef


class SalesforceJwtBearer(Auth, kw_only=True, tag="jwt_bearer"):
    """OAuth 2.0 JWT bearer flow (RS256, pre-authorised integration user)."""

    client_id: Name
    username: Name
    private_key: SecretRef
    audience: Url = "https://login.salesforce.com"


class SalesforceSystem(SystemConfig, kw_only=True, tag="salesforce"):
    """Salesforce REST API."""

    api_version: SalesforceApiVersion = "v66.0"
    auth: SalesforceClientCredentials | SalesforceJwtBearer
    options: SalesforceOptionsTable = SalesforceOptionsTable()

    def adapter_options(self) -> SalesforceOptions:
        """The adapter's options (ValueError if its checks refuse them)."""
        return join_options(SalesforceOptions, self.options, api_version=self.api_version)


# Kantata OX (PSA) --------------------------------------------------------------------


class KantataBearer(Auth, kw_only=True, tag="bearer"):
    """A long-lived OAuth 2.0 bearer token."""

    token: SecretRef


class KantataSystem(SystemConfig, kw_only=True, tag="kantata"):
    """Kantata OX API v1 (``base_url`` includes ``/api/v1``)."""

    auth: KantataBearer
    options: KantataOptionsTable = KantataOptionsTable()

    def adapter_options(self) -> KantataOptions:
        """The adapter's options (ValueError if its checks refuse them)."""
        return join_options(KantataOptions, self.options)


# NetSuite (ERP) ----------------------------------------------------------------------


class NetSuiteM2M(Auth, kw_only=True, tag="oauth2_m2m"):
    """OAuth 2.0 client credentials with a JWT assertion signed by a mapped certificate."""

    client_id: Name
    certificate_id: Name
    private_key: SecretRef
    scope: Name = "rest_webservices"


class NetSuiteTba(Auth, kw_only=True, tag="tba"):
    """Token-based authentication (OAuth 1.0a, HMAC-SHA256)."""

    consumer_key: SecretRef
    consumer_secret: SecretRef
    token_id: SecretRef
    token_secret: SecretRef


class NetSuiteSystem(SystemConfig, kw_only=True, tag="netsuite"):
    """NetSuite REST web services and SuiteQL."""

    # As NetSuite shows it, e.g. 1234567_SB1 (the host name form is derived from it).
    account_id: Annotated[str, Meta(pattern=r"^[0-9A-Za-z_]+$")]
    auth: NetSuiteM2M | NetSuiteTba
    # Subsidiaries are legal_entities' erp_id; options.subsidiaries only adds codes that
    # are not legal entities (subsidiary codes in financial dimensions).
    options: NetSuiteOptionsTable = NetSuiteOptionsTable()

    def adapter_options(self) -> NetSuiteOptions:
        """The adapter's options: account id and subsidiaries from this table, the rest
        from ``options`` (ValueError if the adapter's checks refuse them)."""
        subsidiaries = {code: entity.erp_id for code, entity in self.legal_entities.items()}
        return join_options(
            NetSuiteOptions,
            self.options,
            account_id=self.account_id,
            subsidiaries=subsidiaries | self.options.subsidiaries,
        )


# Stripe (billing) --------------------------------------------------------------------


class StripeApiKey(Auth, kw_only=True, tag="api_key"):
    """A secret or restricted API key sent as a bearer token."""

    api_key: SecretRef


class StripeSystem(SystemConfig, kw_only=True, tag="stripe"):
    """Stripe API; the API version is pinned because field names move between versions."""

    api_version: StripeApiVersion
    auth: StripeApiKey
    options: StripeOptionsTable = StripeOptionsTable()

    def adapter_options(self) -> StripeOptions:
        """The adapter's options (ValueError if its checks refuse them)."""
        return join_options(StripeOptions, self.options, api_version=self.api_version)


# Dynamics 365 Business Central (ERP) -------------------------------------------------


class EntraClientCredentials(Auth, kw_only=True, tag="client_credentials"):
    """Microsoft Entra ID client credentials."""

    tenant_id: Name
    client_id: Name
    client_secret: SecretRef


class BusinessCentralSystem(SystemConfig, kw_only=True, tag="business_central"):
    """Business Central API v2.0."""

    environment: Name = "production"
    company_id: Name
    auth: EntraClientCredentials


# SAP S/4HANA Cloud and Oracle Fusion (ERP) -------------------------------------------


class BasicAuth(Auth, kw_only=True, tag="basic"):
    """HTTP Basic with a communication / integration user."""

    username: Name
    password: SecretRef


class OAuth2ClientCredentials(Auth, kw_only=True, tag="client_credentials"):
    """OAuth 2.0 client credentials against an explicit token endpoint."""

    token_url: Url
    client_id: Name
    client_secret: SecretRef
    scope: str = ""


class SapSystem(SystemConfig, kw_only=True, tag="sap"):
    """SAP S/4HANA Cloud OData services."""

    auth: BasicAuth | OAuth2ClientCredentials


class OracleSystem(SystemConfig, kw_only=True, tag="oracle"):
    """Oracle Fusion Cloud ERP REST."""

    rest_framework_version: Annotated[str, Meta(pattern=r"^\d+$")] = "4"
    auth: BasicAuth | OAuth2ClientCredentials


System = (
    SalesforceSystem
    | KantataSystem
    | NetSuiteSystem
    | StripeSystem
    | BusinessCentralSystem
    | SapSystem
    | OracleSystem
)


# ---------------------------------------------------------------------------- workflows


class Backoff(Section, kw_only=True):
    """``[workflows.<name>.backoff]``: retry delays for retryable failures."""

    initial_s: PositiveFloat = 1.0
    max_s: PositiveFloat = 300.0
    multiplier: Annotated[float, Meta(ge=1)] = 2.0
    jitter_fraction: Annotated[float, Meta(ge=0, le=1)] = 0.1


class WorkflowConfig(Section, kw_only=True):
    """``[workflows.<name>]``: one durable workflow."""

    enabled: bool = True
    # Keys handled in parallel (events of one key are always handled in order).
    width: PositiveInt = 8
    # Attempts before a retryable failure becomes an exception.
    max_attempts: PositiveInt = 5
    backoff: Backoff = Backoff()
    # Pollers feeding this workflow pause while its backlog is above this many events.
    high_water_mark: PositiveInt = 10_000
    # Events folded into one run, for batching workflows (time_expense_to_erp).
    max_batch: PositiveInt = 500
    # Scheduled workflows: reconcile runs every this many seconds (required); tm_close's
    # scheduler looks for a month to close every this many seconds (default daily).
    interval_s: PositiveFloat | None = None
    # tm_close only: days after a month's end before its T&M drafts are finalized, so
    # late approvals of the month still land on them (default 3).
    close_after_days: NonNegativeInt | None = None
    # Systems this workflow may use; empty means every configured system it needs.
    systems: tuple[str, ...] = ()


def schedule_interval_s(name: str, workflow: WorkflowConfig | None) -> float | None:
    """The schedule period of scheduled workflow ``name``: its ``interval_s``, else the
    workflow's default (tm_close: daily); None without a table (or a default)."""
    if workflow is None:
        return None
    if workflow.interval_s is not None:
        return workflow.interval_s
    return SCHEDULED_WORKFLOWS.get(name)


# ---------------------------------------------------------------------------- governance


class ExceptionOwners(Section, kw_only=True):
    """``[governance.owners]``: who works each category of exception (team or mailbox)."""

    contract: Name
    project: Name
    time: Name
    billing: Name
    master_data: Name
    mapping: Name


class GovernanceConfig(Section, kw_only=True):
    """``[governance]``: ownership of exceptions and of customer-master fields."""

    owners: ExceptionOwners
    # Canonical customer field → the system that owns it (customer_master workflow).
    customer_master: dict[str, str] = {}


# ---------------------------------------------------------------------------- root


class Config(Section, kw_only=True):
    """The whole ``pssync.toml``."""

    journal: JournalConfig = JournalConfig()
    control: ControlConfig = ControlConfig()
    metrics: MetricsConfig = MetricsConfig()
    log: LogConfig = LogConfig()
    mappings: MappingsConfig = MappingsConfig()
    systems: dict[str, System] = {}
    workflows: dict[str, WorkflowConfig] = {}
    governance: GovernanceConfig

    def erp_for(self, legal_entity: str) -> str | None:
        """The ERP system that books for ``legal_entity`` (ERP routing), if any.

        With a single ERP that lists no legal entities, that ERP books for all of them.
        """
        erps = {name: s for name, s in self.systems.items() if s.kind == "erp"}
        for name, system in erps.items():
            if legal_entity in system.legal_entities:
                return name
        if len(erps) == 1:
            [(name, system)] = erps.items()
            return name if not system.legal_entities else None
        return None
