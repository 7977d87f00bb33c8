"""Wiring: each configured system as a governed HTTP client and a vendor adapter.

::

    secrets = resolve_all(config, SecretResolver())
    mappings = load_mappings(config.mappings.directory)
    async with open_system_clients(config, secrets) as clients:
        adapters = build_adapters(config, clients, mappings)
        ...                                  # system actors use the adapters

Per system, :func:`build_system_clients` picks the auth strategy from the ``auth`` table
(secrets handed over as :class:`~daemon.secrets.Secret` objects, revealed only by the
strategy when it signs a request), the vendor's error signals, a governor from ``limits``
and the HTTP settings from ``base_url`` and ``http``. ``transports`` (system name →
httpx transport) points systems elsewhere: tests and the demo pass
``httpx.ASGITransport(app=sandbox.apps[vendor])``.

Every problem is a :class:`ConfigError` naming the key (``systems.erp.vendor`` for a vendor
with no adapter in this version, ``systems.erp.auth.private_key`` for an unreadable key),
all of them at once, before any client exists.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import httpx
import structlog
import trio

from actors.errors import ConfigError
from adapters import kantata, netsuite, salesforce, stripe
from adapters.auth import (
    AuthStrategy,
    BearerToken,
    NetSuiteM2M,
    NetSuiteTba,
    SalesforceJwtBearer,
    netsuite_token_url,
    salesforce_client_credentials,
)
from adapters.base import VendorAdapter
from adapters.classify import ErrorSignals
from adapters.governor import Governor, GovernorConfig
from adapters.http import HttpConfig, SystemClient, make_ssl_context
from adapters.mapping import MappingSet
from adapters.signals import KantataSignals, SalesforceSignals, StripeSignals

from . import config as schema
from .config_checks import check_adapters
from .errors import ConfigErrors, key_path
from .secrets import Secret, secret_refs

__all__ = [
    "aclose_clients",
    "build_adapters",
    "build_system_clients",
    "check_mappings",
    "governor_config",
    "http_config",
    "open_system_clients",
]

_log = structlog.get_logger("pssync.daemon.systems")

# Vendor → (its error signals, its adapter factory). Keys are config.ADAPTER_VENDORS.
_SIGNALS: dict[str, Callable[[], ErrorSignals]] = {
    "salesforce": SalesforceSignals,
    "kantata": KantataSignals,
    "netsuite": netsuite.NetSuiteErrorSignals,
    "stripe": StripeSignals,
}
_FACTORIES: dict[str, Callable[..., VendorAdapter]] = {
    "salesforce": salesforce.create_adapter,
    "kantata": kantata.create_adapter,
    "netsuite": netsuite.create_adapter,
    "stripe": stripe.create_adapter,
}
# The entities of config/mappings/<vendor>.toml each adapter uses.
_MAPPED_ENTITIES: dict[str, tuple[str, ...]] = {
    "salesforce": salesforce.MAPPED_ENTITIES,
    "kantata": kantata.MAPPED_ENTITIES,
    "netsuite": netsuite.MAPPED_ENTITIES,
    "stripe": stripe.MAPPED_ENTITIES,
}
assert set(_SIGNALS) == set(_FACTORIES) == set(_MAPPED_ENTITIES) == schema.ADAPTER_VENDORS

# Closing a client drops pooled connections; bounded so a hung peer cannot stall shutdown.
_CLOSE_TIMEOUT_S = 10.0


def governor_config(limits: schema.Limits) -> GovernorConfig:
    """The governor's settings from ``[systems.<name>.limits]``.

    The quota reserve is an absolute count: ``quota_reserve_fraction`` of ``daily_quota``,
    rounded down (computed in decimal, so 0.29 of 100 is 29, not 28).
    """
    reserve = 0
    if limits.daily_quota is not None:
        reserve = int(Decimal(str(limits.quota_reserve_fraction)) * limits.daily_quota)
    return GovernorConfig(
        rate_per_s=limits.rate_per_s,
        burst=limits.burst,
        max_concurrency=limits.max_concurrency,
        daily_quota=limits.daily_quota,
        quota_reserve=reserve,
    )


def http_config(system: schema.SystemConfig) -> HttpConfig:
    """The HTTP layer's settings from ``base_url`` and ``[systems.<name>.http]``."""
    http = system.http
    return HttpConfig(
        base_url=system.base_url,
        connect_timeout_s=http.connect_timeout_s,
        read_timeout_s=http.read_timeout_s,
        write_timeout_s=http.write_timeout_s,
        pool_timeout_s=http.pool_timeout_s,
        max_connections=http.max_connections,
        max_keepalive_connections=http.max_keepalive_connections,
        keepalive_expiry_s=http.keepalive_expiry_s,
        ca_bundle=http.ca_bundle,
        retry=http.retry,
    )


