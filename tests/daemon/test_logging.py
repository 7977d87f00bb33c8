"""Logging: JSON lines on the stream, correlation ids, levels, redaction, quiet httpx."""

from __future__ import annotations

import datetime
import io
import json
import logging

import structlog
import trio
from structlog.contextvars import bound_contextvars

from daemon.config import LogConfig
from daemon.logging import configure_logging
from daemon.redaction import MASK, Redactor, is_sensitive_key


def lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_each_line_is_json_with_utc_iso_timestamp_and_level() -> None:
    stream = io.StringIO()
    configure_logging(LogConfig(), stream=stream)

    structlog.get_logger().info("journal.opened", path="/var/lib/pssync/journal.sqlite3")

    [line] = lines(stream)
    assert line["event"] == "journal.opened"
    assert line["level"] == "info"
    assert line["path"] == "/var/lib/pssync/journal.sqlite3"
    assert line["timestamp"].endswith("Z")
    stamp = datetime.datetime.fromisoformat(line["timestamp"].replace("Z", "+00:00"))
    assert stamp.utcoffset() == datetime.timedelta(0)


def test_level_filtering() -> None:
    stream = io.StringIO()
    configure_logging(LogConfig(level="warning"), stream=stream)
    log = structlog.get_logger()

    log.debug("d")
    log.info("i")
    log.warning("w")
    log.error("e")

    assert [line["event"] for line in lines(stream)] == ["w", "e"]


async def test_correlation_id_bound_per_message_is_in_every_line() -> None:
    stream = io.StringIO()
    configure_logging(LogConfig(), stream=stream)
    log = structlog.get_logger()

    async def handle(message_id: str, correlation_id: str) -> None:
        with bound_contextvars(correlation_id=correlation_id, message_id=message_id):
            log.info("step.started")
            await trio.lowlevel.checkpoint()  # let the other handler interleave
            log.info("step.finished")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(handle, "m1", "deal-0001")
        nursery.start_soon(handle, "m2", "deal-0002")
    log.info("idle")

    logged = lines(stream)
    assert len(logged) == 5
    by_message = {(line.get("message_id"), line.get("correlation_id")) for line in logged[:4]}
    assert by_message == {("m1", "deal-0001"), ("m2", "deal-0002")}
    assert "correlation_id" not in logged[4]


def test_sensitive_keys_are_masked_at_any_depth() -> None:
    stream = io.StringIO()
    configure_logging(LogConfig(), stream=stream, redactor=Redactor())

    structlog.get_logger().info(
        "vendor.request",
        headers={"Authorization": "Bearer abc", "Accept": "application/json"},
        client_secret="xyz",
        body=[{"password": "pw", "name": "ok"}],
    )

    [line] = lines(stream)
    assert line["headers"] == {"Authorization": MASK, "Accept": "application/json"}
    assert line["client_secret"] == MASK
    assert line["body"] == [{"password": MASK, "name": "ok"}]


def test_sensitive_key_names() -> None:
    sensitive = ["token", "access_token", "api_key", "X-Api-Key", "client_secret", "private_key"]
    ordinary = ["correlation_id", "system", "event", "rate_per_s"]

    assert all(is_sensitive_key(key) for key in [*sensitive, "authorization", "Password"])
    assert not any(is_sensitive_key(key) for key in ordinary)


def test_httpx_info_is_silenced_but_warnings_pass() -> None:
    stream = io.StringIO()
    configure_logging(LogConfig(level="debug"), stream=stream)

    logging.getLogger("httpx").info('HTTP Request: GET https://api.stripe.com "HTTP/1.1 200 OK"')
    logging.getLogger("httpcore.http11").debug("send_request_headers.started")
    logging.getLogger("httpx").warning("connection pool is full")

    [line] = lines(stream)
    assert line["event"] == "connection pool is full"
    assert line["logger"] == "httpx"
    assert line["level"] == "warning"


def test_console_format_falls_back_to_json_when_not_a_terminal() -> None:
    stream = io.StringIO()
    configure_logging(LogConfig(format="console"), stream=stream)

    structlog.get_logger().info("hello")

    assert lines(stream)[0]["event"] == "hello"


def test_capture_logs_works_with_the_configuration() -> None:
    configure_logging(LogConfig(), stream=io.StringIO())

    with structlog.testing.capture_logs() as captured:
        structlog.get_logger().info("daemon.ready", systems=["crm"])

    assert captured == [{"event": "daemon.ready", "systems": ["crm"], "log_level": "info"}]


def test_credential_shaped_text_is_masked_even_if_never_registered() -> None:
    stream = io.StringIO()
    configure_logging(LogConfig(), stream=stream, redactor=Redactor())

    structlog.get_logger().warning(
        "vendor.error", body="token rejected: Bearer eyJhbGciOi.payload.sig", note="ok"
    )

    [line] = lines(stream)
    assert "eyJhbGciOi" not in stream.getvalue()
    assert line["body"] == f"token rejected: Bearer {MASK}"
    assert line["note"] == "ok"
