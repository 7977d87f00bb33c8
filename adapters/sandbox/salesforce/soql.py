"""A SOQL subset: parse, then run against :class:`~.state.SalesforceState`.

Supported::

    SELECT Id, Name, Account.Name, COUNT(),
           (SELECT Id, Quantity FROM OpportunityLineItems WHERE … ORDER BY … LIMIT n)
    FROM Account | Contact | Opportunity | OpportunityLineItem
    WHERE a = 'x' AND (b != null OR c IN ('p', 'q')) AND NOT d LIKE 'A%'
          AND SystemModstamp > 2026-01-01T00:00:00Z AND CloseDate <= 2026-03-31
          AND IsWon = true AND Amount >= 1000
    ORDER BY SystemModstamp ASC, Id DESC NULLS LAST
    LIMIT 100 OFFSET 10

Semantics copied from Salesforce: keywords and field names are case-insensitive; ``=``,
``!=``, ``IN`` and ordering on text are case-insensitive; ``ASC`` sorts nulls first and
``DESC`` nulls last unless ``NULLS FIRST|LAST`` says otherwise; datetime literals are
unquoted ISO 8601 and a quoted value against a datetime/date field is an error; a
parent-child subquery with no rows is ``null``. Errors: syntax → ``MALFORMED_QUERY``,
unknown column → ``INVALID_FIELD``, unknown object or relationship → ``INVALID_TYPE``,
wrongly typed filter value → ``INVALID_QUERY_FILTER_OPERATOR`` (all HTTP 400; the message
carries Salesforce's ``ERROR at Row:1:Column:N`` locator).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from .errors import SalesforceError
from .ids import is_id, to_18
from .schema import SOBJECTS, Field, SObject, sobject
from .state import SalesforceState, normalize_datetime

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<string>'(?:[^'\\]|\\.)*')
  | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2}))
  | (?P<date>\d{4}-\d{2}-\d{2})
  | (?P<number>-?\d+(?:\.\d+)?)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op><>|!=|<=|>=|=|<|>|\(|\)|,|\.)
    """,
    re.VERBOSE,
)
_KEYWORDS = set(
    [
        "select",
        "from",
        "where",
        "and",
        "or",
        "not",
        "in",
        "like",
        "order",
        "by",
        "asc",
        "desc",
        "nulls",
        "first",
        "last",
        "limit",
        "offset",
        "true",
        "false",
        "null",
        "count",
    ]
)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "'": "'", '"': '"', "\\": "\\"}


@dataclass(frozen=True)
class Token:
    kind: str  # string | datetime | date | number | name | keyword | op | eof
    text: str
    value: Any
    column: int


@dataclass(frozen=True)
class Path:
    """A column: ``fields`` are the reference fields walked, then the final field."""

    names: tuple[str, ...]  # canonical names as written in the output (Account, Name)
    hops: tuple[Field, ...]  # reference fields followed (AccountId)
    target: Field


@dataclass
class Compare:
    path: Path
    op: str
    value: Any


@dataclass
class InList:
    path: Path
    values: list[Any]
    negate: bool


@dataclass
class Like:
    path: Path
    pattern: re.Pattern[str]


@dataclass
class BoolOp:
    op: str  # and | or | not
    parts: list[Any]


@dataclass
class Order:
    path: Path
    descending: bool
    nulls_last: bool


@dataclass
class Query:
    obj: SObject
    columns: list[Path | Query] = field(default_factory=list)
    count_only: bool = False
    where: Any = None
    order: list[Order] = field(default_factory=list)
    limit: int | None = None
    offset: int = 0
    relationship: str | None = None  # for subqueries: the child relationship name
    parent_field: str | None = None  # for subqueries: the child's reference field


def _locate(soql: str, column: int, message: str) -> str:
    return f"\n{soql}\n{' ' * (column - 1)}^\nERROR at Row:1:Column:{column}\n{message}"


