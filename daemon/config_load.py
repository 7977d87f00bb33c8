"""Loading ``pssync.toml``: TOML → raw tables → :class:`~daemon.config.Config`.

Every error names the key in dotted TOML form and what was expected::

    systems.erp.limits.rate_per_s: expected a number, got "fast"
    systems.erp.limits.rat: unknown key; allowed keys: burst, daily_quota, …
    pssync.toml:12:9: TOML syntax error: Invalid value

msgspec reports ``Expected `float`, got `str` - at `$.systems[...].limits.rate_per_s```:
it writes ``[...]`` for a dictionary key and never shows the value. :func:`explain` puts
both back by walking the raw TOML tables alongside the schema's type information.
"""

from __future__ import annotations

import copy
import datetime
import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
from msgspec import inspect as mi

from actors.errors import ConfigError

from . import config as schema
from .config_checks import check_config
from .errors import ConfigErrors, key_path
from .redaction import is_sensitive_key
from .secrets import REFERENCE_FORMS, SecretRef

__all__ = ["explain", "load_config", "parse_config"]

DEFAULT_STATE_DIRECTORY = "/var/lib/pssync"
DEFAULT_RUNTIME_DIRECTORY = "/run/pssync"


def load_config(
    path: str | os.PathLike[str], *, environ: Mapping[str, str] | None = None
) -> schema.Config:
    """Read, decode, check and complete the configuration file at ``path``.

    Raises :class:`ConfigError` (or :class:`~daemon.errors.ConfigErrors` for several
    problems) whose ``source`` is the file and ``path`` the dotted TOML key.
    """
    file = Path(path)
    try:
        text = file.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror or exc}", source=str(file)) from None
    return parse_config(text, source=str(file), base_dir=file.resolve().parent, environ=environ)


