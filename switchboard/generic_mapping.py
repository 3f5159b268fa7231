"""The ``generic`` source's payload, described by the ``mapping`` block of its config (pure).

One table (``FIELDS``) says, per canonical field a mapping can point at, which JSON values it accepts;
from it come the receiver's check of a posted payload (``payload_errors``, answered 422 with every error
keyed by the dotted path), the request-body schema in the OpenAPI document (``json_schema``), and the
normalizer's reading of the payload (``lookup``), so the three cannot disagree.

Paths are dotted object keys (``alert.labels.host``). A hand-written lookup is enough and clearer than a
query library (jsonpath, glom): a mapping names exactly one value per field, needs no wildcards, filters
or list indexing, and the receiver must say precisely which path is missing or not an object, which is a
loop over the segments here rather than a translation of a library's error. The price: a key that itself
contains a dot cannot be addressed.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from datetime import UTC
from typing import Any

from marshmallow import ValidationError, fields, validate

PATH_PATTERN = r"^[^.]+(\.[^.]+)*$"
REQUIRED = ("entity_id", "metric_type", "timestamp")


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


def lookup(data: Any, path: str) -> Any:
    """The value at dotted ``path`` in ``data``, or ``MISSING`` when a segment is absent or not an object."""
    current = data
    for segment in path.split("."):
        if not isinstance(current, dict) or segment not in current:
            return MISSING
        current = current[segment]
    return current


def _blocked_at(data: Any, path: str) -> str | None:
    """The longest present prefix of ``path`` whose value is not an object (why the path cannot be followed)."""
    current, seen = data, []
    for segment in path.split(".")[:-1]:
        if not isinstance(current, dict) or segment not in current:
            return None
        current = current[segment]
        seen.append(segment)
        if not isinstance(current, dict):
            return ".".join(seen)
    return None


def scalar_text(value: Any) -> str | None:
    """A scalar as the text a YAML value map is keyed by (JSON spelling for true/false/numbers)."""
    if value is None or value is MISSING:
        return None
    return value if isinstance(value, str) else json.dumps(value)


class Identifier(fields.Field):
    """A non-empty string up to 256 characters, or an integer (numeric ids are common in generic senders)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        if isinstance(value, str) and 1 <= len(value) <= 256:
            return value
        raise ValidationError("Not a valid identifier (a string of 1..256 characters, or an integer).")


class Reading(fields.Field):
    """A reading or threshold: a finite number or a string up to 256 characters."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, int | float) and not isinstance(value, bool):
            if isinstance(value, int) and abs(value) > sys.float_info.max:  # JSON allows 4000-digit integers
                raise ValidationError("Number too large.")
            return value
        if isinstance(value, str) and len(value) <= 256:
            return value
        raise ValidationError("Not a valid reading (a number, or a string of at most 256 characters).")


class Scalar(fields.Field):
    """A string (up to 256 characters), number or boolean: a value looked up in a value map."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, bool | int | float) or (isinstance(value, str) and len(value) <= 256):
            return value
        raise ValidationError("Not a valid scalar (a string of at most 256 characters, a number or a boolean).")


