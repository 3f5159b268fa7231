"""Full payloads stored by reference when a vendor's context limit would otherwise cut them
(``payload_ref``); the receiver's ``GET /payloads/<ref>`` reads them back."""

from __future__ import annotations

import json
from typing import Any

import redis


class PayloadStore:
    def __init__(self, client: redis.Redis, prefix: str, ttl_s: int) -> None:
        self.r = client
        self.prefix = f"{prefix}payload:"
        self.ttl_s = ttl_s

    def put(self, ref: str, payload: dict[str, Any]) -> None:
        self.r.set(self.prefix + ref, json.dumps(payload, default=str), ex=self.ttl_s)

    def get(self, ref: str) -> dict[str, Any] | None:
        raw = self.r.get(self.prefix + ref)
        return json.loads(raw) if raw else None
