"""Errors of the process layer, extending the one hierarchy in :mod:`actors.errors`."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

from actors.errors import ConfigError


class ConfigErrors(ConfigError):
    """Several configuration problems found together; ``errors`` lists each one.

    It is a :class:`ConfigError` itself (the first problem's path and source), so callers
    that catch ``ConfigError`` need nothing special; ``str()`` gives one line per problem.
    """

    def __init__(self, errors: Sequence[ConfigError]) -> None:
        if not errors:
            raise ValueError("ConfigErrors needs at least one error")
        self.errors: tuple[ConfigError, ...] = tuple(errors)
        first = self.errors[0]
        super().__init__(first.message, path=first.path, source=first.source)

    def __str__(self) -> str:
        return "\n".join(str(error) for error in self.errors)


def config_problems(error: ConfigError) -> tuple[ConfigError, ...]:
    """The individual problems inside ``error`` (itself, unless it is a ConfigErrors)."""
    return error.errors if isinstance(error, ConfigErrors) else (error,)


_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def key_path(prefix: str, key: str | int) -> str:
    """Extend a dotted TOML key path: ``systems`` + ``erp`` → ``systems.erp``.

    Integers index arrays (``systems.erp.tags[1]``); keys that are not bare TOML keys are
    quoted the way TOML would (``systems."my erp"``).
    """
    if isinstance(key, int):
        return f"{prefix}[{key}]"
    part = key if _BARE_KEY.match(key) else json.dumps(key, ensure_ascii=False)
    return f"{prefix}.{part}" if prefix else part
