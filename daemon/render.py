"""Output for people and for scripts: plain-text tables, and JSON for ``--json``."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TextIO

import msgspec

_json = msgspec.json.Encoder(enc_hook=str)


def table(
    rows: Iterable[Sequence[Any] | Mapping[str, Any]],
    headers: Sequence[str],
    *,
    align_right: Iterable[str] = (),
) -> str:
    """A left-aligned text table with a header line; numbers and ``align_right`` right-aligned.

    Rows are sequences in header order or mappings keyed by header.
    """
    raw_rows = [
        [_cell(row.get(h) if isinstance(row, Mapping) else row[i]) for i, h in enumerate(headers)]
        for row in rows
    ]
    right = set(align_right)
    widths = [len(h) for h in headers]
    for row in raw_rows:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    numeric = [
        headers[i] in right or _numeric_column([r[i] for r in raw_rows])
        for i in range(len(headers))
    ]

    def line(values: Sequence[str]) -> str:
        parts = [
            v.rjust(w) if num else v.ljust(w)
            for v, w, num in zip(values, widths, numeric, strict=True)
        ]
        return "  ".join(parts).rstrip()

    return "\n".join([line([h.upper() for h in headers]), *(line(r) for r in raw_rows)])


def key_values(pairs: Iterable[tuple[str, Any]]) -> str:
    """``key  value`` lines, keys padded to one width."""
    items = [(k, _cell(v)) for k, v in pairs]
    width = max((len(k) for k, _ in items), default=0)
    return "\n".join(f"{k.ljust(width)}  {v}".rstrip() for k, v in items)


def to_json(value: Any) -> str:
    """Stable JSON for ``--json`` output (msgspec Structs, dicts, lists …)."""
    return msgspec.json.format(_json.encode(value), indent=2).decode()


def emit(text: str, *, file: TextIO | None = None) -> None:
    """Print ``text`` followed by a newline on stdout (or ``file``)."""
    print(text, file=file or sys.stdout)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.3f}".rstrip("0").rstrip(".") if value % 1 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, list | tuple | set | frozenset):
        return ", ".join(_cell(v) for v in value) or "-"
    return str(value)


def _numeric_column(cells: list[str]) -> bool:
    """Every cell a number or empty ("-"), and at least one number."""
    values = [cell for cell in cells if cell != "-"]
    return bool(values) and all(_is_number(cell) for cell in values)


def _is_number(text: str) -> bool:
    return text.replace(",", "").replace(".", "", 1).lstrip("-").isdigit()
