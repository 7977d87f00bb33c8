"""Secrets: references resolve from file, credential or environment; values never show."""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import pytest
import structlog

from actors.errors import ConfigError, SecretError
from daemon.config import LogConfig
from daemon.config_load import parse_config
from daemon.errors import config_problems
from daemon.logging import configure_logging
from daemon.redaction import Redactor
from daemon.secrets import Secret, SecretRef, SecretResolver, resolve_all, secret_refs

from .conftest import BASE

VALUE = "sk_live_51Habc7d2e9QXy"


def test_file_reference_resolves_without_trailing_newline(tmp_path: Path) -> None:
    file = tmp_path / "stripe.key"
    file.write_text(VALUE + "\n")

    secret = SecretResolver({}, redactor=Redactor()).resolve(SecretRef.parse(f"file:{file}"))

    assert secret.reveal() == VALUE
    assert secret.ref == SecretRef("file", str(file))


def test_credential_reference_reads_credentials_directory(tmp_path: Path) -> None:
    (tmp_path / "stripe-api-key").write_text(VALUE)
    resolver = SecretResolver({"CREDENTIALS_DIRECTORY": str(tmp_path)}, redactor=Redactor())

    secret = resolver.resolve(SecretRef.parse("credential:stripe-api-key"))

    assert secret.reveal() == VALUE


def test_env_reference_reads_the_variable() -> None:
    resolver = SecretResolver({"STRIPE_API_KEY": VALUE}, redactor=Redactor())

    assert resolver.resolve(SecretRef.parse("env:STRIPE_API_KEY")).reveal() == VALUE


@pytest.mark.parametrize(
    ("reference", "environ", "expected"),
    [
        (
            "env:MISSING",
            {},
            "systems.billing.auth.api_key: environment variable MISSING is not set",
        ),
        (
            "credential:stripe-api-key",
            {},
            "systems.billing.auth.api_key: credential stripe-api-key: $CREDENTIALS_DIRECTORY is "
            "not set (give the unit LoadCredential=stripe-api-key:…)",
        ),
        (
            "credential:absent",
            {"CREDENTIALS_DIRECTORY": "/nonexistent/creds"},
            "systems.billing.auth.api_key: credential absent: /nonexistent/creds/absent does "
            "not exist",
        ),
        (
            "file:/nonexistent/stripe.key",
            {},
            "systems.billing.auth.api_key: secret file /nonexistent/stripe.key: "
            "/nonexistent/stripe.key does not exist",
        ),
        (
            "env:EMPTY",
            {"EMPTY": "\n"},
            "systems.billing.auth.api_key: environment variable EMPTY is empty",
        ),
    ],
    ids=["env-unset", "no-credentials-directory", "credential-missing", "file-missing", "empty"],
)
def test_resolution_errors_name_kind_and_name(
    reference: str, environ: dict[str, str], expected: str
) -> None:
    resolver = SecretResolver(environ, redactor=Redactor())

    with pytest.raises(SecretError) as caught:
        resolver.resolve(SecretRef.parse(reference), path="systems.billing.auth.api_key")

    assert str(caught.value) == expected


def test_unreadable_file_error_shows_no_content(tmp_path: Path) -> None:
    file = tmp_path / "key"
    file.write_bytes(b"\xff\xfe" + VALUE.encode())

    with pytest.raises(SecretError) as caught:
        SecretResolver({}, redactor=Redactor()).resolve(SecretRef("file", str(file)))

    assert str(caught.value) == f"secret file {file}: {file} is not UTF-8 text"


def test_secret_never_shows_its_value() -> None:
    secret = Secret(VALUE, SecretRef("env", "STRIPE_API_KEY"))

    shown = [
        repr(secret),
        str(secret),
        f"{secret}",
        f"{secret!r}",
        format(secret),
        str([secret]),
    ]

    assert all(VALUE not in text for text in shown)
    assert repr(secret) == "Secret('********' from env:STRIPE_API_KEY)"
    with pytest.raises(TypeError):
        pickle.dumps(secret)


def test_resolved_values_are_registered_with_the_redactor() -> None:
    redactor = Redactor()
    resolver = SecretResolver({"K": VALUE}, redactor=redactor)

    resolver.resolve(SecretRef("env", "K"))

    assert redactor.scrub(f"Bearer {VALUE}") == "Bearer [REDACTED]"


def test_resolve_all_reports_every_unresolvable_reference_with_its_path() -> None:
    config = parse_config(BASE)
    environ = {"NS_CK": "consumer-key-1", "NS_TS": "token-secret-1"}

    with pytest.raises(ConfigError) as caught:
        resolve_all(config, SecretResolver(environ, redactor=Redactor()))

    assert [str(p) for p in config_problems(caught.value)] == [
        "systems.erp.auth.consumer_secret: environment variable NS_CS is not set",
        "systems.erp.auth.token_id: environment variable NS_TI is not set",
    ]


def test_resolve_all_keys_secrets_by_path() -> None:
    config = parse_config(BASE)
    environ = {name: f"value-of-{name}" for name in ("NS_CK", "NS_CS", "NS_TI", "NS_TS")}

    secrets = resolve_all(config, SecretResolver(environ, redactor=Redactor()))

    assert sorted(secrets) == [
        f"systems.erp.auth.{f}"
        for f in ("consumer_key", "consumer_secret", "token_id", "token_secret")
    ]
    assert secrets["systems.erp.auth.token_id"].reveal() == "value-of-NS_TI"
    assert [path for path, _ in secret_refs(config)] == sorted(secrets, key=list(secrets).index)


def test_secret_values_never_reach_the_log_output() -> None:
    stream = io.StringIO()
    redactor = Redactor()
    configure_logging(LogConfig(level="debug"), stream=stream, redactor=redactor)
    secret = SecretResolver({"K": VALUE}, redactor=redactor).resolve(SecretRef("env", "K"))
    log = structlog.get_logger()

    log.info("calling stripe", headers={"Authorization": f"Bearer {secret.reveal()}"})
    log.info("token refreshed", access_token=secret.reveal(), secret=secret)
    log.warning(f"vendor echoed our key: {secret.reveal()}")
    try:
        raise RuntimeError(f"401 for key {secret.reveal()}")
    except RuntimeError:
        log.exception("request failed")

    output = stream.getvalue()
    assert len(output.splitlines()) == 4
    assert VALUE not in output
    assert VALUE[:12] not in output
    assert output.count("[REDACTED]") >= 4
