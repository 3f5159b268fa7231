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
            alert: dict[str, Any] | None = None) -> str:
        fields = {
            "event_id": event_id,
            "target": target,
            "request": json.dumps(request, default=str),
            "alert": json.dumps(alert or {}, default=str),
            "attempts": attempts,
            "error": error[:2000],
            "at": time.time(),
        }
        return self.r.xadd(self.stream, fields, maxlen=self.maxlen, approximate=True)

    def list(self, count: int = 100) -> list[dict[str, Any]]:
        return [{"id": entry_id, **fields} for entry_id, fields in self.r.xrange(self.stream, count=count)]

    def depth(self) -> int:
        return int(self.r.xlen(self.stream))
