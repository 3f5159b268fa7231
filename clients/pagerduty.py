"""PagerDuty Events API v2 client: enqueue trigger / acknowledge / resolve (CONTRACTS.md)."""

from __future__ import annotations

from typing import Any

from clients.http import VendorError, call

EVENT_ACTIONS = ("trigger", "acknowledge", "resolve")
MAX_BODY_BYTES = 512 * 1024


class PagerDutyClient:
    def __init__(self, base_url: str, *, connect_s: float = 3.05, read_s: float = 10.0) -> None:
        self.url = base_url.rstrip("/") + "/v2/enqueue"
        self.timeout = (connect_s, read_s)

    def enqueue(self, event: dict[str, Any]) -> dict[str, Any]:
        """Send one event; return PagerDuty's answer (``dedup_key`` included) or raise VendorError."""
        if event.get("event_action") not in EVENT_ACTIONS:
            raise VendorError(f"event_action must be one of {EVENT_ACTIONS}", retryable=False)
        if event["event_action"] != "trigger" and not event.get("dedup_key"):
            raise VendorError("acknowledge/resolve need the trigger's dedup_key", retryable=False)
        response = call("POST", self.url, timeout=self.timeout, json=event)
        try:
            return response.json()
        except ValueError:
            return {"status": "success", "dedup_key": event.get("dedup_key")}
