"""Genesys Cloud CX client: OAuth client credentials, work items, callbacks, queue observations.

Paths and limits from CONTRACTS.md. The token is shared by every worker through ``TokenManager``.
"""

from __future__ import annotations

from typing import Any

from clients.auth_session import authed_call
from clients.oauth import Token, TokenManager, request_token

MAX_BODY_BYTES = 512_000
WORKITEMS = "/api/v2/taskmanagement/workitems"
CALLBACKS = "/api/v2/conversations/callbacks"
QUEUE_OBSERVATIONS = "/api/v2/analytics/queues/observations/query"


def fetch_genesys_token(login_url: str, client_id: str, client_secret: str,
                        timeout: tuple[float, float]) -> Token:
    """``POST /oauth/token`` with client credentials; CredentialError if the login service says no."""
    return request_token("genesys", login_url.rstrip("/") + "/oauth/token", auth=(client_id, client_secret),
                         form={"grant_type": "client_credentials"}, timeout=timeout, default_expires_in=86399)


class GenesysClient:
    def __init__(self, api_url: str, tokens: TokenManager, *, connect_s: float = 3.05, read_s: float = 10.0) -> None:
        self.api_url = api_url.rstrip("/")
        self.tokens = tokens
        self.timeout = (connect_s, read_s)

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = authed_call(self.tokens, "POST", self.api_url + path, timeout=self.timeout, json=body)
        try:
            return response.json()
        except ValueError:
            return {}  # a 2xx without a JSON body still means Genesys accepted the request

    def create_workitem(self, body: dict[str, Any]) -> dict[str, Any]:
        """Create a work item (``WorkitemCreate``); returns the Workitem with its ``id``."""
        return self._post(WORKITEMS, body)

    def find_workitems(self, external_tag: str) -> list[dict[str, Any]]:
        """Work items carrying ``external_tag``: how a dispatch checks whether an earlier attempt acted."""
        body = {"filters": [{"name": "externalTag", "type": "String", "operator": "EQ", "values": [external_tag]}],
                "pageSize": 25}
        return self._post(WORKITEMS + "/query", body).get("entities", [])

    def create_callback(self, body: dict[str, Any]) -> dict[str, Any]:
        """Create a callback (``CreateCallbackCommand`` -> ``CreateCallbackResponse``)."""
        return self._post(CALLBACKS, body)

    def queue_observations(self, queue_ids: list[str], metrics: tuple[str, ...] = ("oWaiting", "oOnQueueUsers"),
                           ) -> dict[str, dict[str, float]]:
        """``{queue_id: {metric: count}}`` from the queue observations query (for occupancy throttling)."""
        body = {"filter": {"type": "or", "predicates": [{"dimension": "queueId", "value": q} for q in queue_ids]},
                "metrics": list(metrics)}
        out: dict[str, dict[str, float]] = {q: {} for q in queue_ids}
        for result in self._post(QUEUE_OBSERVATIONS, body).get("results", []):
            queue = result.get("group", {}).get("queueId")
            for item in result.get("data", []):
                out.setdefault(queue, {})[item["metric"]] = item.get("stats", {}).get("count", 0)
        return out
