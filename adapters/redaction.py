"""Secrets as the HTTP layer receives them, and their removal from every message and log.

The daemon's secret layer resolves references (file, credential, environment) and hands
values down; this module only needs to *read* them, through :func:`reveal`. Everything that
leaves the HTTP layer as text (exception messages, structlog events) goes through a
:class:`Redactor` first.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, MutableMapping
from typing import Any, Protocol, runtime_checkable

REDACTED = "[REDACTED]"


@runtime_checkable
class SecretValue(Protocol):
    """A resolved secret that only gives its value when asked explicitly."""

    def reveal(self) -> str:
        """Return the secret's plain value."""
        ...


@runtime_checkable
class _PydanticStyleSecret(Protocol):
    def get_secret_value(self) -> str: ...


Secret = str | SecretValue | _PydanticStyleSecret
"""What an auth strategy accepts for a secret: a plain ``str`` or an object that reveals it."""


def reveal(secret: Secret) -> str:
    """Return the plain value of ``secret`` (``str``, ``reveal()`` or ``get_secret_value()``)."""
    if isinstance(secret, str):
        return secret
    if isinstance(secret, SecretValue):
        return secret.reveal()
    if isinstance(secret, _PydanticStyleSecret):
        return secret.get_secret_value()
    raise TypeError(f"not a secret: {type(secret).__name__}")


# Shapes that carry credentials whatever their value; they catch secrets we were never
# told about (a vendor echoing a token back, a header pasted into an exception).
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+"), rf"\1 {REDACTED}"),
    (
        # The closing quote is optional: a message cut short must not leak half a value.
        re.compile(r'(?i)\b(oauth_(?:signature|token|consumer_key|nonce))="[^"]*"?'),
        rf'\1="{REDACTED}"',
    ),
    (re.compile(r"\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]+"), REDACTED),
    (
        re.compile(
            r"(?i)\b(access_token|refresh_token|client_secret|assertion|client_assertion"
            r"|password|api_key|signature)=([^&\s\"']+)"
        ),
        rf"\1={REDACTED}",
    ),
    (
        re.compile(
            r'(?i)"(access_token|refresh_token|client_secret|assertion|password|signature)"'
            r'\s*:\s*"[^"]*"?'
        ),
        rf'"\1": "{REDACTED}"',
    ),
)

# Values shorter than this are not searched for: replacing every "1" or "ab" would mangle
# messages without protecting anything worth protecting.
_MIN_SECRET_LEN = 4


class Redactor:
    """Removes known secret values and credential-shaped text from strings.

    ``secrets`` is called on every use so that values that change (a refreshed access
    token) are always covered.
    """

    def __init__(self, secrets: Callable[[], Iterable[str]] = tuple) -> None:
        self._secrets = secrets

    def __call__(self, text: str) -> str:
        """Return ``text`` with every secret and credential-shaped substring replaced."""
        # Longest first, so a secret that contains another is removed whole.
        for value in sorted(set(self._secrets()), key=len, reverse=True):
            if len(value) >= _MIN_SECRET_LEN:
                text = text.replace(value, REDACTED)
        for pattern, replacement in _PATTERNS:
            text = pattern.sub(replacement, text)
        return text

    def processor(
        self, _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        """A structlog processor that redacts every string value of an event."""
        for key, value in event_dict.items():
            if isinstance(value, str):
                event_dict[key] = self(value)
        return event_dict
