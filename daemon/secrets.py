"""Secrets are references in the configuration, never values.

A secret field holds one of::

    file:/etc/pssync/secrets/stripe.key   read the file (absolute path)
    credential:stripe-api-key             read $CREDENTIALS_DIRECTORY/stripe-api-key
                                          (systemd LoadCredential= / LoadCredentialEncrypted=)
    env:STRIPE_API_KEY                    read an environment variable

The configuration decodes such a string into a :class:`SecretRef`; resolving it gives a
:class:`Secret`, whose ``repr``/``str`` never show the value and whose value is registered
with the log redactor. Error messages name the reference (kind and name) and never a value.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import msgspec

from actors.errors import ConfigError, SecretError

from .errors import ConfigErrors, key_path
from .redaction import REDACTOR, Redactor

SecretKind = Literal["file", "credential", "env"]

REFERENCE_FORMS = "file:/path, credential:NAME or env:VAR"

# systemd credential IDs: no "/" and not "." or ".." (they name a file in a directory).
_CREDENTIAL_NAME = re.compile(r"^[A-Za-z0-9_.@-]+$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class SecretRef:
    """Where a secret lives: ``kind`` is file, credential or env; ``name`` the path or name."""

    __slots__ = ("kind", "name")

    kind: SecretKind
    name: str

    def __init__(self, kind: SecretKind, name: str) -> None:
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "name", name)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("SecretRef is immutable")

    @classmethod
    def parse(cls, text: object) -> SecretRef:
        """Parse a reference; the error never quotes ``text``, which may be the secret itself."""
        if not isinstance(text, str):
            raise TypeError(f"expected a secret reference ({REFERENCE_FORMS})")
        kind, sep, name = text.partition(":")
        if not sep or kind not in ("file", "credential", "env"):
            if sep and re.fullmatch(r"[a-z]{2,12}", kind):
                # Not quoted back: "user:pass" also looks like this, and is a secret.
                raise ValueError(f"unknown secret reference kind; expected {REFERENCE_FORMS}")
            raise ValueError(
                f"expected a secret reference ({REFERENCE_FORMS}), got a plain string: "
                "secret values never go in the configuration file"
            )
        if kind == "file" and not name.startswith("/"):
            raise ValueError(
                f"file: secret reference needs an absolute path, got {json.dumps(name)}"
            )
        if kind == "credential" and (not _CREDENTIAL_NAME.match(name) or name in (".", "..")):
            raise ValueError(
                f"credential: secret reference needs a credential name "
                f"(letters, digits, '_', '.', '@', '-'), got {json.dumps(name)}"
            )
        if kind == "env" and not _ENV_NAME.match(name):
            raise ValueError(
                f"env: secret reference needs an environment variable name, got {json.dumps(name)}"
            )
        return cls(kind, name)  # type: ignore[arg-type]

    def __str__(self) -> str:
        return f"{self.kind}:{self.name}"

    def __repr__(self) -> str:
        return f"SecretRef({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SecretRef):
            return NotImplemented
        return (self.kind, self.name) == (other.kind, other.name)

    def __hash__(self) -> int:
        return hash((self.kind, self.name))


class Secret:
    """A resolved secret. Only :meth:`reveal` gives the value; nothing else prints it."""

    __slots__ = ("_value", "ref")

    def __init__(self, value: str, ref: SecretRef | None = None) -> None:
        self._value = value
        self.ref = ref

    def reveal(self) -> str:
        """The secret value, for the one place that must send it (an HTTP header)."""
        return self._value

    def __repr__(self) -> str:
        source = f" from {self.ref}" if self.ref is not None else ""
        return f"Secret('********'{source})"

    __str__ = __repr__

    def __format__(self, format_spec: str) -> str:
        return repr(self)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return self._value == other._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self) -> Any:
        raise TypeError("a Secret cannot be pickled")


class SecretResolver:
    """Resolves references against an environment and registers values with a redactor."""

    def __init__(
        self,
        environ: Mapping[str, str] | None = None,
        *,
        redactor: Redactor = REDACTOR,
    ) -> None:
        self._environ = os.environ if environ is None else environ
        self._redactor = redactor

    def resolve(self, ref: SecretRef, *, path: str = "") -> Secret:
        """Read the secret ``ref`` points at; ``path`` is the config key, for error messages."""
        value = self._read(ref, path)
        # A trailing newline is how files and `systemd-creds` store values; never part of a key.
        value = value.rstrip("\r\n")
        if not value:
            raise SecretError(f"{_describe(ref)} is empty", path=path)
        self._redactor.register(value)
        return Secret(value, ref)

    def _read(self, ref: SecretRef, path: str) -> str:
        if ref.kind == "env":
            try:
                return self._environ[ref.name]
            except KeyError:
                raise SecretError(f"{_describe(ref)} is not set", path=path) from None
        if ref.kind == "credential":
            directory = self._environ.get("CREDENTIALS_DIRECTORY")
            if not directory:
                raise SecretError(
                    f"{_describe(ref)}: $CREDENTIALS_DIRECTORY is not set "
                    "(give the unit LoadCredential=" + ref.name + ":…)",
                    path=path,
                )
            file = Path(directory) / ref.name
        else:
            file = Path(ref.name)
        try:
            return file.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise SecretError(f"{_describe(ref)}: {file} does not exist", path=path) from None
        except PermissionError:
            raise SecretError(f"{_describe(ref)}: permission denied on {file}", path=path) from None
        except UnicodeDecodeError:
            raise SecretError(f"{_describe(ref)}: {file} is not UTF-8 text", path=path) from None
        except OSError as exc:
            raise SecretError(
                f"{_describe(ref)}: cannot read {file} ({exc.strerror or type(exc).__name__})",
                path=path,
            ) from None


def _describe(ref: SecretRef) -> str:
    if ref.kind == "env":
        return f"environment variable {ref.name}"
    if ref.kind == "credential":
        return f"credential {ref.name}"
    return f"secret file {ref.name}"


def secret_refs(value: Any, path: str = "") -> list[tuple[str, SecretRef]]:
    """Every SecretRef inside a decoded configuration, with its dotted key path."""
    found: list[tuple[str, SecretRef]] = []
    if isinstance(value, SecretRef):
        found.append((path, value))
    elif isinstance(value, msgspec.Struct):
        for field in msgspec.structs.fields(value):
            child = getattr(value, field.name)
            found.extend(secret_refs(child, key_path(path, field.encode_name)))
    elif isinstance(value, Mapping):
        for key, child in value.items():
            found.extend(secret_refs(child, key_path(path, str(key))))
    elif isinstance(value, list | tuple):
        for index, child in enumerate(value):
            found.extend(secret_refs(child, key_path(path, index)))
    return found


def resolve_all(config: Any, resolver: SecretResolver) -> dict[str, Secret]:
    """Resolve every secret in ``config``, keyed by dotted path; report all failures at once."""
    secrets: dict[str, Secret] = {}
    failures: list[ConfigError] = []
    for path, ref in secret_refs(config):
        try:
            secrets[path] = resolver.resolve(ref, path=path)
        except SecretError as exc:
            failures.append(exc)
    if failures:
        raise failures[0] if len(failures) == 1 else ConfigErrors(failures)
    return secrets
