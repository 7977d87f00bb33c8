"""The subset of SuiteQL that pssync needs, evaluated over the sandbox's records.

Grammar (keywords case-insensitive; no joins, sub-queries or arithmetic)::

    SELECT [DISTINCT] * | item [, item]…  FROM table [alias]
      [WHERE condition] [GROUP BY expr [, expr]…]
      [ORDER BY expr [ASC|DESC] [, …]] [FETCH FIRST n ROWS ONLY]
    item       := expr [[AS] alias]
    expr       := column | t.column | 'string' | number | NULL
                | COUNT(*) | COUNT(expr) | SUM(expr) | MIN(expr) | MAX(expr)
                | TO_DATE('…', 'fmt') | TO_TIMESTAMP('…', 'fmt') | TO_CHAR(expr, 'fmt')
                | NVL(expr, expr) | UPPER(expr) | LOWER(expr)
    condition  := condition OR condition | condition AND condition | NOT condition
                | ( condition ) | expr (= | <> | != | < | <= | > | >=) expr
                | expr [NOT] IN (expr, …) | expr [NOT] LIKE 'pat' | expr IS [NOT] NULL
                | expr BETWEEN expr AND expr

Tables: ``customer``, ``job``, ``employee``, ``timebill``, ``transaction`` (invoices,
payments and journal entries with ``type`` = ``CustInvc`` / ``CustPymt`` / ``Journal``),
``invoice`` and ``customerpayment`` (sandbox conveniences: real SuiteQL only has
``transaction``), ``journalentry``, ``subsidiary``, ``department``, ``classification``,
``location``, ``currency``, ``account`` and ``item``.
Columns are the REST field names lower-cased (``companyname``, ``trandate``); a reference
column holds the referenced internal id; ``transaction`` adds ``foreigntotal``,
``foreignamountunpaid``, ``foreignamountpaid`` and ``status`` (invoices: ``A`` open,
``B`` paid in full); every table has ``id``, ``externalid``, ``datecreated``,
``lastmodifieddate``.

Result values are strings, as the REST SuiteQL service returns them (numbers without
exponent, dates as ``M/D/YYYY`` — the default US date preference; datetimes render the same
unless formatted with ``TO_CHAR``); NULL columns are left out of an item. Unaliased
expressions are named ``expr1``, ``expr2``… SQL three-valued logic applies to NULLs.
ASC puts NULLs last, DESC first (Oracle's default).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from .errors import NetSuiteError

AGGREGATES = {"COUNT", "SUM", "MIN", "MAX"}
_TOKEN = re.compile(
    r"""
    \s*(?:
      (?P<string>'(?:[^']|'')*')
    | (?P<number>\d+(?:\.\d+)?)
    | (?P<op><>|!=|<=|>=|=|<|>|\(|\)|,|\*)
    | (?P<name>[A-Za-z_][A-Za-z0-9_$]*(?:\.[A-Za-z_][A-Za-z0-9_$]*)*)
    )""",
    re.VERBOSE,
)
_FORMATS = [("YYYY", "%Y"), ("HH24", "%H"), ("MM", "%m"), ("DD", "%d"), ("MI", "%M"), ("SS", "%S")]


def query_error(detail: str) -> NetSuiteError:
    return NetSuiteError(
        400,
        "INVALID_PARAMETER",
        f"Invalid search query. Detailed unprocessed description follows. {detail}",
    )


# ------------------------------------------------------------------------- AST


@dataclass(frozen=True)
class Column:
    name: str


@dataclass(frozen=True)
class Literal:
    value: Any


@dataclass(frozen=True)
class Call:
    name: str
    args: tuple[Any, ...]
    star: bool = False


@dataclass(frozen=True)
class Predicate:
    op: str  # AND OR NOT CMP IN LIKE ISNULL BETWEEN
    args: tuple[Any, ...]
    negate: bool = False
    cmp: str = ""


@dataclass(frozen=True)
class Query:
    columns: tuple[tuple[Any, str], ...] | None  # None = SELECT *
    distinct: bool
    table: str
    where: Predicate | None
    group_by: tuple[Any, ...]
    order_by: tuple[tuple[Any, bool], ...]  # (expr, descending)
    fetch_first: int | None


# ------------------------------------------------------------------------- parser


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = self._tokenize(text)
        self.position = 0

    @staticmethod
    def _tokenize(text: str) -> list[tuple[str, str]]:
        tokens = []
        position = 0
        text = text.rstrip().rstrip(";")
        while position < len(text):
            if text[position:].strip() == "":
                break
            match = _TOKEN.match(text, position)
            if match is None or match.end() == position:
                raise query_error(f"Syntax error near '{text[position : position + 20].strip()}'.")
            kind = match.lastgroup or ""
            tokens.append((kind, match.group(kind)))
            position = match.end()
        return tokens

    def peek(self, offset: int = 0) -> tuple[str, str]:
        index = self.position + offset
        return self.tokens[index] if index < len(self.tokens) else ("end", "")

    def keyword(self, *words: str) -> bool:
        """Consume the keywords if they come next."""
        for offset, word in enumerate(words):
            kind, value = self.peek(offset)
            if kind != "name" or value.upper() != word:
                return False
        self.position += len(words)
        return True

    def expect_keyword(self, *words: str) -> None:
        if not self.keyword(*words):
            raise query_error(f"Expected {' '.join(words)} near '{self.peek()[1]}'.")

    def op(self, symbol: str) -> bool:
        if self.peek() == ("op", symbol):
            self.position += 1
            return True
        return False

    def expect_op(self, symbol: str) -> None:
        if not self.op(symbol):
            raise query_error(f"Expected '{symbol}' near '{self.peek()[1]}'.")

    def parse(self) -> Query:
        self.expect_keyword("SELECT")
        distinct = self.keyword("DISTINCT")
        columns: list[tuple[Any, str]] | None = []
        if self.op("*"):
            columns = None
        else:
            while True:
                expression = self.expression()
                alias = ""
                implicit_alias = self.peek()[0] == "name" and self.peek()[1].upper() != "FROM"
                if self.keyword("AS") or implicit_alias:
                    alias = self.name()
                columns.append((expression, alias.lower()))
                if not self.op(","):
                    break
        self.expect_keyword("FROM")
        table = self.name().lower()
        kind, value = self.peek()
        if kind == "name" and value.upper() not in (
            "WHERE",
            "GROUP",
            "ORDER",
            "FETCH",
            "JOIN",
            "INNER",
            "LEFT",
            "RIGHT",
            "FULL",
            "CROSS",
        ):
            self.position += 1  # table alias; qualifiers are stripped from columns
        if self.peek()[0] == "name" and self.peek()[1].upper() in (
            "JOIN",
            "INNER",
            "LEFT",
            "RIGHT",
            "FULL",
            "CROSS",
        ):
            raise query_error("Joins are not supported by the sandbox.")
        where = self.condition() if self.keyword("WHERE") else None
        group_by: list[Any] = []
        if self.keyword("GROUP", "BY"):
            group_by.append(self.expression())
            while self.op(","):
                group_by.append(self.expression())
        order_by: list[tuple[Any, bool]] = []
        if self.keyword("ORDER", "BY"):
            while True:
                expression = self.expression()
                descending = False
                if self.keyword("DESC"):
                    descending = True
                else:
                    self.keyword("ASC")
                order_by.append((expression, descending))
                if not self.op(","):
                    break
        fetch_first = None
        if self.keyword("FETCH", "FIRST"):
            kind, value = self.peek()
            if kind != "number":
                raise query_error("FETCH FIRST needs a row count.")
            self.position += 1
            fetch_first = int(value)
            if not (self.keyword("ROWS", "ONLY") or self.keyword("ROW", "ONLY")):
                raise query_error("Expected ROWS ONLY.")
        if self.peek()[0] != "end":
            raise query_error(f"Unexpected '{self.peek()[1]}'.")
        return Query(
            columns=None if columns is None else tuple(columns),
            distinct=distinct,
            table=table,
            where=where,
            group_by=tuple(group_by),
            order_by=tuple(order_by),
            fetch_first=fetch_first,
        )

    def name(self) -> str:
        kind, value = self.peek()
        if kind != "name":
            raise query_error(f"Expected a name near '{value}'.")
        self.position += 1
        return value

    def expression(self) -> Any:
        kind, value = self.peek()
        if kind == "string":
            self.position += 1
            return Literal(value[1:-1].replace("''", "'"))
        if kind == "number":
            self.position += 1
            return Literal(Decimal(value))
        if kind == "name":
            self.position += 1
            if value.upper() == "NULL":
                return Literal(None)
            if self.op("("):
                name = value.upper()
                if self.op("*"):
                    self.expect_op(")")
                    if name != "COUNT":
                        raise query_error(f"{name}(*) is not valid.")
                    return Call(name, (), star=True)
                self.keyword("DISTINCT")  # COUNT(DISTINCT x) counts like COUNT(x) here
                args = [self.expression()]
                while self.op(","):
                    args.append(self.expression())
                self.expect_op(")")
                return Call(name, tuple(args))
            return Column(value.rsplit(".", 1)[-1].lower())
        raise query_error(f"Unexpected '{value}'.")

    def condition(self) -> Predicate:
        left = self.conjunction()
        while self.keyword("OR"):
            left = Predicate("OR", (left, self.conjunction()))
        return left

    def conjunction(self) -> Predicate:
        left = self.negation()
        while self.keyword("AND"):
            left = Predicate("AND", (left, self.negation()))
        return left

    def negation(self) -> Predicate:
        if self.keyword("NOT"):
            return Predicate("NOT", (self.negation(),))
        if self.op("("):
            inner = self.condition()
            self.expect_op(")")
            return inner
        return self.comparison()

    def comparison(self) -> Predicate:
        left = self.expression()
        kind, value = self.peek()
        if kind == "op" and value in ("=", "<>", "!=", "<", "<=", ">", ">="):
            self.position += 1
            return Predicate("CMP", (left, self.expression()), cmp="<>" if value == "!=" else value)
        if self.keyword("IS"):
            negate = self.keyword("NOT")
            self.expect_keyword("NULL")
            return Predicate("ISNULL", (left,), negate=negate)
        negate = self.keyword("NOT")
        if self.keyword("IN"):
            self.expect_op("(")
            items = [self.expression()]
            while self.op(","):
                items.append(self.expression())
            self.expect_op(")")
            return Predicate("IN", (left, *items), negate=negate)
        if self.keyword("LIKE"):
            return Predicate("LIKE", (left, self.expression()), negate=negate)
        if self.keyword("BETWEEN"):
            low = self.expression()
            self.expect_keyword("AND")
            return Predicate("BETWEEN", (left, low, self.expression()), negate=negate)
        raise query_error(f"Expected a comparison near '{value}'.")


def parse(text: str) -> Query:
    return _Parser(text).parse()


# ------------------------------------------------------------------------- evaluation

Row = dict[str, Any]


def _python_format(fmt: str) -> str:
    result = fmt.upper()
    for oracle, python in _FORMATS:
        result = result.replace(oracle, python)
    return result


def _parse_datetime(text: str, fmt: str) -> dt.datetime:
    try:
        return dt.datetime.strptime(text, _python_format(fmt))
    except ValueError:
        raise query_error(f"'{text}' does not match the format '{fmt}'.") from None


def _coerce_pair(left: Any, right: Any) -> tuple[Any, Any]:
    """Oracle-style implicit conversion so that ``id = '5'`` and date comparisons work."""
    if isinstance(left, dt.datetime) and type(right) is dt.date:
        right = dt.datetime.combine(right, dt.time())
    elif type(left) is dt.date and isinstance(right, dt.datetime):
        left = dt.datetime.combine(left, dt.time())
    if isinstance(left, Decimal) and isinstance(right, str):
        try:
            right = Decimal(right)
        except InvalidOperation:
            left = render(left)
    elif isinstance(left, str) and isinstance(right, Decimal):
        try:
            left = Decimal(left)
        except InvalidOperation:
            right = render(right)
    elif isinstance(left, dt.date) and isinstance(right, str):
        right = _date_from_text(right, left)
    elif isinstance(left, str) and isinstance(right, dt.date):
        left = _date_from_text(left, right)
    if type(left) is not type(right) and not (
        isinstance(left, dt.date) and isinstance(right, dt.date)
    ):
        left, right = render(left), render(right)
    return left, right


def _date_from_text(text: str, like: dt.date) -> dt.date:
    for fmt in ("%Y-%m-%d", "%m/%d/%Y"):
        try:
            parsed = dt.datetime.strptime(text, fmt)
        except ValueError:
            continue
        return parsed if isinstance(like, dt.datetime) else parsed.date()
    raise query_error(f"'{text}' is not a valid date.")


def _compare(left: Any, right: Any, op: str) -> bool | None:
    if left is None or right is None:
        return None
    left, right = _coerce_pair(left, right)
    match op:
        case "=":
            return left == right
        case "<>":
            return left != right
        case "<":
            return left < right
        case "<=":
            return left <= right
        case ">":
            return left > right
        case _:
            return left >= right


def _like(value: Any, pattern: Any) -> bool | None:
    if value is None or pattern is None:
        return None
    regex = "".join(
        ".*" if char == "%" else "." if char == "_" else re.escape(char) for char in str(pattern)
    )
    return re.fullmatch(regex, render(value), re.DOTALL) is not None


class _Evaluator:
    def __init__(self, columns: set[str], table: str) -> None:
        self.columns = columns
        self.table = table

    def value(self, expression: Any, row: Row, group: list[Row] | None = None) -> Any:
        if isinstance(expression, Literal):
            return expression.value
        if isinstance(expression, Column):
            if expression.name not in self.columns:
                raise query_error(
                    f"Search error occurred: Field '{expression.name}' for record "
                    f"'{self.table}' was not found."
                )
            return row.get(expression.name)
        if isinstance(expression, Call):
            return self.call(expression, row, group)
        raise query_error("Unsupported expression.")

    def call(self, call: Call, row: Row, group: list[Row] | None) -> Any:
        name = call.name
        if name in AGGREGATES:
            rows = group if group is not None else [row]
            if call.star:
                return Decimal(len(rows))
            values = [self.value(call.args[0], item) for item in rows]
            values = [value for value in values if value is not None]
            if name == "COUNT":
                return Decimal(len(values))
            if not values:
                return None
            if name == "SUM":
                return sum((_as_number(value) for value in values), Decimal(0))
            return min(values) if name == "MIN" else max(values)
        args = [self.value(arg, row, group) for arg in call.args]
        match name, len(args):
            case ("TO_DATE", 2):
                return None if args[0] is None else _parse_datetime(str(args[0]), args[1]).date()
            case ("TO_TIMESTAMP", 2):
                return None if args[0] is None else _parse_datetime(str(args[0]), args[1])
            case ("TO_CHAR", 2):
                if isinstance(args[0], dt.date):
                    return args[0].strftime(_python_format(str(args[1])))
                return None if args[0] is None else render(args[0])
            case ("TO_CHAR", 1):
                return None if args[0] is None else render(args[0])
            case ("NVL", 2):
                return args[1] if args[0] is None else args[0]
            case ("UPPER", 1):
                return None if args[0] is None else render(args[0]).upper()
            case ("LOWER", 1):
                return None if args[0] is None else render(args[0]).lower()
        raise query_error(f"Unsupported function {name} with {len(args)} argument(s).")

    def test(self, predicate: Predicate, row: Row) -> bool | None:
        op = predicate.op
        if op == "AND":
            left, right = (self.test(arg, row) for arg in predicate.args)
            if left is False or right is False:
                return False
            return None if left is None or right is None else True
        if op == "OR":
            left, right = (self.test(arg, row) for arg in predicate.args)
            if left is True or right is True:
                return True
            return None if left is None or right is None else False
        if op == "NOT":
            inner = self.test(predicate.args[0], row)
            return None if inner is None else not inner
        values = [self.value(arg, row) for arg in predicate.args]
        if op == "CMP":
            result = _compare(values[0], values[1], predicate.cmp)
        elif op == "ISNULL":
            result = values[0] is None
        elif op == "IN":
            outcomes = [_compare(values[0], item, "=") for item in values[1:]]
            result = True if True in outcomes else (None if None in outcomes else False)
        elif op == "LIKE":
            result = _like(values[0], values[1])
        else:
            low = _compare(values[0], values[1], ">=")
            high = _compare(values[0], values[2], "<=")
            result = None if low is None or high is None else low and high
        if result is None:
            return None
        return not result if predicate.negate else result


def _as_number(value: Any) -> Decimal:
    if isinstance(value, Decimal):
        return value
    try:
        return Decimal(str(value))
    except InvalidOperation:
        raise query_error(f"'{value}' is not a number.") from None


def render(value: Any) -> str:
    """A SuiteQL result value as the REST service returns it (always a string)."""
    if isinstance(value, bool):
        return "T" if value else "F"
    if isinstance(value, Decimal):
        text = format(value.normalize(), "f")
        return text
    if isinstance(value, float):
        return render(Decimal(repr(value)))
    if isinstance(value, int):
        return str(value)
    if isinstance(value, dt.datetime | dt.date):
        return f"{value.month}/{value.day}/{value.year}"
    return str(value)


def _sort_key(value: Any) -> tuple[int, Any]:
    if isinstance(value, dt.datetime):
        return (1, value.timestamp() if value.tzinfo else value.replace(tzinfo=dt.UTC).timestamp())
    if isinstance(value, dt.date):
        return (1, dt.datetime.combine(value, dt.time(), tzinfo=dt.UTC).timestamp())
    if isinstance(value, Decimal | int | float):
        return (1, Decimal(str(value)))
    return (2, str(value))


def execute(query: Query, rows: Iterable[Row], columns: Iterable[str]) -> list[dict[str, str]]:
    """Run ``query`` over ``rows`` (column → value); every result value rendered."""
    known = set(columns)
    evaluator = _Evaluator(known, query.table)
    _check_columns(query, known)
    matched = [
        row for row in rows if query.where is None or evaluator.test(query.where, row) is True
    ]
    selected: list[tuple[Any, str]]
    if query.columns is None:
        ordered = sorted(known - {"id"})
        selected = [(Column("id"), "id")] + [(Column(name), name) for name in ordered]
    else:
        selected = []
        unnamed = 0
        for expression, alias in query.columns:
            if alias:
                name = alias
            elif isinstance(expression, Column):
                name = expression.name
            else:
                unnamed += 1
                name = f"expr{unnamed}"
            selected.append((expression, name))

    grouped = bool(query.group_by) or any(_has_aggregate(expression) for expression, _ in selected)
    # Each output row keeps the context its ORDER BY expressions are evaluated in.
    outputs: list[tuple[dict[str, Any], Row, list[Row] | None]] = []
    if grouped:
        groups: dict[tuple, list[Row]] = {}
        for row in matched:
            key = tuple(_group_key(evaluator.value(expr, row)) for expr in query.group_by)
            groups.setdefault(key, []).append(row)
        if not groups and not query.group_by:
            groups[()] = []
        for members in groups.values():
            first = members[0] if members else {}
            values = {name: evaluator.value(expr, first, members) for expr, name in selected}
            outputs.append((values, first, members))
    else:
        for row in matched:
            values = {name: evaluator.value(expr, row) for expr, name in selected}
            outputs.append((values, row, None))

    if query.distinct:
        seen: set[tuple] = set()
        unique = []
        for output in outputs:
            marker = tuple(
                (name, render(value) if value is not None else None)
                for name, value in output[0].items()
            )
            if marker not in seen:
                seen.add(marker)
                unique.append(output)
        outputs = unique

    aliases = {name: expression for expression, name in selected}
    for expression, descending in reversed(query.order_by):
        resolve: Callable[[tuple[dict[str, Any], Row, list[Row] | None]], Any]
        if (
            isinstance(expression, Column)
            and expression.name in aliases
            and (grouped or expression.name not in known)
        ):

            def resolve(output, name=expression.name):
                return output[0][name]
        else:

            def resolve(output, expression=expression):
                return evaluator.value(expression, output[1], output[2])

        present = [output for output in outputs if resolve(output) is not None]
        missing = [output for output in outputs if resolve(output) is None]
        present.sort(key=lambda output: _sort_key(resolve(output)), reverse=descending)
        outputs = missing + present if descending else present + missing

    if query.fetch_first is not None:
        outputs = outputs[: query.fetch_first]
    return [
        {name: render(value) for name, value in values.items() if value is not None}
        for values, _, _ in outputs
    ]


def _check_columns(query: Query, known: set[str]) -> None:
    """Unknown columns are an error even when no row would be evaluated."""
    aliases = {alias for _, alias in query.columns or () if alias}
    expressions: list[Any] = [expr for expr, _ in query.columns or ()]
    expressions += list(query.group_by)
    expressions += [
        expr
        for expr, _ in query.order_by
        if not (isinstance(expr, Column) and expr.name in aliases)
    ]
    if query.where is not None:
        expressions.append(query.where)
    for expression in expressions:
        for name in _column_names(expression):
            if name not in known:
                raise query_error(
                    f"Search error occurred: Field '{name}' for record "
                    f"'{query.table}' was not found."
                )


def _column_names(expression: Any) -> Iterator[str]:
    if isinstance(expression, Column):
        yield expression.name
    elif isinstance(expression, Call | Predicate):
        for arg in expression.args:
            yield from _column_names(arg)


def _group_key(value: Any) -> tuple[int, Any]:
    return (0, None) if value is None else _sort_key(value)


def _has_aggregate(expression: Any) -> bool:
    if isinstance(expression, Call):
        return expression.name in AGGREGATES or any(_has_aggregate(a) for a in expression.args)
    return False
