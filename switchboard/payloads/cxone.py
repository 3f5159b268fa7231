"""Canonical alert + customer -> CXone dial body, from the configured template (CONTRACTS.md: no single
public dial contract, so the body is data: ``"{phone}"``-style placeholders are filled in)."""

from __future__ import annotations

import string
from typing import Any

PLACEHOLDERS = ("phone", "skill", "event_id", "alert_key", "severity")


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


def template_problems(template: Any) -> list[str]:
    """Unknown or malformed placeholders in a dial template (checked when the config loads)."""
    if isinstance(template, dict):
        return [p for v in template.values() for p in template_problems(v)]
    if isinstance(template, list):
        return [p for v in template for p in template_problems(v)]
    if not isinstance(template, str):
        return []
    try:
        names = [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    except ValueError as exc:
        return [f"{template!r}: {exc}"]
    return [f"{template!r}: unknown placeholder {{{n}}}; known: {', '.join(PLACEHOLDERS)}"
            for n in names if n not in PLACEHOLDERS]
