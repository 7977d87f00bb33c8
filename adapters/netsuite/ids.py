"""External ids: deterministic NetSuite ``externalId`` values from canonical ids and keys.

NetSuite allows only letters, digits, ``_`` and ``-`` in an external id (a ``|`` or ``.``
breaks ``eid:`` parsing), and the id is the upsert key, so the mapping must be
deterministic and injective. The scheme is ``<prefix>-<kind>-<id>``:

- an id made of allowed characters, at most :data:`MAX_PLAIN` long and without ``--``,
  is used as is (readable in the NetSuite UI: ``pssync-tb-te_1042``);
- any other id becomes ``<sanitised head>--<sha256 hex prefix>``. Only hashed ids contain
  ``--``, so a plain id can never equal a hashed one.

``kind`` keeps the same canonical id apart across record types and roles.
"""

from __future__ import annotations

import hashlib
import re

__all__ = ["MAX_PLAIN", "external_id", "is_external_id"]

MAX_PLAIN = 64
_HEAD = 24
_DIGEST = 20  # 80 bits of SHA-256: collisions are not a practical concern
_ALLOWED = re.compile(r"^[A-Za-z0-9_-]+$")
_DISALLOWED = re.compile(r"[^A-Za-z0-9_-]+")


def is_external_id(value: str) -> bool:
    """Whether NetSuite accepts ``value`` as an external id."""
    return bool(_ALLOWED.match(value))


def external_id(prefix: str, kind: str, canonical_id: str) -> str:
    """The external id of ``canonical_id`` as a ``kind`` record (same input, same output)."""
    if not canonical_id:
        raise ValueError("an external id needs a non-empty canonical id")
    if is_external_id(canonical_id) and len(canonical_id) <= MAX_PLAIN and "--" not in canonical_id:
        safe = canonical_id
    else:
        head = _DISALLOWED.sub("_", canonical_id)[:_HEAD].replace("--", "_").strip("-")
        digest = hashlib.sha256(canonical_id.encode("utf-8")).hexdigest()[:_DIGEST]
        safe = f"{head}--{digest}"
    return f"{prefix}-{kind}-{safe}"