def build_system_clients(
    config: schema.Config,
    secrets: Mapping[str, Secret],
    *,
    transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
    wall_clock: Callable[[], float] = time.time,
) -> dict[str, SystemClient]:
    """One :class:`SystemClient` per configured system, by system name.

    ``secrets`` is :func:`daemon.secrets.resolve_all`'s mapping (dotted key → Secret).
    ``transports`` maps a system name to the transport its requests take (default: the
    network). ``wall_clock`` (epoch seconds) stamps signatures and assertions (NetSuite
    TBA, JWTs); the demo passes the sandbox's clock, which it moves ahead by weeks.
    Raises ConfigError (ConfigErrors for several) before building any client; the caller
    closes the clients (:func:`open_system_clients` does).
    """
    transports = transports or {}
    unknown = sorted(set(transports) - set(config.systems))
    if unknown:
        raise ValueError(f"transports for systems that are not configured: {unknown}")
    problems = check_adapters(config)
    parts: dict[str, tuple[HttpConfig, AuthStrategy]] = {}
    for name, system in config.systems.items():
        if system.vendor not in schema.ADAPTER_VENDORS:
            continue
        path = key_path("systems", name)
        try:
            parts[name] = (
                _http_config(path, system),
                _auth(path, name, system, secrets, wall_clock),
            )
        except ConfigErrors as exc:
            problems.extend(exc.errors)
        except ConfigError as exc:
            problems.append(exc)
    if problems:
        raise problems[0] if len(problems) == 1 else ConfigErrors(problems)

    clients: dict[str, SystemClient] = {}
    for name, (http, auth) in parts.items():
        system = config.systems[name]
        clients[name] = SystemClient(
            name,
            http,
            auth=auth,
            governor=Governor(governor_config(system.limits), name=name),
            signals=_SIGNALS[system.vendor](),
            transport=transports.get(name),
            wall_clock=wall_clock,
        )
        _log.info(
            "systems.client",
            system=name,
            vendor=system.vendor,
            base_url=system.base_url,
            auth=system.auth.__struct_config__.tag,
            transport="custom" if name in transports else "network",
        )
    return clients


def check_mappings(config: schema.Config, mappings: Mapping[str, MappingSet]) -> list[ConfigError]:
    """A problem for every configured system whose vendor has no mapping file in
    ``[mappings] directory``, or whose file lacks an entity the vendor's adapter uses
    (each names the file and entity). ``pssync config check`` and start-up both ask."""
    problems: list[ConfigError] = []
    for vendor in sorted({system.vendor for system in config.systems.values()}):
        if vendor not in _MAPPED_ENTITIES:
            continue  # check_adapters reports a vendor without an adapter
        names = sorted(name for name, system in config.systems.items() if system.vendor == vendor)
        mapping = mappings.get(vendor)
        if mapping is None:
            problems.append(
                ConfigError(
                    f'no mapping file for vendor "{vendor}" (systems {", ".join(names)}) in '
                    f"{config.mappings.directory}",
                    path=key_path("mappings", "directory"),
                )
            )
            continue
        for entity in _MAPPED_ENTITIES[vendor]:
            if entity not in mapping.entities:
                problems.append(
                    ConfigError(
                        f"no mapping for entity {entity!r}, which the {vendor} adapter uses "
                        f"(have: {', '.join(sorted(mapping.entities))})",
                        path=f"entities.{entity}",
                        source=mapping.source,
                    )
                )
    return problems


def build_adapters(
    config: schema.Config,
    clients: Mapping[str, SystemClient],
    mappings: Mapping[str, MappingSet],
    *,
    wall_clock: Callable[[], float] = time.time,
) -> dict[str, VendorAdapter]:
    """The vendor adapter of every configured system, by system name.

    ``clients`` come from :func:`build_system_clients`; ``mappings`` from
    :func:`adapters.mapping.load_mappings` on ``config.mappings.directory``. Closing an
    adapter closes its client. ``wall_clock`` as for :func:`build_system_clients`.
    """
    problems = check_adapters(config) or check_mappings(config, mappings)
    if problems:
        raise problems[0] if len(problems) == 1 else ConfigErrors(problems)
    adapters: dict[str, VendorAdapter] = {}
    for name, system in config.systems.items():
        path = key_path("systems", name)
        try:
            client = clients[name]
        except KeyError:
            raise ValueError(f"no client for system {name!r}") from None
        options = _adapter_options(path, system)
        extra = {"wall_clock": wall_clock} if system.vendor == "stripe" else {}
        adapters[name] = _FACTORIES[system.vendor](
            system=name, client=client, mappings=mappings[system.vendor], options=options, **extra
        )
    return adapters


@asynccontextmanager
async def open_system_clients(
    config: schema.Config,
    secrets: Mapping[str, Secret],
    *,
    transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
    wall_clock: Callable[[], float] = time.time,
) -> AsyncIterator[dict[str, SystemClient]]:
    """:func:`build_system_clients`, closing every client on the way out."""
    clients = build_system_clients(config, secrets, transports=transports, wall_clock=wall_clock)
    try:
        yield clients
    finally:
        await aclose_clients(clients)


