"""The dead-letter stream: dispatches that could not be delivered, with enough to replay them.

One mechanism for both brokers (a Redis stream written by us) because on Redis ``reject(requeue=False)``
just drops the message (DESIGN.md); entries hold the event, target, request, attempts and last error.
"""

from __future__ import annotations

import json
import time
from typing import Any

import redis

from switchboard.store import Keys


class DeadLetters:
    def __init__(self, client: redis.Redis, keys: Keys, maxlen: int = 100_000) -> None:
        self.r = client
        self.stream = keys.dead_letters
        self.maxlen = maxlen

    def add(self, *, event_id: str, target: str, request: dict[str, Any], attempts: int, error: str,
            alert: dict[str, Any] | None = None, route: dict[str, Any] | None = None) -> str:
        fields = {
            "event_id": event_id,
            "target": target,
            "request": json.dumps(request, default=str),
            "alert": json.dumps(alert or {}, default=str),
            "route": json.dumps(route or {}),
            "attempts": attempts,
            "error": error[:2000],
            "at": time.time(),
        }
        return self.r.xadd(self.stream, fields, maxlen=self.maxlen, approximate=True)

    def list(self, count: int = 100, target: str | None = None) -> list[dict[str, Any]]:
        """The oldest ``count`` entries (of ``target`` only, if given), decoded."""
        out: list[dict[str, Any]] = []
        start = "-"
        while len(out) < count:
            batch = self.r.xrange(self.stream, min=start, count=500)
            for entry_id, fields in batch:
                if target is None or fields.get("target") == target:
                    out.append(_decode(entry_id, fields))
            if len(batch) < 500:
                break
            start = "(" + batch[-1][0]
        return out[:count]

    def get(self, entry_id: str) -> dict[str, Any] | None:
        found = self.r.xrange(self.stream, min=entry_id, max=entry_id)
        return _decode(*found[0]) if found else None

    def delete(self, entry_id: str) -> bool:
        return bool(self.r.xdel(self.stream, entry_id))

    def purge(self) -> int:
        depth = self.depth()
        self.r.delete(self.stream)
        return depth

    def depth(self) -> int:
        return int(self.r.xlen(self.stream))


def _decode(entry_id: str, fields: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {"id": entry_id, **fields}
    for key in ("request", "alert", "route"):
        if key in out:
            out[key] = json.loads(out[key])
    out["attempts"] = int(out.get("attempts", 0))
    out["at"] = float(out.get("at", 0))
    return out
