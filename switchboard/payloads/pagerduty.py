"""Canonical alert -> PagerDuty Events v2 enqueue body (CONTRACTS.md; vendor-specs schema)."""

from __future__ import annotations

from typing import Any

# Canonical severities are five; PagerDuty has four.
PD_SEVERITY = {"critical": "critical", "high": "error", "medium": "warning", "low": "info", "info": "info"}


def summary(alert: dict[str, Any]) -> str:
    value = alert.get("current_value")
    threshold = alert.get("threshold_value")
    detail = f"{value}" if threshold in (None, "") else f"{value} (threshold {threshold})"
    text = f"[{alert['severity'].upper()}] {alert['entity_name']}: {alert['metric_type']} {detail}"
    if alert.get("attached"):
        text += f" (+{alert['attached']} related entities attached)"
    return text[:1024]


def pagerduty_event(alert: dict[str, Any], routing_key: str, escalation_minutes: int | None = None) -> dict[str, Any]:
    """trigger for a firing alert, resolve for a recovered one; ``dedup_key`` is the alert_key. A route's
    ``escalation_minutes`` travels in ``custom_details``, where the responder sees it (the escalation itself
    is the PagerDuty service's escalation policy, which Events v2 cannot set)."""
    if alert["status"] == "resolved":
        return {"routing_key": routing_key, "event_action": "resolve", "dedup_key": alert["alert_key"]}
    body: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": alert["alert_key"],
        "payload": {
            "summary": summary(alert),
            "source": alert["entity_id"][:255],
            "severity": PD_SEVERITY[alert["severity"]],
            "timestamp": alert["timestamp"],
            "component": alert["metric_type"],
            "group": alert.get("business_impact") or "unmapped",
            "class": alert["kind"],
            "custom_details": {
                "event_id": alert["event_id"],
                "platform": alert["platform"],
                "current_value": alert.get("current_value"),
                "threshold_value": alert.get("threshold_value"),
                "breach_direction": alert.get("breach_direction"),
                "attributes": alert.get("attributes") or {},
            },
        },
        "client": "Switchboard",
    }
    if escalation_minutes is not None:
        body["payload"]["custom_details"]["escalation_minutes"] = escalation_minutes
    if alert.get("links"):
        body["links"] = alert["links"]
    return body
