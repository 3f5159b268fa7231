"""Normalize: turn each source's payload into the canonical alert of DESIGN.md.

``alert_key`` is a deterministic hash of platform + metric_type + entity_id, so the same problem on
the same entity always maps to the same incident (PagerDuty ``dedup_key``). Timestamps become UTC.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from switchboard.stages import Alert, StageContext
from switchboard.stages.normalize_generic import generic_fields


def alert_key(platform: str, metric_type: str, entity_id: str) -> str:
    """32 hex digits; the same for the same problem on the same entity, whatever else the event says."""
    return hashlib.sha256(f"{platform}|{metric_type}|{entity_id}".encode()).hexdigest()[:32]


def to_utc(value: str) -> str:
    """ISO 8601 with any offset -> the same instant in UTC, written with ``Z``."""
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError(f"timestamp {value!r} has no UTC offset")
    return parsed.astimezone(UTC).isoformat().replace("+00:00", "Z")


def severity_for(source_cfg: dict[str, Any], metric_type: str, state: str | None) -> str:
    """The metric's severity, or its state's; else the metric's default, else the table's, else medium."""
    table = source_cfg.get("severity", {})
    rule = table.get(metric_type, table.get("default", "medium"))
    if isinstance(rule, dict):
        found = rule.get(state, rule.get("default", table.get("default", "medium")))
        # the table's default may be a state map too (the generic source's labels for every metric)
        return found.get(state, found.get("default", "medium")) if isinstance(found, dict) else found
    return rule


def _breach(value: float, threshold: float, direction: str) -> bool:
    return value > threshold if direction == "above" else value < threshold


def _genesys(p: dict[str, Any]) -> dict[str, Any]:
    e = p["event"]
    if p["eventType"] == "telephony.trunk.status.changed":
        return {"kind": "health", "metric_type": "trunk_status", "entity_id": e["trunkId"],
                "entity_name": e["trunkId"], "current_value": e["status"], "threshold_value": "UP",
                "breach_direction": None, "state": e["status"],
                "status": "resolved" if e["status"] == "UP" else "firing",
                "timestamp": e["timestamp"], "attributes": {"site_id": e.get("siteId")}}
    if p["eventType"] == "taskmanagement.workitem.resolved":
        return _workitem_resolved(e)
    return _queue_metric(e, e["timestamp"])


def _workitem_resolved(e: dict[str, Any]) -> dict[str, Any]:
    """An agent resolved a ZTP work item: the orchestrator is told, once per ztp_event_id."""
    mac = e["customFields"]["device_mac"].upper()
    resolution = e["resolution"]
    return {"kind": "ztp", "metric_type": "ztp_resolution", "entity_id": mac, "entity_name": f"device {mac}",
            "current_value": resolution["status"], "threshold_value": None, "breach_direction": None,
            "state": "RESOLVED", "status": "resolved", "timestamp": e["dateClosed"],
            "attributes": {"ztp_event_id": e["customFields"]["ztp_event_id"], "device_mac": mac,
                           "resolution_status": resolution["status"], "resolution_code": resolution["code"],
                           "orchestrator_action": resolution["action"], "agent_id": e.get("assigneeId"),
                           "resolved_at": to_utc(e["dateClosed"]), "workitem_id": e["workitemId"]}}


def _queue_metric(e: dict[str, Any], ts: str) -> dict[str, Any]:
    firing = _breach(float(e["value"]), float(e["threshold"]), e["direction"])
    return {"kind": "health", "metric_type": e["metric"], "entity_id": e["queueId"],
            "entity_name": e.get("queueName") or e["queueId"], "current_value": e["value"],
            "threshold_value": e["threshold"], "breach_direction": e["direction"], "state": None,
            "status": "firing" if firing else "resolved", "timestamp": ts, "attributes": {}}


def _cxone(p: dict[str, Any]) -> dict[str, Any]:
    d = p["data"]
    if p["eventType"] == "trunk.health.alert":
        return {"kind": "health", "metric_type": "trunk_health", "entity_id": d["trunkId"],
                "entity_name": d["trunkId"], "current_value": d.get("qualityScore"), "threshold_value": None,
                "breach_direction": None, "state": d["state"],
                "status": "resolved" if d["state"] in ("up", "healthy") else "firing",
                "timestamp": d["occurredAt"], "attributes": {"dropped_calls": d.get("droppedCalls")}}
    return _queue_metric(d, d["occurredAt"])


def _ztp(p: dict[str, Any]) -> dict[str, Any]:
    return {"kind": "ztp", "metric_type": "ztp_status", "entity_id": p["device_mac"].upper(),
            "entity_name": f"{p.get('device_model') or 'device'} {p['device_mac'].upper()}",
            "current_value": p["provisioning_status"], "threshold_value": None, "breach_direction": None,
            "state": p["provisioning_status"], "status": "firing", "timestamp": p["orchestrator_timestamp"],
            "attributes": {"ztp_event_id": p["ztp_event_id"], "error_code": p.get("error_code"),
                           "error_detail": p.get("error_detail"),
                           "site_id": p["site_id"], "device_model": p.get("device_model"),
                           "requires_callback": p.get("requires_callback", False)}}


def _iot(p: dict[str, Any]) -> dict[str, Any]:
    t = p["telemetryData"]
    return {"kind": "iot", "metric_type": p["alertType"], "entity_id": p["sensorId"], "entity_name": p["sensorId"],
            "current_value": t["currentValue"], "threshold_value": t["threshold"], "breach_direction": "above",
            "state": None, "status": "firing", "timestamp": p["timestamp"],
            "attributes": {"customer_id": p["customerId"], "unit": t.get("unit")}}


_MAPPERS = {"genesys": _genesys, "cxone": _cxone, "ztp": _ztp, "iot": _iot}


def normalize(envelope: dict[str, Any], ctx: StageContext) -> Alert:
    """Canonical alert from ``{event_id, source, received_at, payload}``."""
    source = envelope["source"]
    source_cfg = ctx.config.sources[source]
    payload = envelope["payload"]
    fields = generic_fields(payload, source_cfg["mapping"]) if source == "generic" else _MAPPERS[source](payload)
    state = fields.pop("state")
    platform = source_cfg["platform"]
    return {
        "event_id": envelope["event_id"],
        "alert_key": alert_key(platform, fields["metric_type"], fields["entity_id"]),
        "source": source,
        "platform": platform,
        "severity": severity_for(source_cfg, fields["metric_type"], state),
        "business_impact": None,
        "received_at": datetime.fromtimestamp(envelope["received_at"], UTC).isoformat().replace("+00:00", "Z"),
        "payload_ref": envelope["event_id"],
        **fields,
        "timestamp": to_utc(fields["timestamp"]),
    }
