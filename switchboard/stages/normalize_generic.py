"""Normalize the ``generic`` source: read the canonical fields where the source's ``mapping`` says they are.

The receiver has already checked the payload against the same mapping (``payload_errors``), so every
required path is present with its type; an optional path that is absent reads as null.
"""

from __future__ import annotations

from typing import Any

from switchboard.generic_mapping import MISSING, lookup, scalar_text


def _read(payload: dict[str, Any], path: str | None) -> Any:
    if not path:
        return None
    value = lookup(payload, path)
    return None if value is MISSING else value


def _status(payload: dict[str, Any], spec: dict[str, Any] | None) -> str:
    """firing | resolved from the sender's words; absent, null or unlisted: the spec's default (firing)."""
    if spec is None:
        return "firing"
    text = scalar_text(_read(payload, spec["path"]))
    return spec["values"].get(text, spec["default"]) if text is not None else spec["default"]


def generic_fields(payload: dict[str, Any], mapping: dict[str, Any]) -> dict[str, Any]:
    """The canonical fields (and ``state`` for the severity table) of one generic payload."""
    raw_id = _read(payload, mapping["entity_id"])
    entity_id = raw_id if isinstance(raw_id, str) else str(raw_id)  # numeric ids become their decimal text
    return {
        "kind": mapping["kind"],
        "metric_type": _read(payload, mapping["metric_type"]),
        "entity_id": entity_id,
        "entity_name": _read(payload, mapping.get("entity_name")) or entity_id,
        "current_value": _read(payload, mapping.get("current_value")),
        "threshold_value": _read(payload, mapping.get("threshold_value")),
        "breach_direction": _read(payload, mapping.get("breach_direction")),
        "state": scalar_text(_read(payload, mapping.get("state"))),
        "status": _status(payload, mapping.get("status")),
        "timestamp": _read(payload, mapping["timestamp"]),
        "attributes": {name: _read(payload, path) for name, path in (mapping.get("attributes") or {}).items()},
    }
