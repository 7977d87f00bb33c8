"""Keeping secrets out of log lines.

Three rules, applied by :meth:`Redactor.__call__` as a structlog processor:

- a key whose name says it holds a credential (``token``, ``client_secret``,
  ``authorization``, …) has its value replaced, whatever the value is;
- any string that contains a *registered* secret value has that value masked. Resolved
  :class:`~daemon.secrets.Secret` values are registered when they are resolved, so a token
  that leaks into an exception message or a vendor's error body is still masked;
- credential-shaped text (``Bearer …``, ``sk_live_…``, ``client_secret=…``) is masked by the
  HTTP layer's patterns (:mod:`adapters.redaction`), which catch tokens never registered
  here, such as an access token minted at run time.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from typing import Any

from adapters.redaction import REDACTED as MASK
from adapters.redaction import Redactor as ShapeRedactor

# Substrings of a lower-cased key (``-`` folded to ``_``) that mark it as a credential.
SENSITIVE_KEY_PARTS = (
    "token",
    "secret",
    "password",
    "passwd",
    "authorization",
    "api_key",
    "apikey",
    "private_key",
    "cookie",
    "credential",
)

# Shorter values are not credentials, and masking them would mangle ordinary text.
MIN_SECRET_LENGTH = 4


# structlog's stdlib bridge metadata: removed before rendering, needed as objects until then.
_PASS_THROUGH = ("_record", "_from_structlog")


def is_sensitive_key(key: str) -> bool:
    """Whether a log key (or header name) names a credential."""
    folded = key.lower().replace("-", "_")
    return any(part in folded for part in SENSITIVE_KEY_PARTS)


class Redactor:
    """A structlog processor that masks credentials; thread-safe registration."""

    def __init__(self) -> None:
        self._values: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self._lock = threading.Lock()
        self._shapes = ShapeRedactor()

    def register(self, value: str) -> None:
        """Mask ``value`` wherever it appears in a logged string from now on."""
        if len(value) < MIN_SECRET_LENGTH:
            return
        with self._lock:
            if value in self._values:
                return
            self._values.add(value)
            # Longest first, so a secret that contains another is masked whole.
            ordered = sorted(self._values, key=len, reverse=True)
            self._pattern = re.compile("|".join(re.escape(v) for v in ordered))

    def clear(self) -> None:
        """Forget every registered value (tests)."""
        with self._lock:
            self._values.clear()
            self._pattern = None

    def scrub(self, value: Any) -> Any:
        """Return ``value`` with registered secrets masked and sensitive keys replaced."""
        if isinstance(value, str):
            pattern = self._pattern
            return self._shapes(pattern.sub(MASK, value) if pattern is not None else value)
        if isinstance(value, Mapping):
            return {
                key: MASK if isinstance(key, str) and is_sensitive_key(key) else self.scrub(item)
                for key, item in value.items()
            }
        if isinstance(value, list | tuple):
            return type(value)(self.scrub(item) for item in value)
        if isinstance(value, bytes | bytearray):
            return self.scrub(value.decode("utf-8", "replace"))
        if value is None or isinstance(value, bool | int | float):
            return value
        # Anything else would be rendered with str() anyway; render it here so that a
        # secret inside an object's text (an exception, a URL) is masked too.
        return self.scrub(str(value))

    def __call__(self, logger: Any, method_name: str, event_dict: dict[str, Any]) -> dict[str, Any]:
        scrubbed = self.scrub({k: v for k, v in event_dict.items() if k not in _PASS_THROUGH})
        scrubbed.update((k, event_dict[k]) for k in _PASS_THROUGH if k in event_dict)
        return scrubbed  # type: ignore[no-any-return]


# The process's redactor: secrets register here when resolved, and the logging
# configuration installs it. A module-level object because every secret resolved anywhere
# in the process must be masked in every log line, whoever logs it.
REDACTOR = Redactor()
