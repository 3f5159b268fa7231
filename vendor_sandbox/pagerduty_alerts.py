"""PagerDuty alert state kept by the emulator, per (routing_key, dedup_key): a trigger opens an alert
unless one is open (then it is deduplicated into it), acknowledge/resolve move the open alert on; after a
resolve, a trigger opens a new alert. Acknowledge/resolve with no open alert are kept as orphans."""

from __future__ import annotations

import copy
import threading
import time
from typing import Any

OPEN = ("triggered", "acknowledged")


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
                alert = {
                    "routing_key": routing_key,
                    "dedup_key": dedup_key,
                    "status": "triggered",
                    "events": [action],
                    "summary": summary,
                    "opened_at": time.time(),
                }
                self._alerts.append(alert)
                self._open[key] = alert
                return "opened"
            if alert is None:
                orphan = {"routing_key": routing_key, "dedup_key": dedup_key, "event_action": action}
                self._orphans.append({**orphan, "at": time.time()})
                return "orphan"
            alert["events"].append(action)
            if action == "resolve":
                alert["status"] = "resolved"
                del self._open[key]
                return "resolved"
            alert["status"] = "acknowledged"
            return "acknowledged"

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
