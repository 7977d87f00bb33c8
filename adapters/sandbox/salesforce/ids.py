"""Salesforce-like record ids: 3-character key prefix, 12 more characters, 3-character suffix.

The 18-character form appends Salesforce's case-safe checksum to the 15-character id, so
ids from the sandbox survive case-insensitive handling the same way real ones do and a
15-character id given back is accepted (:func:`to_18`).
"""

from __future__ import annotations

import re

_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_SUFFIX = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_ID = re.compile(r"^[0-9A-Za-z]{15}(?:[0-9A-Z]{3})?$")
#: Characters 4-6: a two-character pod ("Rs", for "sandbox") and Salesforce's reserved 0.
POD = "Rs0"


def _checksum(id15: str) -> str:
    suffix = ""
    for chunk in range(3):
        bits = 0
        for position, char in enumerate(id15[chunk * 5 : chunk * 5 + 5]):
            if "A" <= char <= "Z":
                bits |= 1 << position
        suffix += _SUFFIX[bits]
    return suffix


def make_id(prefix: str, number: int) -> str:
    """The 18-character id of the ``number``-th record with key prefix ``prefix``."""
    digits = ""
    while number:
        number, remainder = divmod(number, 62)
        digits = _BASE62[remainder] + digits
    id15 = prefix + POD + digits.rjust(9, "0")
    return id15 + _checksum(id15)


def is_id(value: str) -> bool:
    return bool(_ID.match(value))


def to_18(value: str) -> str:
    """The 18-character form of a 15- or 18-character id (unchanged if already 18)."""
    return value + _checksum(value) if len(value) == 15 else value
