"""Reconciliation decisions (pure): given an incident's local record and what PagerDuty says, what to do.

The local record (``switchboard.incidents``) has ``state`` (detected | acknowledged | resolved | suppressed,
what Switchboard believes) and ``status`` (firing | resolved, the last status we delivered). PagerDuty's
status is triggered | acknowledged | resolved, or None when it has no incident for the dedup_key.

- acknowledged there, detected here: a responder acknowledged it -> local ``acknowledged``;
- resolved there, detected/acknowledged here while we last sent a trigger: a responder resolved it ->
  local ``resolved``;
- we delivered a resolve but it is still open there: the resolve was lost -> send it again;
- we delivered a trigger, it is not resolved here, and PagerDuty has no incident: the trigger was lost ->
  send it again;
- anything else (agreement, a suppressed alert we never paged, a resolve PagerDuty never needed): nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

ACKNOWLEDGE_LOCAL = "acknowledge_local"
RESOLVE_LOCAL = "resolve_local"
RESEND_RESOLVE = "resend_resolve"
RESEND_TRIGGER = "resend_trigger"
ACTIONS = (ACKNOWLEDGE_LOCAL, RESOLVE_LOCAL, RESEND_RESOLVE, RESEND_TRIGGER)
VENDOR_OPEN = ("triggered", "acknowledged")


@dataclass(frozen=True)
class Correction:
    """One correction: ``action`` (one of ``ACTIONS``) and why, for the log and the incident's history."""

    action: str
    reason: str

    @property
    def local_state(self) -> str | None:
        """The local state this correction sets (None for a re-send)."""
        return {ACKNOWLEDGE_LOCAL: "acknowledged", RESOLVE_LOCAL: "resolved"}.get(self.action)

    @property
    def resend_status(self) -> str | None:
        """The canonical alert status a re-send delivers (None for a local correction)."""
        return {RESEND_RESOLVE: "resolved", RESEND_TRIGGER: "firing"}.get(self.action)


def decide(record: dict[str, Any], vendor_status: str | None) -> Correction | None:
    """The correction ``record`` needs given PagerDuty's ``vendor_status``, or None when they agree."""
    state, delivered = record.get("state"), record.get("status")
    if state == "suppressed":
        return None  # never paged: nothing at PagerDuty to agree with
    if delivered == "resolved":
        if vendor_status in VENDOR_OPEN:
            return Correction(RESEND_RESOLVE, f"we sent a resolve but PagerDuty still has it {vendor_status}")
        return None
    if delivered != "firing":
        return None
    if vendor_status is None:
        if state in ("detected", "acknowledged"):
            return Correction(RESEND_TRIGGER, "we sent a trigger but PagerDuty has no incident for it")
        return None
    if vendor_status == "acknowledged" and state == "detected":
        return Correction(ACKNOWLEDGE_LOCAL, "acknowledged in PagerDuty")
    if vendor_status == "resolved" and state in ("detected", "acknowledged"):
        return Correction(RESOLVE_LOCAL, "resolved in PagerDuty")
    return None


def pagerduty_routes(alert: dict[str, Any], targets: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The alert's routes whose target is of kind ``pagerduty`` (the only ones reconciled)."""
    return [r for r in alert.get("routes") or [] if targets.get(r.get("target"), {}).get("kind") == "pagerduty"]


def resend_alert(alert: dict[str, Any], correction: Correction, event_id: str, received_at: str) -> dict[str, Any]:
    """The canonical alert a re-send dispatches: the last delivered one, under a new ``event_id``, with the
    status the correction delivers (same ``alert_key``, so the same PagerDuty ``dedup_key``)."""
    status = correction.resend_status
    if status is None:
        raise ValueError(f"{correction.action} is not a re-send")
    return {**alert, "event_id": event_id, "status": status, "received_at": received_at}
