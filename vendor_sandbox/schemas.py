"""JSON Schema helpers for vendor emulators: load files from ``specs/``, build Draft 2020-12 validators
with ``date-time`` and ``date-time-offset`` (RFC 3339: the UTC offset or ``Z`` is required) format checks,
and turn every violation into a short readable message.

Each ``SchemaValidator`` holds two validators of one schema: jsonschema-rs's, compiled (Rust), which only
answers "valid?", and jsonschema's, which decides and words the errors. A request the compiled one accepts is
accepted without the other (~5 µs instead of ~100 for a PagerDuty event: the sandbox is the null vendor of
``make bench`` and shares its cores); anything it refuses is judged again by jsonschema, so a stricter check
on its side (its built-in formats, ``$`` before a final newline) changes nothing. The two agree on every
schema here: ``tests/test_sandbox_schemas.py``."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import jsonschema_rs
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


def _passes(check: Callable[[object], bool]) -> Callable[[str], bool]:
    """A format check as jsonschema-rs calls it: True or False, never an exception."""
    def passes(value: str) -> bool:
        try:
            return bool(check(value))
        except ValueError:
            return False
    return passes


FAST_FORMATS = {"date-time": _passes(_is_date_time), "date-time-offset": _passes(_is_date_time_with_offset)}


class SchemaValidator:
    """One schema's compiled validator (``fast``: accepts quickly) and jsonschema's (``full``: the verdict
    on anything ``fast`` refuses, and its errors)."""

    def __init__(self, schema: dict[str, Any]) -> None:
        Draft202012Validator.check_schema(schema)
        self.full = Draft202012Validator(schema, format_checker=FORMAT_CHECKER)
        self.fast = jsonschema_rs.Draft202012Validator(schema, formats=FAST_FORMATS, validate_formats=True)

    def accepts_fast(self, instance: Any) -> bool:
        try:
            return self.fast.is_valid(instance)
        except (ValueError, OverflowError):  # what it cannot represent (an integer beyond 64 bits) jsonschema judges
            return False


def make_validator(schema: dict[str, Any]) -> SchemaValidator:
    """Check ``schema`` itself, then return its validators (formats checked)."""
    return SchemaValidator(schema)


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


def schema_errors(validator: SchemaValidator, instance: Any) -> list[str]:
    """Every violation of ``instance``, sorted by location, as readable messages (empty when valid)."""
    if validator.accepts_fast(instance):
        return []
    errors = sorted(validator.full.iter_errors(instance), key=lambda e: (e.json_path, e.message))
    return [describe_error(error) for error in errors]
