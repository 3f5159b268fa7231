"""PagerDuty REST API v2 client, read only: what PagerDuty says an incident's status is (reconciliation).

``GET {SWITCHBOARD_PAGERDUTY_API_URL:-https://api.pagerduty.com}/incidents?incident_key=<dedup_key>`` with
``Authorization: Token token=<SWITCHBOARD_PAGERDUTY_API_TOKEN>`` and the version-2 ``Accept`` header
(PagerDuty's REST docs). Events v2 opens incidents whose ``incident_key`` is our ``dedup_key``."""

from __future__ import annotations

from typing import Any

from clients.http import call

ACCEPT = "application/vnd.pagerduty+json;version=2"
OPEN = ("triggered", "acknowledged")
PAGE = 100   # the API's largest page
MAX_PAGES = 5  # a dedup_key with more incidents than this in the default 30 days is not ours to reconcile


class PagerDutyRestClient:
    def __init__(self, base_url: str, token: str, *, connect_s: float = 3.05, read_s: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.headers = {"Authorization": f"Token token={token}", "Accept": ACCEPT}
        self.timeout = (connect_s, read_s)

    def incidents(self, dedup_key: str) -> list[dict[str, Any]]:
        """Every incident (of the API's default 30 days) whose ``incident_key`` is ``dedup_key``."""
        found: list[dict[str, Any]] = []
        for page in range(MAX_PAGES):
            params = {"incident_key": dedup_key, "limit": PAGE, "offset": page * PAGE}
            body = call("GET", f"{self.base_url}/incidents", timeout=self.timeout, headers=self.headers,
                        params=params).json()
            found += body.get("incidents") or []
            if not body.get("more"):
                break
        return found

    def incident_status(self, dedup_key: str) -> str | None:
        """``triggered`` / ``acknowledged`` / ``resolved``, or None if PagerDuty has no incident for the key.

        An open incident wins over resolved ones (after a resolve, the next trigger opens a new incident;
        the old ones stay resolved); otherwise the newest incident's status."""
        incidents = self.incidents(dedup_key)
        if not incidents:
            return None
        open_ = [i for i in incidents if i.get("status") in OPEN]
        if open_:
            return "triggered" if any(i["status"] == "triggered" for i in open_) else "acknowledged"
        return max(incidents, key=lambda i: (i.get("created_at") or "", i.get("incident_number") or 0))["status"]
