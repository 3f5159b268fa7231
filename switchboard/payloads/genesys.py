"""Canonical alert -> Genesys Cloud request bodies: ``WorkitemCreate`` and ``CreateCallbackCommand``.

Field names and limits from CONTRACTS.md; the tests check every body against the official SDK's model
classes (``purecloudplatformclientv2``). The seed's ``skills[{name}]``, ``attributes`` and ``sla`` map
onto ``skillIds`` (names -> ids from config), ``customFields`` and ``dateDue``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from switchboard.payloads.context_limits import fit_attributes
from switchboard.payloads.pagerduty import summary

NAME_MIN, NAME_MAX, DESCRIPTION_MAX, EXTERNAL_TAG_MAX = 3, 256, 512, 256
SUMMARY_KEYS = ("event_id", "alert_key", "severity", "metric_type", "entity_id", "status")


def external_tag(event_id: str, target: str) -> str:
    """The tag a work item carries so a redelivered dispatch can find what an earlier attempt created."""
    return f"switchboard:{event_id}:{target}"[:EXTERNAL_TAG_MAX]


def context_attributes(alert: dict[str, Any]) -> dict[str, Any]:
    """Everything an agent needs, flat: the alert's identity and reading, then the source's attributes."""
    out: dict[str, Any] = {k: alert.get(k) for k in SUMMARY_KEYS}
    out.update({"entity_name": alert.get("entity_name"), "current_value": alert.get("current_value"),
                "threshold_value": alert.get("threshold_value"), "timestamp": alert.get("timestamp"),
                "source": alert.get("source")})
    for key, value in (alert.get("attributes") or {}).items():
        out.setdefault(key, value)
    return {k: v for k, v in out.items() if v is not None}


def workitem_name(alert: dict[str, Any]) -> str:
    name = summary(alert)[:NAME_MAX]
    return name if len(name) >= NAME_MIN else f"{name:<{NAME_MIN}}"


def workitem_body(alert: dict[str, Any], *, target: str, type_id: str, queue_id: str, skill_ids: list[str],
                  priority: int | None, date_due: datetime | None, limit: int,
                  description: str | None = None) -> tuple[dict[str, Any], bool]:
    """``(WorkitemCreate body, overflowed)``; overflowed means the full alert must be stored by reference."""
    fields, overflowed = fit_attributes(context_attributes(alert), SUMMARY_KEYS, limit, alert["payload_ref"])
    body: dict[str, Any] = {
        "name": workitem_name(alert),
        "typeId": type_id,
        "description": (description or f"{alert['source']} alert {alert['event_id']}: {summary(alert)}")[
            :DESCRIPTION_MAX],
        "queueId": queue_id,
        "externalTag": external_tag(alert["event_id"], target),
        "customFields": fields,
    }
    if skill_ids:
        body["skillIds"] = skill_ids
    if priority is not None:
        body["priority"] = priority
    if date_due is not None:
        body["dateDue"] = iso_z(date_due)
    return body, overflowed


WRAPUP_CODES = "resolved-on-call,dispatch-technician,customer-unreachable"


def callback_body(alert: dict[str, Any], *, queue_id: str, phone: str, customer_name: str | None,
                  limit: int) -> tuple[dict[str, Any], bool]:
    """``(CreateCallbackCommand body, overflowed)``: a proactive call with the alert as context data.

    ``data`` carries the wrap-up context the agent script shows (and the codes it offers), each value
    within Genesys' custom-attribute limit.
    """
    attrs = context_attributes(alert)
    attrs["summary"] = summary(alert)
    attrs["wrapup_codes"] = WRAPUP_CODES
    data, overflowed = fit_attributes(attrs, (*SUMMARY_KEYS, "summary", "wrapup_codes"), limit,
                                      alert["payload_ref"])
    body: dict[str, Any] = {"callbackNumbers": [phone], "queueId": queue_id, "data": data}
    if customer_name:
        body["callbackUserName"] = customer_name[:256]
    return body, overflowed


def iso_z(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def due_after(now: datetime, minutes: int | None) -> datetime | None:
    return None if minutes is None else now + timedelta(minutes=minutes)