def parse_config(
    text: str | bytes,
    *,
    source: str = "<config>",
    base_dir: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> schema.Config:
    """Decode configuration text; see :func:`load_config`.

    Relative paths in the file are relative to ``base_dir`` (the file's directory); state
    and runtime paths left empty default from ``$STATE_DIRECTORY``/``$RUNTIME_DIRECTORY``.
    """
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ConfigError(
                f"not UTF-8 text (byte {exc.start}): TOML files are UTF-8", source=source
            ) from None
    try:
        raw = msgspec.toml.decode(text)
    except msgspec.DecodeError as exc:
        raise _syntax_error(exc, source) from None
    try:
        config = _convert(raw)
    except msgspec.ValidationError as exc:
        path, message = explain(exc, raw)
        raise ConfigError(message, path=path, source=source) from None
    problems = check_config(config, source=source)
    if problems:
        raise problems[0] if len(problems) == 1 else ConfigErrors(problems)
    environ = os.environ if environ is None else environ
    return _complete(config, Path(base_dir) if base_dir is not None else Path.cwd(), environ)


def _dec_hook(type_: type, obj: Any) -> Any:
    if type_ is SecretRef:
        return SecretRef.parse(obj)
    # msgspec's dec_hook protocol: this exception means "type not handled here".
    raise NotImplementedError(f"no decoder for {type_!r}")


def _convert(raw: Any) -> schema.Config:
    return msgspec.convert(raw, schema.Config, dec_hook=_dec_hook)


def _syntax_error(exc: msgspec.DecodeError, source: str) -> ConfigError:
    text = str(exc)
    match = re.search(r"^(.*) \(at line (\d+), column (\d+)\)$", text)
    if match:
        what, line, column = match.groups()
        return ConfigError(f"TOML syntax error: {what}", source=f"{source}:{line}:{column}")
    return ConfigError(f"TOML syntax error: {text}", source=source)


def _complete(config: schema.Config, base_dir: Path, environ: Mapping[str, str]) -> schema.Config:
    """Fill default paths and make relative ones (journal, socket, mappings, CA bundles)
    absolute."""
    state = Path(environ.get("STATE_DIRECTORY") or DEFAULT_STATE_DIRECTORY)
    runtime = Path(environ.get("RUNTIME_DIRECTORY") or DEFAULT_RUNTIME_DIRECTORY)

    def absolute(value: str, default: Path) -> str:
        return str(base_dir / value) if value else str(default)

    journal = msgspec.structs.replace(
        config.journal,
        path=absolute(config.journal.path, state / "journal.sqlite3"),
        backup_dir=absolute(config.journal.backup_dir, state / "backups"),
    )
    control = msgspec.structs.replace(
        config.control, socket_path=absolute(config.control.socket_path, runtime / "control.sock")
    )
    mappings = msgspec.structs.replace(
        config.mappings, directory=str(base_dir / config.mappings.directory)
    )
    systems = {
        name: msgspec.structs.replace(
            system,
            http=msgspec.structs.replace(
                system.http, ca_bundle=str(base_dir / system.http.ca_bundle)
            ),
        )
        if system.http.ca_bundle is not None
        else system
        for name, system in config.systems.items()
    }
    return msgspec.structs.replace(
        config, journal=journal, control=control, mappings=mappings, systems=systems
    )


# --------------------------------------------------------------------------- explaining


_AT = re.compile(r" - at `(\$[^`]*)`$")
_SEGMENT = re.compile(r"\.([^.\[]+)|\[(\.\.\.|\d+)\]")

_TYPE_WORDS = {
    "int": "an integer",
    "float": "a number",
    "str": "a string",
    "bool": "true or false",
    "object": "a table",
    "array": "an array",
    "date": "a date",
    "datetime": "a date-time",
    "time": "a time",
}

# Friendly names for the schema's patterns.
_PATTERN_WORDS = {
    schema.Url.__metadata__[0].pattern: "an http:// or https:// URL",
    schema.CurrencyCode.__metadata__[0].pattern: "a three-letter ISO 4217 currency code",
    schema.SalesforceApiVersion.__metadata__[0].pattern: 'an API version such as "v66.0"',
    schema.StripeApiVersion.__metadata__[0].pattern: 'an API version date such as "2024-06-20"',
}


@dataclass
class _Place:
    """Where an error points: the dotted path, the raw value there, and its schema type."""

    path: str = ""
    raw: Any = None
    found: bool = True
    info: Any = None  # a msgspec.inspect.Type, or _Choice


@dataclass
class _Choice:
    """An unresolved tagged union: the tag key and the tags it accepts."""

    tag_field: str
    tags: tuple[str, ...]


def explain(
    exc: msgspec.ValidationError,
    raw: Any,
    root: type = schema.Config,
    convert: Callable[[Any], Any] | None = None,
) -> tuple[str, str]:
    """Turn msgspec's validation error into ``(dotted key path, message)``."""
    convert = convert or _convert
    text = str(exc)
    match = _AT.search(text)
    detail = text[: match.start()] if match else text
    segments = _segments(match.group(1) if match else "$")
    place = _locate(raw, segments, mi.type_info(root), text, convert)
    return _describe_problem(detail, place)


def _segments(path: str) -> list[str | int | None]:
    """``$.systems[...].tags[1]`` → ``["systems", None, "tags", 1]`` (None: a dict key)."""
    parts: list[str | int | None] = []
    for field, index in _SEGMENT.findall(path[1:]):
        if field:
            parts.append(field)
        elif index == "...":
            parts.append(None)
        else:
            parts.append(int(index))
    return parts


def _locate(
    raw: Any,
    segments: list[str | int | None],
    info: Any,
    error_text: str,
    convert: Callable[[Any], Any],
) -> _Place:
    place = _Place(raw=raw, info=_narrow(info, raw))
    # A copy whose dictionaries are cut down to the one key that reproduces the error.
    trial = copy.deepcopy(raw)
    trial_node = trial
    for segment in segments:
        node = place.raw if place.found else None
        if segment is None:
            key = (
                _failing_key(trial, trial_node, error_text, convert)
                if isinstance(node, dict)
                else None
            )
            if key is None:
                place.path = f"{place.path}.*"  # could not tell which key
                place.found = False
                place.info = None
                continue
            place.path = key_path(place.path, key)
            place.raw = node[key]
            trial_node = trial_node[key]
            child = place.info.value_type if isinstance(place.info, mi.DictType) else None
        elif isinstance(segment, int):
            place.path = key_path(place.path, segment)
            if isinstance(node, list) and segment < len(node):
                place.raw = node[segment]
                trial_node = trial_node[segment]
            else:
                place.found = False
            child = getattr(place.info, "item_type", None)
        else:
            place.path = key_path(place.path, segment)
            if isinstance(node, dict) and segment in node:
                place.raw = node[segment]
                trial_node = trial_node[segment]
            else:
                place.found = False
            child = _field_type(place.info, segment)
        place.info = _narrow(child, place.raw) if place.found else child
    return place


def _failing_key(
    trial: Any, node: dict[str, Any], error_text: str, convert: Callable[[Any], Any]
) -> str | None:
    """Which key of ``node`` (a dict inside ``trial``) still fails with ``error_text``."""
    saved = dict(node)
    for key, value in saved.items():
        node.clear()
        node[key] = value
        try:
            convert(trial)
        except msgspec.ValidationError as exc:
            if str(exc) == error_text:
                return key  # keep the cut: deeper dictionaries are searched within it
        node.clear()
        node.update(saved)
    return None


def _narrow(info: Any, raw: Any) -> Any:
    """Pick the member of a union that ``raw`` was decoded as."""
    if not isinstance(info, mi.UnionType):
        return info
    members = [t for t in info.types if not isinstance(t, mi.NoneType)]
    structs = [t for t in members if isinstance(t, mi.StructType)]
    if isinstance(raw, dict) and structs:
        tag_field = structs[0].tag_field
        if tag_field is None or len(structs) == 1:
            return structs[0]
        for struct in structs:
            if raw.get(tag_field) == struct.tag:
                return struct
        return _Choice(tag_field, tuple(str(s.tag) for s in structs))
    if isinstance(raw, dict):
        for member in members:
            if isinstance(member, mi.DictType):
                return member
    return members[0] if len(members) == 1 else info


def _field_type(info: Any, name: str) -> Any:
    if isinstance(info, _Choice):
        return mi.LiteralType(values=info.tags) if name == info.tag_field else None
    if isinstance(info, mi.StructType):
        if name == info.tag_field:
            return mi.LiteralType(values=(info.tag,))
        for field in info.fields:
            if field.encode_name == name:
                return field.type
    return None


def _struct_keys(info: Any) -> list[str]:
    if isinstance(info, _Choice):
        return [info.tag_field]
    if isinstance(info, mi.StructType):
        keys = [field.encode_name for field in info.fields]
        if info.tag_field:
            keys.append(info.tag_field)
        return sorted(keys)
    return []


def _system_keys(info: Any) -> tuple[str, ...]:
    """Keys an options table leaves to its system table (daemon.config.options_table)."""
    if isinstance(info, mi.StructType):
        return getattr(info.cls, "system_keys", ())
    return ()


def _is_secret(info: Any) -> bool:
    return isinstance(info, mi.CustomType) and info.cls is SecretRef


def _describe_problem(detail: str, place: _Place) -> tuple[str, str]:
    if match := re.fullmatch(r"Object contains unknown field `(.+)`", detail):
        key = match.group(1)
        if key in _system_keys(place.info):
            system = place.path.rsplit(".", 1)[0]
            return (
                key_path(place.path, key),
                f"set in [{system}] only (the adapter gets it from there), not in its options",
            )
        allowed = _struct_keys(place.info)
        hint = f"; allowed keys: {', '.join(allowed)}" if allowed else ""
        return key_path(place.path, match.group(1)), f"unknown key{hint}"

    if match := re.fullmatch(r"Object missing required field `(.+)`", detail):
        name = match.group(1)
        message = "missing required key"
        choices = _field_type(place.info, name)
        if isinstance(choices, mi.LiteralType):
            message += f"; expected one of {_values(choices.values)}"
        return key_path(place.path, name), message

    if isinstance(place.info, mi.LiteralType) and (
        detail.startswith(("Invalid enum value", "Invalid value", "Expected `"))
    ):
        return place.path, f"expected one of {_values(place.info.values)}, got {_show(place)}"

    if re.fullmatch(r"Invalid (?:enum )?value .*", detail, flags=re.S):
        return place.path, f"invalid value {_show(place)}"

    if match := re.fullmatch(r"Expected `([^`]+)`(.*?)(?:, got `([^`]+)`)?", detail, flags=re.S):
        expected, constraint, got_type = match.groups()
        return (
            place.path,
            f"expected {_expected(expected, constraint)}, got {_show(place, got_type)}",
        )

    if _is_secret(place.info) and place.found and not isinstance(place.raw, str):
        return (
            place.path,
            f"expected a secret reference ({REFERENCE_FORMS}), got {_kind(place.raw)}",
        )
    # Our own decoders' messages (secret references) are already written for people.
    return place.path, detail[:1].lower() + detail[1:]


def _expected(expected: str, constraint: str) -> str:
    names = [name for name in expected.split(" | ") if name != "null"]
    words = " or ".join(_TYPE_WORDS.get(name, f"`{name}`") for name in names)
    constraint = constraint.strip()
    if match := re.fullmatch(r"matching regex '(.*)'", constraint, flags=re.S):
        pattern = match.group(1).encode().decode("unicode_escape")
        return _PATTERN_WORDS.get(pattern, f"{words} matching {pattern!r}")
    if constraint == "of length >= 1":
        return "a non-empty string" if names == ["str"] else f"a non-empty {words[2:]}"
    return f"{words} {constraint}" if constraint else words


def _show(place: _Place, got_type: str | None = None) -> str:
    """The offending value as TOML would write it, unless it might be a secret."""
    if not place.found:
        return _TYPE_WORDS.get(got_type or "", f"`{got_type}`") if got_type else "nothing"
    value = place.raw
    last_key = place.path.rsplit(".", 1)[-1]
    if _is_secret(place.info) or is_sensitive_key(last_key):
        return _kind(value)
    if isinstance(value, str):
        shown = json.dumps(value, ensure_ascii=False)
        return shown if len(shown) <= 60 else shown[:56] + '…"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    return _kind(value)


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    for kind, word in (
        (str, "a string"),
        (int, "an integer"),
        (float, "a number"),
        (dict, "a table"),
        (list, "an array"),
        (datetime.datetime, "a date-time"),
        (datetime.date, "a date"),
        (datetime.time, "a time"),
    ):
        if isinstance(value, kind):
            return word
    return type(value).__name__


def _values(values: tuple[Any, ...]) -> str:
    return ", ".join(json.dumps(v) for v in values)
