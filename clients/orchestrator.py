"""ZTP orchestrator client: the resolution callback, authenticated with ``X-Api-Key``.

The orchestrator answers 200 to a repeated ``ztp_event_id``, so resending after an uncertain attempt is
safe; only 5xx and timeouts are retried (the shared classification does that).
"""

from __future__ import annotations

from typing import Any

from clients.http import call

RESOLUTIONS = "/api/v1/events/resolutions"


class OrchestratorClient:
    def __init__(self, base_url: str, api_key: str, *, connect_s: float = 3.05, read_s: float = 10.0) -> None:
        self.url = base_url.rstrip("/") + RESOLUTIONS
        self.api_key = api_key
        self.timeout = (connect_s, read_s)

    def send_resolution(self, body: dict[str, Any]) -> dict[str, Any]:
        response = call("POST", self.url, timeout=self.timeout, json=body, headers={"X-Api-Key": self.api_key})
        try:
            return response.json()
        except ValueError:
            return {"status": "accepted", "ztp_event_id": body.get("ztp_event_id")}
