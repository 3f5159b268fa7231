"""Test helpers for posting signed samples and reading the vendor sandbox's records over HTTP."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import requests

from switchboard.config import load_config
from switchboard.sender import post_signed
from switchboard.settings import load_settings
from switchboard.waiting import wait_for
from tests.helpers import ROOT, SECRETS

SAMPLES = ROOT / "samples"
SECRET_ENV = {"genesys": "SWITCHBOARD_SECRET_GENESYS", "cxone": "SWITCHBOARD_SECRET_CXONE",
              "ztp": "SWITCHBOARD_SECRET_ZTP", "iot": "SWITCHBOARD_SECRET_IOT", "generic": "SWITCHBOARD_SECRET_GENERIC"}


def sample(name: str, **changes: Any) -> dict[str, Any]:
    data = json.loads((SAMPLES / name).read_text())
    data.update(changes)
    return data


def unique_ztp(name: str = "ztp-validation-failed.json", **changes: Any) -> dict[str, Any]:
    """A ZTP sample with a fresh ztp_event_id / MAC, so its payload idempotency key is new."""
    n = uuid.uuid4().int
    mac = ":".join(f"{(n >> (8 * i)) & 0xFF:02X}" for i in range(6))
    return sample(name, ztp_event_id=f"evt_{uuid.uuid4().hex[:20]}", device_mac=mac, **changes)


def unique_iot(**changes: Any) -> dict[str, Any]:
    return sample("iot-temp-critical.json", idempotencyKey=f"sensor-evt-{uuid.uuid4().hex}", **changes)


def send(ctx: dict, source: str, payload: dict[str, Any] | bytes, *,
         request_id: str | None = None) -> requests.Response:
    """Sign and post to ``ctx["url"]`` with ``ctx["env"]``'s config and secrets; the answer, whatever it is. The
    same ``request_id`` is the same delivery (a sender's retry)."""
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    config = load_config(Path(ctx["env"].get("SWITCHBOARD_CONFIG_DIR") or load_settings(ctx["env"]).config_dir))
    secret = SECRETS[SECRET_ENV[source]].split(",")[0]
    rid = request_id or uuid.uuid4().hex
    return post_signed(ctx["url"], source, config.sources[source], body, secret, request_id=rid, msg_id=f"msg_{rid}")


def post(ctx: dict, source: str, payload: dict[str, Any] | bytes, *, request_id: str | None = None) -> str:
    """Sign and post; assert 202; return the event id."""
    r = send(ctx, source, payload, request_id=request_id)
    assert r.status_code == 202, r.text
    return r.json()["event_id"]


def wait_outcome(ctx: dict, event_id: str, timeout: float = 30) -> dict:
    ledger = ctx["server"].state.ledger
    return wait_for(lambda: (t := ledger.trace(event_id)) and t["outcome"] and t, timeout, 0.05,
                    f"outcome of {event_id}")


class Sandbox:
    """The sandbox's control API, for arranging faults and reading what the vendors received."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")

    def get(self, route: str, **params: Any) -> Any:
        r = requests.get(self.url + route, params=params, timeout=10)
        r.raise_for_status()
        return r.json()

    def send(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        r = requests.request(method, self.url + path, json=body, timeout=10)
        r.raise_for_status()
        return r.json() if r.content else None

    def faults(self, vendor: str, **spec: Any) -> None:
        self.send("POST", f"/_sandbox/faults/{vendor}", spec)

    def requests(self, path: str | None = None, *, rejected: bool = False) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"path": path} if path else {}
        if rejected:
            params["all"] = "1"
        return self.get("/_sandbox/requests", **params)

    def workitems(self, **match: Any) -> list[dict[str, Any]]:
        items = self.get("/_sandbox/genesys/workitems")
        items = items.get("workitems", items) if isinstance(items, dict) else items
        return [w for w in items if all(w.get(k) == v for k, v in match.items())]

    def oauth(self, vendor: str) -> dict[str, Any]:
        return self.get(f"/_sandbox/oauth/{vendor}")
