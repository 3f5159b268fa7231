"""PagerDuty alert state kept by the emulator, per (routing_key, dedup_key): a trigger opens an alert
unless one is open (then it is deduplicated into it), acknowledge/resolve move the open alert on; after a
resolve, a trigger opens a new alert. Acknowledge/resolve with no open alert are kept as orphans (PagerDuty
answers them 202 and does nothing). Each alert is also the incident the REST API shows (``id``,
``created_at``, ``last_status_change_at``); ``set_status`` is a human acting in the web UI."""

from __future__ import annotations

import copy
import secrets
import threading
import time
from typing import Any

OPEN = ("triggered", "acknowledged")
HUMAN_STATUSES = ("triggered", "acknowledged", "resolved")
_ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def _incident_id() -> str:
    """PagerDuty-style id: ``P`` and six upper-case alphanumerics, e.g. ``PT4KHLK``."""
    return "P" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(6))


class AlertStore:
    """Thread-safe history of alerts (oldest first) plus acknowledge/resolve events that matched none."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._alerts: list[dict[str, Any]] = []
        self._open: dict[tuple[str, str], dict[str, Any]] = {}
        self._orphans: list[dict[str, Any]] = []

    def apply(self, routing_key: str, dedup_key: str, action: str, summary: str | None = None) -> str:
        """Apply one accepted event; returns opened|deduplicated|acknowledged|resolved|orphan."""
        key = (routing_key, dedup_key)
        with self._lock:
            alert = self._open.get(key)
            if action == "trigger":
                if alert is not None:
                    alert["events"].append(action)
                    return "deduplicated"
                now = time.time()
                alert = {
                    "id": _incident_id(),
                    "routing_key": routing_key,
                    "dedup_key": dedup_key,
                    "status": "triggered",
                    "events": [action],
                    "summary": summary,
                    "opened_at": now,
                    "last_status_change_at": now,
                    "changed_by": "events_api",
                }
                self._alerts.append(alert)
                self._open[key] = alert
                return "opened"
            if alert is None:
                orphan = {"routing_key": routing_key, "dedup_key": dedup_key, "event_action": action}
                self._orphans.append({**orphan, "at": time.time()})
                return "orphan"
            alert["events"].append(action)
            new_status = "resolved" if action == "resolve" else "acknowledged"
            self._move(alert, new_status, "events_api")
            return new_status

    def _move(self, alert: dict[str, Any], status: str, by: str) -> None:
        """Change an open alert's status (lock held); a resolved alert is closed for good."""
        if alert["status"] != status:
            alert["status"] = status
            alert["last_status_change_at"] = time.time()
            alert["changed_by"] = by
        if status == "resolved":
            del self._open[(alert["routing_key"], alert["dedup_key"])]

    def set_status(self, dedup_key: str, status: str, routing_key: str | None = None) -> dict[str, Any] | None:
        """A human acknowledges / resolves (or un-acknowledges) the open alert with ``dedup_key`` in the web
        UI; None if no alert with that key is open. ValueError if ``status`` is not a status, or several
        routing keys have one open and ``routing_key`` does not say which."""
        if status not in HUMAN_STATUSES:
            raise ValueError(f"status must be one of {', '.join(HUMAN_STATUSES)}")
        with self._lock:
            matches = [a for (rk, dk), a in self._open.items()
                       if dk == dedup_key and (routing_key is None or rk == routing_key)]
            if not matches:
                return None
            if len(matches) > 1:
                raise ValueError("several routing keys have an open alert with this dedup_key: give routing_key")
            alert = matches[0]
            self._move(alert, status, "web_ui")
            return copy.deepcopy(alert)

    def alerts(
        self, routing_key: str | None = None, dedup_key: str | None = None, status: str | None = None
    ) -> list[dict[str, Any]]:
        """Copies of the matching alerts, oldest first."""
        with self._lock:
            return copy.deepcopy(
                [
                    alert
                    for alert in self._alerts
                    if (routing_key is None or alert["routing_key"] == routing_key)
                    and (dedup_key is None or alert["dedup_key"] == dedup_key)
                    and (status is None or alert["status"] == status)
                ]
            )

    def orphans(self) -> list[dict[str, Any]]:
        """Acknowledge/resolve events that found no open alert (PagerDuty still answers them 202)."""
        with self._lock:
            return copy.deepcopy(self._orphans)

    def clear(self) -> None:
        with self._lock:
            self._alerts.clear()
            self._open.clear()
            self._orphans.clear()
