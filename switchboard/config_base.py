"""Shared pieces of the configuration schemas: strict schemas, defaults of absent blocks, the names
every file agrees on, and the error that names file, key and problem."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema

SOURCE_NAMES = ("genesys", "cxone", "ztp", "iot", "generic")
SEVERITIES = ("critical", "high", "medium", "low", "info")
PRIORITIES = ("critical", "default", "bulk")


class ConfigError(Exception):
    """The configuration is invalid; the message names file, key and problem."""


class _Strict(Schema):
    class Meta:
        unknown = "raise"


def _defaults_of(schema: type[Schema], given: dict[str, Any] | None = None) -> Any:
    """The value of an absent nested block: its schema's own defaults (marshmallow does not apply them
    to a ``load_default``), so leaving a block out means the same as writing it empty."""
    return lambda: schema().load(dict(given or {}))


CLOCK = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"
