"""structlog configuration: one JSON object per line on stdout, for journald.

- ``merge_contextvars`` first, so whatever a worker binds for the message it handles
  (``with bound_contextvars(correlation_id=…)``) is in every line it logs;
- ISO 8601 UTC timestamps, level filtering before any processing (``make_filtering_bound_logger``);
- the :class:`~daemon.redaction.Redactor` last before rendering, so credentials are masked
  in the message, in bound values and in rendered tracebacks alike;
- each line is written and flushed at once (``WriteLoggerFactory``);
- stdlib loggers (httpx, hypercorn, trio's warnings) go through the same redaction and
  renderer; httpx and httpcore are raised to WARNING, so a request is not an INFO line.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO

import msgspec
import structlog

from .config import LogConfig
from .redaction import REDACTOR, Redactor

__all__ = ["configure_logging", "get_logger"]

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}

# Libraries that log every request at INFO; their warnings still come through.
QUIET_LOGGERS = ("httpx", "httpcore", "hpack", "hypercorn.access")


def _encode_fallback(value: Any) -> Any:
    return str(value)


_FIRST_KEYS = ("timestamp", "level", "event")

# Built once: msgspec's encoder is the fastest JSON encoder here and renders any object it
# does not know with str() rather than failing a log call.
_json = msgspec.json.Encoder(enc_hook=_encode_fallback)


def render_json(logger: Any, method_name: str, event_dict: dict[str, Any]) -> str:
    """The last processor: the event as one line of JSON, time, level and event first."""
    ordered = {key: event_dict[key] for key in _FIRST_KEYS if key in event_dict}
    ordered.update(event_dict)
    try:
        return _json.encode(ordered).decode()
    except (TypeError, ValueError, OverflowError):
        # Non-string keys or values msgspec refuses: fall back to strings, never drop a line.
        return _json.encode({str(k): str(v) for k, v in event_dict.items()}).decode()


def configure_logging(
    config: LogConfig | None = None,
    *,
    stream: TextIO | None = None,
    redactor: Redactor = REDACTOR,
    cache_logger_on_first_use: bool = False,
) -> None:
    """Configure structlog (and stdlib logging) for the process.

    ``stream`` defaults to ``sys.stdout`` at call time. The service passes
    ``cache_logger_on_first_use=True``; tests leave it off so ``capture_logs`` works.
    """
    config = config or LogConfig()
    stream = stream if stream is not None else sys.stdout
    level = _LEVELS[config.level]
    console = config.format == "console" and _isatty(stream)

    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Any
    if console:
        shared.append(structlog.processors.format_exc_info)
        renderer = structlog.dev.ConsoleRenderer()
    else:
        # Structured tracebacks without locals: a local variable may hold a credential that
        # was never registered, and truncated reprs would defeat the value redaction.
        shared.append(
            structlog.processors.ExceptionRenderer(
                structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
            )
        )
        renderer = render_json
    shared.append(redactor)

    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.WriteLoggerFactory(file=stream),
        cache_logger_on_first_use=cache_logger_on_first_use,
    )
    _configure_stdlib(stream, level, shared, renderer)


def _configure_stdlib(stream: TextIO, level: int, shared: list[Any], renderer: Any) -> None:
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, "_pssync", False):
            root.removeHandler(old)
    handler._pssync = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(max(level, logging.WARNING))


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def get_logger(name: str | None = None, **initial: Any) -> Any:
    """A structlog logger; ``name`` becomes the ``logger`` key of each line."""
    if name is not None:
        initial["logger"] = name
    return structlog.get_logger(**initial)
