"""Stripe's request encoding: nested values flattened to bracketed form keys.

Stripe takes ``application/x-www-form-urlencoded`` bodies, never JSON::

    {"metadata": {"pssync_id": "A-1"}, "items": [{"price": "price_1"}]}
    → metadata[pssync_id]=A-1 & items[0][price]=price_1

Lists are indexed (``[0]``, ``[1]``) as the official libraries send them; booleans are
``true``/``false``; ``None`` values are left out (an empty string is how Stripe unsets).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["encode_form"]


def encode_form(values: Mapping[str, Any]) -> dict[str, str]:
    """Flatten ``values`` into Stripe form pairs (insertion order kept).

    Raises ``TypeError`` for a value with no form encoding (a float: money goes as integer
    minor units, never as a float).
    """
    pairs: dict[str, str] = {}
    for key, value in values.items():
        _flatten(pairs, str(key), value)
    return pairs


def _flatten(pairs: dict[str, str], key: str, value: Any) -> None:
    if value is None:
        return
    if isinstance(value, Mapping):
        for name, item in value.items():
            _flatten(pairs, f"{key}[{name}]", item)
    elif isinstance(value, str):
        pairs[key] = value
    elif isinstance(value, bool):
        pairs[key] = "true" if value else "false"
    elif isinstance(value, int):
        pairs[key] = str(value)
    elif isinstance(value, Sequence):
        for index, item in enumerate(value):
            _flatten(pairs, f"{key}[{index}]", item)
    else:
        raise TypeError(f"cannot form-encode {key}={value!r} ({type(value).__name__})")