def tokenize(soql: str) -> list[Token]:
    tokens: list[Token] = []
    position = 0
    while position < len(soql):
        match = _TOKEN.match(soql, position)
        if match is None:
            raise SalesforceError(
                400,
                "MALFORMED_QUERY",
                _locate(soql, position + 1, f"unexpected token: '{soql[position]}'"),
            )
        kind = match.lastgroup or ""
        text = match.group()
        column = position + 1
        position = match.end()
        if kind == "ws":
            continue
        value: Any = text
        if kind == "string":
            value = re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)), text[1:-1])
        elif kind == "number":
            value = float(text) if "." in text else int(text)
        elif kind == "name" and text.lower() in _KEYWORDS:
            kind, value = "keyword", text.lower()
        tokens.append(Token(kind, text, value, column))
    tokens.append(Token("eof", "<EOF>", None, len(soql) + 1))
    return tokens


class _Parser:
    def __init__(self, soql: str) -> None:
        self.soql = soql
        self.tokens = tokenize(soql)
        self.position = 0

    # -- token helpers -----------------------------------------------------------------

    @property
    def current(self) -> Token:
        return self.tokens[self.position]

    def error(self, token: Token | None = None) -> SalesforceError:
        token = token or self.current
        message = f"unexpected token: '{token.text}'"
        return SalesforceError(400, "MALFORMED_QUERY", _locate(self.soql, token.column, message))

    def fail(self, code: str, message: str, token: Token) -> SalesforceError:
        return SalesforceError(400, code, _locate(self.soql, token.column, message))

    def accept(self, kind: str, value: Any = None) -> Token | None:
        token = self.current
        if token.kind == kind and (value is None or token.value == value):
            self.position += 1
            return token
        return None

    def expect(self, kind: str, value: Any = None) -> Token:
        token = self.accept(kind, value)
        if token is None:
            raise self.error()
        return token

    def name(self) -> Token:
        # Non-reserved keywords (e.g. a field called "Last") are not modelled: none clash.
        return self.expect("name")

    # -- grammar -----------------------------------------------------------------------

    def parse(self) -> Query:
        query = self.query(parent=None)
        if self.current.kind != "eof":
            raise self.error()
        return query

    def query(self, parent: SObject | None) -> Query:
        self.expect("keyword", "select")
        select_start = self.position
        # The FROM clause decides how the columns resolve, so find it first.
        depth = 0
        while True:
            token = self.current
            if token.kind == "eof":
                raise self.error()
            if token.kind == "op" and token.value == "(":
                depth += 1
            elif token.kind == "op" and token.value == ")":
                depth -= 1
            elif token.kind == "keyword" and token.value == "from" and depth == 0:
                break
            self.position += 1
        self.expect("keyword", "from")
        from_token = self.name()
        query = self._from(from_token, parent)
        after_from = self.position
        self.position = select_start
        self.columns(query)
        self.expect("keyword", "from")
        self.position = after_from
        if self.accept("keyword", "where"):
            query.where = self.condition(query.obj)
        if self.accept("keyword", "order"):
            self.expect("keyword", "by")
            query.order = self.order(query.obj)
        if self.accept("keyword", "limit"):
            query.limit = self.integer()
        if self.accept("keyword", "offset"):
            query.offset = self.integer()
        return query

    def _from(self, token: Token, parent: SObject | None) -> Query:
        if parent is None:
            obj = sobject(token.text)
            if obj is None:
                raise self.fail(
                    "INVALID_TYPE",
                    f"sObject type '{token.text}' is not supported. If you are attempting to "
                    "use a custom object, be sure to append the '__c' after the entity name. "
                    "Please reference your WSDL or the describe call for the appropriate names.",
                    token,
                )
            return Query(obj)
        relationship = parent.child(token.text)
        if relationship is None:
            raise self.fail(
                "INVALID_TYPE",
                f"Didn't understand relationship '{token.text}' in FROM part of query call. "
                "If you are attempting to use a custom relationship, be sure to append the "
                "'__r' after the custom relationship name. Please reference your WSDL or the "
                "describe call for the appropriate names.",
                token,
            )
        return Query(
            SOBJECTS[relationship.child],
            relationship=relationship.name,
            parent_field=relationship.field,
        )

    def integer(self) -> int:
        token = self.expect("number")
        if not isinstance(token.value, int) or token.value < 0:
            raise self.error(token)
        return token.value

    def columns(self, query: Query) -> None:
        while True:
            if self.accept("keyword", "count"):
                self.expect("op", "(")
                self.expect("op", ")")
                query.count_only = True
            elif self.current.kind == "op" and self.current.value == "(":
                if query.relationship is not None:
                    raise self.error()
                self.position += 1
                query.columns.append(self.query(parent=query.obj))
                self.expect("op", ")")
            else:
                query.columns.append(self.path(query.obj))
            if not self.accept("op", ","):
                break
        if query.count_only and query.columns:
            raise self.fail("MALFORMED_QUERY", "COUNT() must be the only element", self.current)

    def path(self, obj: SObject) -> Path:
        tokens = [self.name()]
        while self.accept("op", "."):
            tokens.append(self.name())
        names: list[str] = []
        hops: list[Field] = []
        current = obj
        for token in tokens[:-1]:
            reference = current.relationship(token.text)
            if reference is None or reference.reference_to is None:
                raise self._no_column(token, current)
            hops.append(reference)
            names.append(reference.relationship or token.text)
            current = SOBJECTS[reference.reference_to]
        target = current.field(tokens[-1].text)
        if target is None:
            raise self._no_column(tokens[-1], current)
        names.append(target.name)
        return Path(tuple(names), tuple(hops), target)

    def _no_column(self, token: Token, obj: SObject) -> SalesforceError:
        return self.fail(
            "INVALID_FIELD",
            f"No such column '{token.text}' on entity '{obj.name}'. If you are attempting to "
            "use a custom field, be sure to append the '__c' after the custom field name. "
            "Please reference your WSDL or the describe call for the appropriate names.",
            token,
        )

    def condition(self, obj: SObject) -> Any:
        parts = [self.conjunction(obj)]
        while self.accept("keyword", "or"):
            parts.append(self.conjunction(obj))
        return parts[0] if len(parts) == 1 else BoolOp("or", parts)

    def conjunction(self, obj: SObject) -> Any:
        parts = [self.negation(obj)]
        while self.accept("keyword", "and"):
            parts.append(self.negation(obj))
        return parts[0] if len(parts) == 1 else BoolOp("and", parts)

    def negation(self, obj: SObject) -> Any:
        if self.accept("keyword", "not"):
            return BoolOp("not", [self.negation(obj)])
        if self.accept("op", "("):
            inner = self.condition(obj)
            self.expect("op", ")")
            return inner
        return self.predicate(obj)

    def predicate(self, obj: SObject) -> Any:
        path = self.path(obj)
        token = self.current
        if self.accept("keyword", "not"):
            self.expect("keyword", "in")
            return InList(path, self.value_list(path), negate=True)
        if self.accept("keyword", "in"):
            return InList(path, self.value_list(path), negate=False)
        if self.accept("keyword", "like"):
            literal = self.expect("string")
            return Like(path, _like(literal.value))
        if token.kind != "op" or token.value not in ("=", "!=", "<>", "<", ">", "<=", ">="):
            raise self.error()
        self.position += 1
        op = "!=" if token.value == "<>" else token.value
        value = self.value(path)
        if value is None and op not in ("=", "!="):
            raise self.fail(
                "INVALID_QUERY_FILTER_OPERATOR", "invalid operator on null value", token
            )
        return Compare(path, op, value)

    def value_list(self, path: Path) -> list[Any]:
        self.expect("op", "(")
        values = [self.value(path)]
        while self.accept("op", ","):
            values.append(self.value(path))
        self.expect("op", ")")
        return values

    def value(self, path: Path) -> Any:
        token = self.current
        kind = path.target.type
        self.position += 1
        if token.kind == "keyword" and token.value == "null":
            return None
        if token.kind == "keyword" and token.value in ("true", "false"):
            if kind != "boolean":
                raise self._wrong_type(path, token, kind)
            return token.value == "true"
        if token.kind == "number":
            if kind not in ("double", "currency", "percent", "int"):
                raise self._wrong_type(path, token, kind)
            return float(token.value)
        if token.kind == "datetime":
            if kind != "datetime":
                raise self._wrong_type(path, token, kind)
            return normalize_datetime(token.value)
        if token.kind == "date":
            if kind != "date":
                raise self._wrong_type(path, token, kind)
            return token.value
        if token.kind == "string":
            if kind in ("datetime", "date", "boolean", "double", "currency", "percent", "int"):
                raise self._wrong_type(path, token, kind)
            if kind in ("id", "reference"):
                return to_18(token.value) if is_id(token.value) else token.value
            return token.value.casefold()
        raise self.error(token)

    def _wrong_type(self, path: Path, token: Token, kind: str) -> SalesforceError:
        expected = {"datetime": "dateTime", "double": "double", "currency": "double"}.get(
            kind, kind
        )
        quoted = " and should not be enclosed in quotes" if kind in ("datetime", "date") else ""
        return self.fail(
            "INVALID_QUERY_FILTER_OPERATOR",
            f"value of filter criterion for field '{path.target.name}' must be of type "
            f"{expected}{quoted}",
            token,
        )

    def order(self, obj: SObject) -> list[Order]:
        items: list[Order] = []
        while True:
            path = self.path(obj)
            descending = bool(self.accept("keyword", "desc"))
            if not descending:
                self.accept("keyword", "asc")
            nulls_last = descending
            if self.accept("keyword", "nulls"):
                if self.accept("keyword", "last"):
                    nulls_last = True
                else:
                    self.expect("keyword", "first")
                    nulls_last = False
            items.append(Order(path, descending, nulls_last))
            if not self.accept("op", ","):
                return items


