"""Stripe's form encoding: bracket-nested keys parsed into dicts and lists.

``metadata[erp_id]=1&items[0][price]=price_1&expand[]=a&expand[]=b`` becomes
``{"metadata": {"erp_id": "1"}, "items": [{"price": "price_1"}], "expand": ["a", "b"]}``.

Rules (Rack's, which Stripe's API follows; the strict parts are the sandbox's choice):

- a key is ``name`` followed by zero or more ``[segment]``; a segment has no brackets.
  Anything else (``a[b``, ``a]``, ``[a]``, ``a[b]c``) is refused, naming the key.
- ``[]`` appends to a list and must be the last segment; ``[0]``, ``[1]``… build a list
  whose indices must run from 0 without gaps; any other segment builds a dict.
- a key used both as a value and as a container (``a=1&a[b]=2``) is refused;
  a scalar key given twice keeps the last value (Rack).
- values stay strings; the endpoint decides their types.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl

from .errors import invalid

_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")
_SEGMENT = re.compile(r"\[([^\[\]]*)\]")


class _Appended(list):
    """A list built with ``key[]=``."""


class _Indexed(dict):
    """A list built with ``key[0]=``, ``key[1]=`` (index → value until finished)."""


def parse_pairs(text: str) -> list[tuple[str, str]]:
    try:
        return parse_qsl(text, keep_blank_values=True, strict_parsing=False)
    except ValueError:
        raise invalid("Invalid request: the body could not be decoded.") from None


def parse_form(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    root: dict[str, Any] = {}
    for key, value in pairs:
        match = _KEY.match(key)
        if match is None:
            raise invalid(f"Invalid parameter name: {key}", key, "parameter_unknown")
        path = [match.group(1), *_SEGMENT.findall(match.group(2))]
        _insert(root, path, value, key)
    return _finish(root, "")


def _container_for(segment: str) -> type:
    if segment == "":
        return _Appended
    if segment.isdigit():
        return _Indexed
    return dict


def _insert(root: dict[str, Any], path: list[str], value: str, key: str) -> None:
    node: Any = root
    for depth, segment in enumerate(path[:-1]):
        if segment == "":
            raise invalid(f"Invalid parameter name: {key} ('[]' must be the last segment)", key)
        slot: Any = int(segment) if isinstance(node, _Indexed) else segment
        wanted = _container_for(path[depth + 1])
        child = node.get(slot)
        if child is None:
            child = wanted()
            node[slot] = child
        elif type(child) is not wanted:
            raise invalid(f"Invalid value for {key}: conflicting parameter types.", key)
        node = child
    last = path[-1]
    if isinstance(node, _Appended):
        node.append(value)
        return
    slot = int(last) if isinstance(node, _Indexed) else last
    if isinstance(node.get(slot), dict | list):
        raise invalid(f"Invalid value for {key}: conflicting parameter types.", key)
    node[slot] = value


def _finish(value: Any, path: str) -> Any:
    if isinstance(value, _Indexed):
        indices = sorted(value)
        if indices != list(range(len(indices))):
            raise invalid(f"Invalid array: {path} indices must start at 0 and have no gaps.", path)
        return [_finish(value[index], f"{path}[{index}]") for index in indices]
    if isinstance(value, list):
        return [_finish(item, f"{path}[]") for item in value]
    if isinstance(value, dict):
        return {
            name: _finish(item, f"{path}[{name}]" if path else name) for name, item in value.items()
        }
    return value
