"""The one error hierarchy of pssync.

Every error pssync raises on purpose derives from :class:`PssyncError`; foreign exceptions
(sqlite3, httpx, OSError, msgspec) are translated at the boundary with ``raise … from exc``::

    PssyncError
    ├── ConfigError            bad configuration file, mapping or secret reference
    │   └── SecretError        a secret reference that cannot be resolved
    ├── StoreError             the journal cannot do what was asked
    │   ├── SchemaVersionError the file was written by a newer pssync
    │   └── LeaseLost          a run's lease expired or was taken by another claimer
    ├── AdapterError           a vendor call failed (carries the system's name)
    │   ├── RetryableError     5xx, timeouts, connection resets: try again later
    │   │   └── ThrottledError 429 or a vendor limit code: wait ``retry_after_s`` first
    │   └── PermanentError     validation and other 4xx: never retried, goes to exceptions
    ├── PayloadError           a vendor or control-socket payload that does not decode
    ├── ActorError             the actor runtime
    │   ├── ActorFailed        a supervised child failed past its restart intensity
    │   ├── AskTimeout         no reply to an ask within its deadline
    │   └── MailboxClosed      the actor is gone
    └── ControlError           a control-socket request that cannot be served

This module imports nothing from pssync so that every layer may use it.
"""

from __future__ import annotations


class PssyncError(Exception):
    """Base of every error pssync raises on purpose."""


class ConfigError(PssyncError):
    """A configuration problem; ``path`` names the key (``systems.erp.limits.rate``)."""

    def __init__(self, message: str, *, path: str = "", source: str = "") -> None:
        self.path = path
        self.source = source
        where = ": ".join(part for part in (source, path) if part)
        super().__init__(f"{where}: {message}" if where else message)
        self.message = message


class SecretError(ConfigError):
    """A secret reference (``file:``, ``credential:``, ``env:``) that cannot be resolved."""


class StoreError(PssyncError):
    """The journal cannot do what was asked."""


class SchemaVersionError(StoreError):
    """The journal file was written by a newer pssync than this one."""


class LeaseLost(StoreError):
    """A run's lease expired or belongs to another claimer."""


class AdapterError(PssyncError):
    """A call to a vendor system failed.

    ``system`` is the configured system name, ``status`` the HTTP status if there was one,
    ``code`` the vendor's own error code if it gave one.
    """

    def __init__(
        self,
        message: str,
        *,
        system: str = "",
        status: int | None = None,
        code: str = "",
    ) -> None:
        self.system = system
        self.status = status
        self.code = code
        self.message = message
        prefix = f"{system}: " if system else ""
        super().__init__(f"{prefix}{message}")


class RetryableError(AdapterError):
    """A transient failure (5xx, timeout, reset): the same request may succeed later."""


class ThrottledError(RetryableError):
    """The vendor asked us to slow down; wait ``retry_after_s`` seconds before retrying."""

    def __init__(self, message: str, *, retry_after_s: float | None = None, **kwargs) -> None:
        super().__init__(message, **kwargs)
        self.retry_after_s = retry_after_s


class PermanentError(AdapterError):
    """A failure that retrying cannot fix (validation, 4xx): it becomes an exception."""


class PayloadError(PssyncError):
    """A payload that does not decode; ``where`` names its origin and the field path."""

    def __init__(self, message: str, *, where: str = "") -> None:
        self.where = where
        self.message = message
        super().__init__(f"{where}: {message}" if where else message)


class ActorError(PssyncError):
    """A failure of the actor runtime."""


class ActorFailed(ActorError):
    """A supervised child failed more often than its restart intensity allows."""


class AskTimeout(ActorError):
    """An ask got no reply within its deadline."""


class MailboxClosed(ActorError):
    """The actor's mailbox is closed: the actor has stopped."""


class ControlError(PssyncError):
    """A control-socket request that cannot be served; ``code`` is machine-readable."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(f"{code}: {message}")
