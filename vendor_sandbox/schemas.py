"""JSON Schema helpers for vendor emulators: load files from ``specs/``, build Draft 2020-12 validators
with ``date-time`` and ``date-time-offset`` (RFC 3339: the UTC offset or ``Z`` is required) format checks,
and turn every violation into a short readable message."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker, ValidationError

SPEC_DIR = Path(__file__).resolve().parent / "specs"
FORMAT_CHECKER = FormatChecker(formats=())


@FORMAT_CHECKER.checks("date-time", raises=ValueError)
def _is_date_time(value: object) -> bool:
    """ISO 8601 date and time (``2015-07-17T08:42:58.315+0000``, ``...Z``); a bare date is refused."""
    if not isinstance(value, str):
        return True
    if len(value) <= 10:
        raise ValueError("a date-time needs a time of day")
    datetime.fromisoformat(value)
    return True


@FORMAT_CHECKER.checks("date-time-offset", raises=ValueError)
def _is_date_time_with_offset(value: object) -> bool:
    """A ``date-time`` that carries its UTC offset (``2024-05-01T12:00:00Z``, ``...+02:00``)."""
    if not isinstance(value, str):
        return True
    _is_date_time(value)
    if datetime.fromisoformat(value).tzinfo is None:
        raise ValueError("a date-time needs a UTC offset or Z")
    return True


def load_spec(name: str) -> dict[str, Any]:
    """Read ``specs/<name>`` as JSON."""
    with (SPEC_DIR / name).open(encoding="utf-8") as handle:
        return json.load(handle)


def make_validator(schema: dict[str, Any]) -> Draft202012Validator:
    """Check ``schema`` itself, then return a validator that also checks formats."""
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=FORMAT_CHECKER)


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def describe_error(error: ValidationError) -> str:
    """``<JSON path>: <problem>``, e.g. ``$.payload.summary: length 1025 exceeds maxLength 1024``."""
    keyword, expected, value = error.validator, error.validator_value, error.instance
    if keyword == "maxLength":
        problem = f"length {len(value)} exceeds maxLength {expected}"
    elif keyword == "minLength":
        problem = f"length {len(value)} is below minLength {expected}"
    elif keyword == "enum":
        problem = f"{_short(value)} is not one of {expected}"
    elif keyword == "const":
        problem = f"{_short(value)} is not {expected!r}"
    elif keyword == "pattern":
        problem = f"{_short(value)} does not match {expected!r}"
    elif keyword == "format" and expected == "date-time-offset":
        problem = f"{_short(value)} is not a valid date-time with a UTC offset (e.g. 2024-05-01T12:00:00Z)"
    elif keyword == "format":
        problem = f"{_short(value)} is not a valid {expected}"
    elif keyword == "type":
        problem = f"{_short(value)} is not of type {expected!r}"
    else:
        problem = error.message if len(error.message) <= 300 else error.message[:297] + "..."
    return f"{error.json_path}: {problem}"


def schema_errors(validator: Draft202012Validator, instance: Any) -> list[str]:
    """Every violation of ``instance``, sorted by location, as readable messages (empty when valid)."""
    errors = sorted(validator.iter_errors(instance), key=lambda e: (e.json_path, e.message))
    return [describe_error(error) for error in errors]