def _like(pattern: str) -> re.Pattern[str]:
    wildcards = {"%": ".*", "_": "."}
    parts = [wildcards.get(char, re.escape(char)) for char in pattern]
    return re.compile("^" + "".join(parts) + "$", re.IGNORECASE | re.DOTALL)


def parse(soql: str) -> Query:
    """Parse ``soql``; raises :class:`SalesforceError` (400) on anything unsupported."""
    if not soql.strip():
        raise SalesforceError(400, "MALFORMED_QUERY", "SOQL statement cannot be empty")
    return _Parser(soql).parse()


# -- evaluation ------------------------------------------------------------------------


def _resolve(state: SalesforceState, record: dict[str, Any], path: Path) -> Any:
    current: dict[str, Any] | None = record
    for hop in path.hops:
        if current is None:
            return None
        target = current.get(hop.name)
        current = state.records[hop.reference_to or ""].get(target) if target else None
    return None if current is None else current.get(path.target.name)


_TEXT = ("string", "picklist")


def _comparable(value: Any, path: Path) -> Any:
    """Text compares case-insensitively; ids, dates and datetimes compare as stored."""
    return value.casefold() if isinstance(value, str) and path.target.type in _TEXT else value


def _matches(state: SalesforceState, record: dict[str, Any], condition: Any) -> bool:
    match condition:
        case None:
            return True
        case BoolOp(op="and", parts=parts):
            return all(_matches(state, record, part) for part in parts)
        case BoolOp(op="or", parts=parts):
            return any(_matches(state, record, part) for part in parts)
        case BoolOp(op="not", parts=[part]):
            return not _matches(state, record, part)
        case InList(path=path, values=values, negate=negate):
            found = _comparable(_resolve(state, record, path), path) in values
            return found != negate
        case Like(path=path, pattern=pattern):
            value = _resolve(state, record, path)
            return isinstance(value, str) and bool(pattern.match(value))
        case Compare(path=path, op=op, value=expected):
            actual = _comparable(_resolve(state, record, path), path)
            if op == "=":
                return actual == expected
            if op == "!=":
                return actual != expected
            if actual is None:
                return False
            if op == "<":
                return actual < expected
            if op == ">":
                return actual > expected
            if op == "<=":
                return actual <= expected
            return actual >= expected
    raise AssertionError(f"unknown condition {condition!r}")