async def aclose_clients(clients: Mapping[str, SystemClient]) -> None:
    """Close every client, even while the caller is being cancelled (closing twice is fine)."""
    with trio.move_on_after(_CLOSE_TIMEOUT_S) as scope:
        scope.shield = True
        for client in clients.values():
            await client.aclose()


# ------------------------------------------------------------------------------ parts


def _http_config(path: str, system: schema.SystemConfig) -> HttpConfig:
    try:
        http = http_config(system)
    except ValueError as exc:  # config_checks reports this too; wiring may skip checks
        raise ConfigError(str(exc), path=key_path(path, "base_url")) from None
    if http.ca_bundle is not None:
        try:
            make_ssl_context(http.ca_bundle)
        except OSError as exc:  # ssl.SSLError is an OSError
            raise ConfigError(
                f"cannot load the CA bundle {http.ca_bundle}: {exc.strerror or exc}",
                path=key_path(key_path(path, "http"), "ca_bundle"),
            ) from None
    return http


def _auth(
    path: str,
    name: str,
    system: schema.SystemConfig,
    secrets: Mapping[str, Secret],
    wall_clock: Callable[[], float],
) -> AuthStrategy:
    """The auth strategy of one system; secrets pass through unrevealed."""
    auth: Any = getattr(system, "auth", None)
    auth_path = key_path(path, "auth")
    missing = [
        ConfigError("secret not resolved (resolve_all(config) gives every one)", path=key)
        for key, _ in secret_refs(auth, auth_path)
        if key not in secrets
    ]
    if missing:
        raise missing[0] if len(missing) == 1 else ConfigErrors(missing)

    def secret(field: str) -> Secret:
        return secrets[key_path(auth_path, field)]

    return _strategy(system, auth, name, secret, auth_path, wall_clock)


def _strategy(
    system: schema.SystemConfig,
    auth: Any,
    name: str,
    secret: Callable[[str], Secret],
    auth_path: str,
    wall_clock: Callable[[], float],
) -> AuthStrategy:
    match system, auth:
        case schema.SalesforceSystem(), schema.SalesforceClientCredentials():
            return salesforce_client_credentials(
                system.base_url,
                client_id=auth.client_id,
                client_secret=secret("client_secret"),
                system=name,
            )
        case schema.SalesforceSystem(), schema.SalesforceJwtBearer():
            # The org's My Domain token endpoint takes JWT bearer assertions too.
            jwt = SalesforceJwtBearer(
                system.base_url.rstrip("/") + "/services/oauth2/token",
                client_id=auth.client_id,
                username=auth.username,
                audience=auth.audience,
                private_key_pem=secret("private_key"),
                wall_clock=wall_clock,
                system=name,
            )
            try:
                jwt.assertion()  # a bad key fails here, at start-up, not at the first call
            except (ValueError, TypeError):
                # Our words: cryptography's messages are not promised to leave the key out.
                raise ConfigError(
                    "private_key is not an unencrypted PEM RSA private key",
                    path=key_path(auth_path, "private_key"),
                ) from None
            return jwt
        case schema.KantataSystem(), schema.KantataBearer():
            return BearerToken(secret("token"))
        case schema.NetSuiteSystem(), schema.NetSuiteTba():
            return NetSuiteTba(
                account_id=system.account_id,
                consumer_key=secret("consumer_key"),
                consumer_secret=secret("consumer_secret"),
                token_id=secret("token_id"),
                token_secret=secret("token_secret"),
                wall_clock=wall_clock,
            )
        case schema.NetSuiteSystem(), schema.NetSuiteM2M():
            try:
                return NetSuiteM2M(
                    netsuite_token_url(system.base_url),
                    client_id=auth.client_id,
                    certificate_id=auth.certificate_id,
                    private_key_pem=secret("private_key"),
                    scope=auth.scope,
                    wall_clock=wall_clock,
                    system=name,
                )
            except ValueError as exc:  # the key: its message never quotes it
                raise ConfigError(str(exc), path=key_path(auth_path, "private_key")) from None
        case schema.StripeSystem(), schema.StripeApiKey():
            return BearerToken(secret("api_key"))
    raise ConfigError(  # the schema admits no other pairs; a new vendor needs a case here
        f"no auth strategy for vendor {system.vendor!r} with method {type(auth).__name__}",
        path=auth_path,
    )


def _adapter_options(path: str, system: schema.SystemConfig) -> Any:
    build: Callable[[], Any] | None = getattr(system, "adapter_options", None)
    if build is None:  # only vendors without an adapter, refused before this
        raise ConfigError(f'vendor "{system.vendor}" has no adapter options', path=path)
    try:
        return build()
    except ValueError as exc:
        raise ConfigError(str(exc), path=key_path(path, "options")) from None
