"""Typed access to parsed Stripe parameters, refusing what an endpoint does not know.

Stripe answers an unknown parameter with 400 ``parameter_unknown`` naming it, a bad
integer with ``parameter_invalid_integer``, an empty value for a required one with
``parameter_invalid_empty``; :class:`Params` does the same. ``expand`` is accepted by
every endpoint.
"""

from __future__ import annotations

from typing import Any

from .errors import StripeError, invalid, missing_param, unknown_param

MAX_METADATA_KEYS = 50


class Params:
    """One level of parameters; nested levels are :meth:`child` instances."""

    def __init__(self, data: dict[str, Any], prefix: str = "") -> None:
        self.data = data
        self.prefix = prefix
        self.used: set[str] = {"expand"} if not prefix else set()

    def name(self, key: str) -> str:
        return f"{self.prefix}[{key}]" if self.prefix else key

    def has(self, key: str) -> bool:
        return key in self.data

    def raw(self, key: str) -> Any:
        self.used.add(key)
        return self.data.get(key)

    def str(self, key: str, *, required: bool = False, max_length: int = 5000) -> str | None:
        value = self.raw(key)
        if value is None:
            if required:
                raise missing_param(self.name(key))
            return None
        if not isinstance(value, str):
            raise invalid(f"Invalid string: {self.name(key)}", self.name(key))
        if value == "" and required:
            raise _empty(self.name(key))
        if len(value) > max_length:
            raise invalid(
                f"Invalid string: {self.name(key)} must be at most {max_length} characters",
                self.name(key),
            )
        return value

    def int(
        self,
        key: str,
        *,
        required: bool = False,
        minimum: int | None = None,
        maximum: int | None = None,
    ) -> int | None:
        value = self.str(key, required=required)
        if value is None or value == "":
            if required:
                raise _empty(self.name(key))
            return None
        try:
            number = int(value)
        except ValueError:
            raise invalid(
                f"Invalid integer: {value}", self.name(key), "parameter_invalid_integer"
            ) from None
        if (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
            bounds = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
            raise invalid(f"Invalid {self.name(key)}: must be {bounds}", self.name(key))
        return number

    def bool(self, key: str) -> bool | None:
        value = self.str(key)
        if value is None:
            return None
        if value not in ("true", "false"):
            raise invalid(f"Invalid boolean: {value}", self.name(key))
        return value == "true"

    def enum(self, key: str, choices: tuple[str, ...], *, required: bool = False) -> str | None:
        value = self.str(key, required=required)
        if value is None:
            return None
        if value not in choices:
            raise invalid(
                f"Invalid {self.name(key)}: must be one of {', '.join(choices)}",
                self.name(key),
            )
        return value

    def child(self, key: str, *, required: bool = False) -> Params | None:
        value = self.raw(key)
        if value is None:
            if required:
                raise missing_param(self.name(key))
            return None
        if not isinstance(value, dict):
            raise invalid(f"Invalid object: {self.name(key)}", self.name(key))
        return Params(value, self.name(key))

    def list(self, key: str) -> list[Any] | None:
        value = self.raw(key)
        if value is None:
            return None
        if not isinstance(value, list):
            raise invalid(f"Invalid array: {self.name(key)}", self.name(key))
        return value

    def metadata(self, key: str = "metadata") -> dict[str, str | None] | None:
        """Metadata to merge: a value of ``""`` (or ``metadata=""``) unsets."""
        value = self.raw(key)
        if value is None:
            return None
        if value == "":
            return {}
        if not isinstance(value, dict):
            raise invalid(f"Invalid object: {self.name(key)}", self.name(key))
        if len(value) > MAX_METADATA_KEYS:
            raise invalid("Metadata can have at most 50 keys.", self.name(key))
        result: dict[str, str | None] = {}
        for name, item in value.items():
            path = f"{self.name(key)}[{name}]"
            if len(name) > 40:
                raise invalid(f"Metadata keys must be at most 40 characters: {name}", path)
            if not isinstance(item, str):
                raise invalid(f"Invalid metadata value for {name}", path)
            if len(item) > 500:
                raise invalid(f"Metadata values must be at most 500 characters: {name}", path)
            result[name] = item or None
        return result

    def finish(self) -> None:
        """Refuse whatever was not read."""
        for key in self.data:
            if key not in self.used:
                raise unknown_param(self.name(key))


def _empty(name: str) -> StripeError:
    return invalid(
        f"You passed an empty string for '{name}'. We assume empty values are an attempt to "
        f"unset a parameter; however '{name}' cannot be unset. You should remove '{name}' "
        "from your request or supply a non-empty value.",
        name,
        "parameter_invalid_empty",
    )


def merge_metadata(current: dict[str, str], update: dict[str, str | None] | None) -> dict:
    if update is None:
        return current
    if update == {}:
        return {}
    merged = dict(current)
    for key, value in update.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged
