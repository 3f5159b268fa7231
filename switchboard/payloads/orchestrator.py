"""Resolved ZTP alert -> the orchestrator's resolution callback body (CONTRACTS.md, seed 000)."""

from __future__ import annotations

from typing import Any

FIELDS = ("ztp_event_id", "resolution_status", "resolution_code", "agent_id", "resolved_at", "device_mac",
          "orchestrator_action")


def resolution_body(alert: dict[str, Any]) -> dict[str, Any]:
    attrs = alert.get("attributes") or {}
    missing = [f for f in FIELDS if f != "agent_id" and attrs.get(f) in (None, "")]
    if missing:
        raise ValueError(f"resolution is missing {', '.join(missing)}")
    return {f: attrs.get(f) for f in FIELDS}