class UtcDateTime(fields.AwareDateTime):
    """ISO 8601 with an explicit offset, whose instant is representable in UTC (year 1..9999)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        parsed = super()._deserialize(value, attr, data, **kwargs)
        try:
            parsed.astimezone(UTC)
        except OverflowError as exc:  # e.g. 0001-01-01T00:00:00+05:00 is before year 1 in UTC
            raise ValidationError("Not a valid datetime (out of range in UTC).") from exc
        return parsed


@dataclass(frozen=True)
class FieldType:
    field: fields.Field
    schema: dict[str, Any]  # the same rule as JSON Schema (OpenAPI 3.1)


_STRING_256 = {"type": "string", "maxLength": 256}
FIELDS: dict[str, FieldType] = {
    "entity_id": FieldType(Identifier(required=True),
                           {"oneOf": [{"type": "string", "minLength": 1, "maxLength": 256}, {"type": "integer"}]}),
    "metric_type": FieldType(fields.String(required=True, validate=validate.Length(min=1, max=128)),
                             {"type": "string", "minLength": 1, "maxLength": 128}),
    "timestamp": FieldType(UtcDateTime(required=True), {"type": "string", "format": "date-time"}),
    "entity_name": FieldType(fields.String(allow_none=True, validate=validate.Length(max=512)),
                             {"type": ["string", "null"], "maxLength": 512}),
    "current_value": FieldType(Reading(allow_none=True), {"oneOf": [{"type": ["number", "null"]}, _STRING_256]}),
    "threshold_value": FieldType(Reading(allow_none=True), {"oneOf": [{"type": ["number", "null"]}, _STRING_256]}),
    "breach_direction": FieldType(fields.String(allow_none=True, validate=validate.OneOf(["above", "below"])),
                                  {"enum": ["above", "below", None]}),
    "status": FieldType(Scalar(allow_none=True),
                        {"oneOf": [{"type": ["number", "boolean", "null"]}, _STRING_256]}),
    "state": FieldType(Scalar(allow_none=True), {"oneOf": [{"type": ["number", "boolean", "null"]}, _STRING_256]}),
}
ANY: dict[str, Any] = {}


def mapped_paths(mapping: dict[str, Any]) -> list[tuple[str, str]]:
    """``(canonical field, path)`` for every path the mapping names; attributes as ``attributes.<name>``."""
    out = []
    for name in FIELDS:
        spec = mapping.get(name)
        path = spec["path"] if isinstance(spec, dict) else spec
        if path:
            out.append((name, path))
    out += [(f"attributes.{name}", path) for name, path in (mapping.get("attributes") or {}).items()]
    return out


def payload_errors(mapping: dict[str, Any], data: Any) -> dict[str, list[str]]:
    """Every problem of ``data`` against the mapping, keyed by dotted path ({} when valid)."""
    if not isinstance(data, dict):
        return {"_schema": ["Invalid input type (a JSON object is required)."]}
    errors: dict[str, list[str]] = {}
    for name, path in mapped_paths(mapping):
        value = lookup(data, path)
        blocked = _blocked_at(data, path)
        if blocked is not None:
            errors.setdefault(path, []).append(f"{blocked} is not an object, so {path} cannot be read "
                                               f"(mapping.{name}).")
            continue
        ftype = FIELDS.get(name)
        if value is MISSING:
            if name in REQUIRED:
                errors.setdefault(path, []).append(f"Missing data for required field (mapping.{name}).")
            continue
        if ftype is None:
            continue  # attributes take any JSON value
        try:
            ftype.field.deserialize(value)
        except ValidationError as exc:
            messages = exc.messages if isinstance(exc.messages, list) else [str(exc.messages)]
            errors.setdefault(path, []).extend(f"{m} (mapping.{name})" for m in messages)
    return errors


def _object() -> dict[str, Any]:
    return {"type": "object", "properties": {}}


def _require(node: dict[str, Any], key: str) -> None:
    required = node.setdefault("required", [])
    if key not in required:
        required.append(key)


def json_schema(mapping: dict[str, Any]) -> dict[str, Any]:
    """JSON Schema of a payload the mapping accepts: objects along every path, the required paths required.

    Unknown keys are allowed, as at the receiver (senders add fields without notice).
    """
    root = _object()
    for name, path in mapped_paths(mapping):
        *parents, leaf = path.split(".")
        node = root
        for segment in parents:
            if name in REQUIRED:
                _require(node, segment)
            child = node["properties"].get(segment)
            if child is None or child == ANY:  # an attribute taking the whole object is still an object
                child = node["properties"][segment] = _object()
            node = child
        if name in REQUIRED:
            _require(node, leaf)
        ftype = FIELDS.get(name)
        schema = dict(ftype.schema) if ftype is not None else dict(ANY)
        existing = node["properties"].get(leaf)
        if existing is None or existing == ANY:
            node["properties"][leaf] = schema
        elif schema != ANY and schema != existing:  # two fields read one path: the value must suit both
            node["properties"][leaf] = {"allOf": [existing, schema]}
    return root
