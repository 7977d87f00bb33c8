"""Declarative, versioned field mappings between vendor records and canonical fields.

A mapping file (``config/mappings/<vendor>.toml``) says, per canonical entity, which vendor
field feeds which canonical field and how its value converts::

    vendor = "salesforce"
    version = 3

    [entities.opportunity]
    object = "Opportunity"

    [entities.opportunity.fields]
    id = "Id"                                             # a plain path
    account_id = { from = "AccountId", required = true }
    amount = { from = "Amount", as = "money", currency_from = "CurrencyIsoCode" }
    close_date = { from = "CloseDate", as = "date" }
    legal_entity = { from = "Account.Legal_Entity__c" }   # dotted paths reach into objects

Converters (``as``): ``str`` (default), ``int``, ``decimal``, ``bool``, ``date``,
``datetime``, ``money`` (a decimal amount plus ``currency_from`` or ``currency``),
``money_minor`` (integer minor units, as Stripe and Kantata send them), ``minutes_to_hours``
and ``enum`` (with a ``values`` table from vendor value to canonical value).

The adapter applies :meth:`EntityMapping.to_canonical` to a decoded vendor record and hands
the result to ``msgspec.convert`` for the canonical Struct; :meth:`EntityMapping.to_vendor`
runs the same rules backwards for writes. A broken mapping file is a :class:`ConfigError`
naming the file and key; a vendor value that does not convert is a :class:`PayloadError`
naming the vendor, mapping version, entity and both field names.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Literal

import msgspec

from actors.errors import ConfigError, PayloadError
from actors.messages import Money

__all__ = [
    "EntityMapping",
    "FieldRule",
    "LiveMappings",
    "MappingSet",
    "load_mapping",
    "load_mappings",
]

Converter = Literal[
    "str", "int", "decimal", "bool", "date", "datetime", "money", "money_minor",
    "minutes_to_hours", "enum",
]  # fmt: skip

_MISSING = object()


class FieldRule(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """How one canonical field is read from (and written to) a vendor record."""

    from_: str = msgspec.field(name="from")
    as_: Converter = msgspec.field(default="str", name="as")
    required: bool = False
    default: str | int | float | bool | None = None
    currency_from: str | None = None
    """Path of the currency code beside a ``money``/``money_minor`` amount."""
    currency: str | None = None
    """A fixed currency when the vendor record carries none."""
    values: dict[str, str] = {}
    """For ``enum``: vendor value → canonical value."""
    write: bool = True
    """False for fields the vendor computes (ids, totals): never sent back."""


# The file is converted level by level (entities and fields stay raw until their turn) so
# that an error names the entity and field; msgspec reports dict keys as `[...]`.
class _EntityFile(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    object: str
    fields: dict[str, str | dict[str, Any]]


class _MappingFile(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    vendor: str
    version: int
    entities: dict[str, dict[str, Any]]


class EntityMapping(msgspec.Struct, frozen=True, kw_only=True):
    """The rules for one canonical entity of one vendor."""

    vendor: str
    version: int
    entity: str
    object: str
    fields: dict[str, FieldRule]

    def to_canonical(self, record: Mapping[str, Any], *, record_id: str = "") -> dict[str, Any]:
        """Canonical field values from a vendor record; raises PayloadError naming the field."""
        out: dict[str, Any] = {}
        for name, rule in self.fields.items():
            raw = _get_path(record, rule.from_)
            if raw is _MISSING or raw is None:
                if rule.required:
                    raise self._error(name, rule, "is missing", record_id)
                if rule.default is not None:
                    out[name] = rule.default
                continue
            try:
                out[name] = _convert_in(rule, raw, record)
            except (ValueError, TypeError, ArithmeticError) as exc:
                raise self._error(name, rule, str(exc), record_id) from exc
        return out

    def to_vendor(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """A vendor record (nested where paths are dotted) from canonical values."""
        out: dict[str, Any] = {}
        for name, rule in self.fields.items():
            if not rule.write or name not in values or values[name] is None:
                continue
            value = values[name]
            try:
                converted = _convert_out(rule, value)
            except (ValueError, TypeError, ArithmeticError) as exc:
                raise self._error(name, rule, str(exc), "") from exc
            _set_path(out, rule.from_, converted)
            if rule.as_ in ("money", "money_minor") and rule.currency_from:
                _set_path(out, rule.currency_from, value.currency)
        return out

    def _error(self, name: str, rule: FieldRule, problem: str, record_id: str) -> PayloadError:
        where = f"{self.vendor} {self.object}"
        if record_id:
            where += f" {record_id}"
        where += f" (mapping v{self.version}, {self.entity}.{name} from {rule.from_})"
        return PayloadError(problem, where=where)


class MappingSet(msgspec.Struct, frozen=True, kw_only=True):
    """Every entity mapping of one vendor, as loaded from one file."""

    vendor: str
    version: int
    entities: dict[str, EntityMapping]
    source: str = ""

    def entity(self, name: str) -> EntityMapping:
        """The mapping of canonical entity ``name``; a ConfigError if the file has none."""
        try:
            return self.entities[name]
        except KeyError:
            raise ConfigError(
                f"no mapping for entity {name!r} (have: {', '.join(sorted(self.entities))})",
                path=f"entities.{name}",
                source=self.source,
            ) from None


class LiveMappings:
    """The mapping set one adapter works with, replaceable while it runs (``pssync reload``).

    The adapter's parts keep this object rather than the EntityMappings it holds and look
    an entity up at each use, so a replacement reaches every part at once while each
    record is still converted by one version. The vendor and the ``required`` entities
    (those the adapter uses) are checked on creation and before every replacement: a
    mapping the adapter cannot work with is a ConfigError naming the file, and the
    mapping in use stays.
    """

    def __init__(self, mappings: MappingSet, *, vendor: str, required: Iterable[str]) -> None:
        self.vendor = vendor
        self.required = tuple(required)
        self.check(mappings)
        self._current = mappings

    @property
    def current(self) -> MappingSet:
        """The mapping set in use."""
        return self._current

    @property
    def version(self) -> int:
        return self._current.version

    def entity(self, name: str) -> EntityMapping:
        """The current mapping of canonical entity ``name`` (see :meth:`MappingSet.entity`)."""
        return self._current.entity(name)

    def check(self, mappings: MappingSet) -> None:
        """ConfigError unless ``mappings`` is this vendor's and has every required entity."""
        if mappings.vendor != self.vendor:
            raise ConfigError(
                f"mapping is for vendor {mappings.vendor!r}, not {self.vendor!r}",
                path="vendor",
                source=mappings.source,
            )
        for name in self.required:
            mappings.entity(name)

    def replace(self, mappings: MappingSet) -> bool:
        """Use ``mappings`` from now on (checked first); True if it differs from before."""
        self.check(mappings)
        changed = mappings != self._current
        self._current = mappings
        return changed


