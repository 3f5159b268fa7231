"""Canonical alert + customer -> CXone dial body, from the configured template (CONTRACTS.md: no single
public dial contract, so the body is data: ``"{phone}"``-style placeholders are filled in)."""

from __future__ import annotations

from typing import Any


def render(template: Any, values: dict[str, Any]) -> Any:
    """Fill ``"{name}"`` placeholders; a string that is exactly one placeholder keeps the value's type."""
    if isinstance(template, dict):
        return {k: render(v, values) for k, v in template.items()}
    if isinstance(template, list):
        return [render(v, values) for v in template]
    if isinstance(template, str):
        if template.startswith("{") and template.endswith("}") and template[1:-1] in values:
            return values[template[1:-1]]
        return template.format_map(values)
    return template


def dial_body(template: dict[str, Any], *, phone: str, skill: Any, alert: dict[str, Any]) -> dict[str, Any]:
    return render(template, {"phone": phone, "skill": skill, "event_id": alert["event_id"],
                             "alert_key": alert["alert_key"], "severity": alert["severity"]})