def _sort(state: SalesforceState, rows: list[dict[str, Any]], order: list[Order]) -> None:
    for item in reversed(order):
        present = [row for row in rows if _resolve(state, row, item.path) is not None]
        missing = [row for row in rows if _resolve(state, row, item.path) is None]
        present.sort(
            key=lambda row: _comparable(_resolve(state, row, item.path), item.path),
            reverse=item.descending,
        )
        rows[:] = present + missing if item.nulls_last else missing + present


def _select(
    state: SalesforceState, query: Query, rows: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    rows = [row for row in rows if _matches(state, row, query.where)]
    if query.order:
        _sort(state, rows, query.order)
    rows = rows[query.offset :]
    if query.limit is not None:
        rows = rows[: query.limit]
    return rows


def _attributes(type_name: str, record_id: str, version: str) -> dict[str, str]:
    return {"type": type_name, "url": f"/services/data/{version}/sobjects/{type_name}/{record_id}"}


def _children_by_parent(
    state: SalesforceState, query: Query
) -> dict[int, dict[str, list[dict[str, Any]]]]:
    """For each subquery of ``query``: parent id → child rows (one pass per subquery)."""
    grouped: dict[int, dict[str, list[dict[str, Any]]]] = {}
    for column in query.columns:
        if isinstance(column, Query):
            by_parent: dict[str, list[dict[str, Any]]] = {}
            for child in state.records[column.obj.name].values():
                parent_id = child.get(column.parent_field or "")
                if parent_id:
                    by_parent.setdefault(parent_id, []).append(child)
            grouped[id(column)] = by_parent
    return grouped


def _shape(
    state: SalesforceState,
    query: Query,
    record: dict[str, Any],
    version: str,
    children_of: dict[int, dict[str, list[dict[str, Any]]]],
) -> dict[str, Any]:
    row: dict[str, Any] = {"attributes": _attributes(query.obj.name, record["Id"], version)}
    for column in query.columns:
        if isinstance(column, Query):
            children = _select(state, column, children_of[id(column)].get(record["Id"], []))
            row[column.relationship or ""] = (
                {
                    "totalSize": len(children),
                    "done": True,
                    "records": [_shape(state, column, child, version, {}) for child in children],
                }
                if children
                else None
            )
            continue
        if not column.hops:
            row[column.target.name] = record.get(column.target.name)
            continue
        # Relationship columns nest: {"Account": {"attributes": …, "Name": …}}.
        container = row
        current: dict[str, Any] | None = record
        for name, hop in zip(column.names, column.hops, strict=False):
            target_id = current.get(hop.name) if current else None
            current = state.records[hop.reference_to or ""].get(target_id) if target_id else None
            if current is None:
                container.setdefault(name, None)
                break
            nested = container.get(name)
            if nested is None:
                nested = {"attributes": _attributes(hop.reference_to or "", current["Id"], version)}
                container[name] = nested
            container = nested
        else:
            container[column.target.name] = current.get(column.target.name) if current else None
    return row


def execute(state: SalesforceState, query: Query, version: str) -> tuple[int, list[dict[str, Any]]]:
    """``(totalSize, records)`` for ``query``: shaped rows as the REST API returns them."""
    rows = _select(state, query, list(state.records[query.obj.name].values()))
    if query.count_only:
        return len(rows), []
    children_of = _children_by_parent(state, query)
    return len(rows), [_shape(state, query, row, version, children_of) for row in rows]