def load_mapping(path: str | Path) -> MappingSet:
    """Load and check one mapping file; errors name the file and the key."""
    path = Path(path)
    source = str(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read mapping file: {exc.strerror}", source=source) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"invalid TOML: {exc}", source=source) from exc
    header = _convert(raw, _MappingFile, "", source)
    entities: dict[str, EntityMapping] = {}
    for entity_name, entity_raw in header.entities.items():
        entity_key = f"entities.{entity_name}"
        entity = _convert(entity_raw, _EntityFile, entity_key, source)
        rules: dict[str, FieldRule] = {}
        for field_name, rule_raw in entity.fields.items():
            key = f"{entity_key}.fields.{field_name}"
            rule = (
                FieldRule(from_=rule_raw)
                if isinstance(rule_raw, str)
                else _convert(rule_raw, FieldRule, key, source)
            )
            _check_rule(rule, key, source)
            rules[field_name] = rule
        entities[entity_name] = EntityMapping(
            vendor=header.vendor,
            version=header.version,
            entity=entity_name,
            object=entity.object,
            fields=rules,
        )
    return MappingSet(
        vendor=header.vendor, version=header.version, entities=entities, source=source
    )


def load_mappings(directory: str | Path) -> dict[str, MappingSet]:
    """Every ``*.toml`` mapping in ``directory`` by vendor; one vendor in two files is an error."""
    found: dict[str, MappingSet] = {}
    for path in sorted(Path(directory).glob("*.toml")):
        mapping = load_mapping(path)
        if mapping.vendor in found:
            earlier = found[mapping.vendor].source
            raise ConfigError(
                f"vendor {mapping.vendor!r} is mapped twice (also in {earlier})",
                path="vendor",
                source=str(path),
            )
        found[mapping.vendor] = mapping
    return found


def _convert(raw: Any, kind: type[Any], key: str, source: str) -> Any:
    try:
        return msgspec.convert(raw, kind)
    except msgspec.ValidationError as exc:
        message, _, at = str(exc).partition(" - at `$")
        inner = at.rstrip("`").lstrip(".")
        path = ".".join(part for part in (key, inner) if part)
        raise ConfigError(message[:1].lower() + message[1:], path=path, source=source) from exc


def _check_rule(rule: FieldRule, key: str, source: str) -> None:
    if not rule.from_ or any(not part for part in rule.from_.split(".")):
        raise ConfigError(f"bad field path {rule.from_!r}", path=f"{key}.from", source=source)
    if rule.as_ in ("money", "money_minor") and not (rule.currency_from or rule.currency):
        raise ConfigError(f"{rule.as_} needs currency_from or currency", path=key, source=source)
    if rule.as_ == "enum" and not rule.values:
        raise ConfigError("enum needs a values table", path=f"{key}.values", source=source)


def _get_path(record: Mapping[str, Any], path: str) -> Any:
    value: Any = record
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return _MISSING
        value = value[part]
    return value


def _set_path(out: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    for part in parents:
        out = out.setdefault(part, {})
    out[last] = value


def _decimal(raw: Any) -> Decimal:
    if isinstance(raw, bool):
        raise TypeError(f"expected a number, got {raw!r}")
    if isinstance(raw, float):
        # Vendors send JSON numbers; their shortest repr is the decimal they meant.
        raw = repr(raw)
    try:
        value = Decimal(str(raw))
    except InvalidOperation:
        raise ValueError(f"expected a decimal number, got {raw!r}") from None
    if not value.is_finite():
        raise ValueError(f"expected a finite number, got {raw!r}")
    return value


def _currency(rule: FieldRule, record: Mapping[str, Any]) -> str:
    if rule.currency_from:
        code = _get_path(record, rule.currency_from)
        if isinstance(code, str) and code:
            return code.upper()
    if rule.currency:
        return rule.currency
    raise ValueError(f"no currency at {rule.currency_from}")


def _convert_in(rule: FieldRule, raw: Any, record: Mapping[str, Any]) -> Any:
    match rule.as_:
        case "str":
            if isinstance(raw, (dict, list)):
                raise TypeError(f"expected a text value, got {type(raw).__name__}")
            return str(raw)
        case "int":
            if isinstance(raw, bool) or not isinstance(raw, (int, str)):
                raise TypeError(f"expected an integer, got {raw!r}")
            return int(raw)
        case "decimal":
            return _decimal(raw)
        case "bool":
            if isinstance(raw, bool):
                return raw
            if raw in ("true", "T", "1", 1):
                return True
            if raw in ("false", "F", "0", 0):
                return False
            raise ValueError(f"expected true or false, got {raw!r}")
        case "date":
            if not isinstance(raw, str):
                raise TypeError(f"expected a date, got {raw!r}")
            return date.fromisoformat(raw[:10])
        case "datetime":
            if isinstance(raw, (int, float)) and not isinstance(raw, bool):
                return datetime.fromtimestamp(raw).astimezone()
            if not isinstance(raw, str):
                raise TypeError(f"expected a timestamp, got {raw!r}")
            # Salesforce writes +0000 rather than +00:00; fromisoformat reads both on 3.11.
            parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
            if parsed.tzinfo is None:
                raise ValueError(f"timestamp {raw!r} has no time zone")
            return parsed
        case "money":
            return Money(amount=_decimal(raw), currency=_currency(rule, record))
        case "money_minor":
            if isinstance(raw, bool) or not isinstance(raw, int):
                raise TypeError(f"expected integer minor units, got {raw!r}")
            return Money.from_minor_units(raw, _currency(rule, record))
        case "minutes_to_hours":
            return _decimal(raw) / 60
        case "enum":
            key = str(raw)
            if key not in rule.values:
                allowed = ", ".join(sorted(rule.values))
                raise ValueError(f"unexpected value {raw!r} (known: {allowed})")
            return rule.values[key]
    raise AssertionError(f"unhandled converter {rule.as_}")  # pragma: no cover


def _convert_out(rule: FieldRule, value: Any) -> Any:
    match rule.as_:
        case "str" | "int" | "bool":
            return value
        case "decimal":
            return str(value)
        case "date" | "datetime":
            return value.isoformat()
        case "money":
            return str(value.amount)
        case "money_minor":
            return value.to_minor_units()
        case "minutes_to_hours":
            minutes = Decimal(value) * 60
            if minutes != minutes.to_integral_value():
                raise ValueError(f"{value} hours is not a whole number of minutes")
            return int(minutes)
        case "enum":
            for vendor_value, canonical in rule.values.items():
                if canonical == value:
                    return vendor_value
            raise ValueError(f"no vendor value for {value!r}")
    raise AssertionError(f"unhandled converter {rule.as_}")  # pragma: no cover
