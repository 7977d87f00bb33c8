"""Stripe's Search Query Language, the part billing sync uses.

::

    query   := clause ( (AND | OR) clause )*        — one connective per query, ≤ 10 clauses
    clause  := [-] field op value
    field   := name | metadata['key'] | metadata["key"]
    op      := ':' (exact, case-insensitive) | '~' (substring, ≥ 3 chars)
             | '>' | '<' | '>=' | '<=' (numbers: created, amounts)
    value   := 'text' | "text" | integer | null

``-`` negates a clause; ``field:null`` matches a missing value. Mixing AND and OR, an
unknown field or a malformed clause is 400 ``invalid_request_error`` with
``param: "query"``, as Stripe answers.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import StripeError, invalid

_CLAUSE = re.compile(
    r"""\s*(?P<neg>-)?
    (?P<field>metadata\[(?:'(?P<mk1>[^']*)'|"(?P<mk2>[^"]*)")\]|[a-z_]+)
    \s*(?P<op>>=|<=|:|~|>|<)\s*
    (?:'(?P<sq>[^']*)'|"(?P<dq>[^"]*)"|(?P<num>-?\d+)|(?P<null>null))
    \s*""",
    re.VERBOSE,
)
_CONNECTIVE = re.compile(r"\s*(AND|OR)\s+", re.IGNORECASE)


@dataclass(frozen=True)
class Clause:
    negate: bool
    field: str
    metadata_key: str | None
    op: str
    value: str | int | None


def _error(message: str) -> StripeError:
    return invalid(f"Invalid query: {message}", "query")


def parse(query: str, fields: set[str]) -> tuple[str, list[Clause]]:
    """(connective, clauses); raises a Stripe 400 for anything else."""
    clauses: list[Clause] = []
    connectives: set[str] = set()
    position = 0
    text = query.strip()
    if not text:
        raise _error("the query is empty.")
    while True:
        match = _CLAUSE.match(text, position)
        if match is None:
            raise _error(f"could not parse the query near '{text[position : position + 30]}'.")
        metadata_key = match.group("mk1") if match.group("mk1") is not None else match.group("mk2")
        field = "metadata" if metadata_key is not None else match.group("field")
        if field not in fields:
            raise _error(f"'{field}' is not a supported search field.")
        if match.group("num") is not None:
            value: str | int | None = int(match.group("num"))
        elif match.group("null") is not None:
            value = None
        else:
            value = match.group("sq") if match.group("sq") is not None else match.group("dq")
        op = match.group("op")
        if op == "~" and (not isinstance(value, str) or len(value) < 3):
            raise _error("substring matches (~) need at least 3 characters.")
        clauses.append(Clause(bool(match.group("neg")), field, metadata_key, op, value))
        position = match.end()
        if position >= len(text):
            break
        connective = _CONNECTIVE.match(text, position)
        if connective is None:
            raise _error(f"expected AND or OR near '{text[position : position + 30]}'.")
        connectives.add(connective.group(1).upper())
        position = connective.end()
    if len(connectives) > 1:
        raise _error("AND and OR cannot be combined in one query.")
    if len(clauses) > 10:
        raise _error("a query can have at most 10 clauses.")
    return (connectives.pop() if connectives else "AND"), clauses


def matcher(query: str, fields: set[str]) -> Callable[[dict[str, Any]], bool]:
    connective, clauses = parse(query, fields)

    def test(obj: dict[str, Any]) -> bool:
        results = (_test(clause, obj) for clause in clauses)
        return all(results) if connective == "AND" else any(results)

    return test


def _test(clause: Clause, obj: dict[str, Any]) -> bool:
    if clause.metadata_key is not None:
        actual = (obj.get("metadata") or {}).get(clause.metadata_key)
    else:
        actual = obj.get(clause.field)
        if isinstance(actual, dict) and "id" in actual:
            actual = actual["id"]
    result = _compare(actual, clause.op, clause.value)
    return not result if clause.negate else result


def _compare(actual: Any, op: str, expected: str | int | None) -> bool:
    if expected is None:
        return actual is None if op == ":" else False
    if actual is None:
        return False
    if op == ":":
        return str(actual).lower() == str(expected).lower()
    if op == "~":
        return str(expected).lower() in str(actual).lower()
    try:
        left, right = float(actual), float(expected)
    except (TypeError, ValueError):
        return False
    return {">": left > right, "<": left < right, ">=": left >= right, "<=": left <= right}[op]
