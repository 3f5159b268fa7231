"""The config-audit record in Redis: entities enrichment could not map, with their problem, source and
when they were last seen (``switchboard status`` lists them), and the once-per-period notification claim.

Keys (under the prefix): ``audit:entities`` a sorted set of entity ids scored by last-seen time, and one
hash per entity ``audit:entity:<id>`` (problem, source, business unit, count, first/last seen). The set is
bounded (newest ``MAX_ENTITIES``) and entries unseen for ``KEEP_S`` fall out, so a flood of made-up entity
ids cannot grow it without end.
"""

from __future__ import annotations

from typing import Any

import redis

KEEP_S = 30 * 86400
MAX_ENTITIES = 1000


class ConfigAudit:
    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self.redis = client
        self.index = f"{prefix}audit:entities"
        self.entity_prefix = f"{prefix}audit:entity:"
        self.notified_prefix = f"{prefix}audit:notified:"

    def record(self, entity_id: str, *, problem: str, source: str, now: float,
               business_unit: str | None = None) -> None:
        key = self.entity_prefix + entity_id
        pipe = self.redis.pipeline()
        pipe.zadd(self.index, {entity_id: now})
        pipe.zremrangebyscore(self.index, "-inf", now - KEEP_S)
        pipe.zremrangebyrank(self.index, 0, -MAX_ENTITIES - 1)
        pipe.hsetnx(key, "first_seen", now)
        pipe.hset(key, mapping={"problem": problem, "source": source, "last_seen": now,
                                "business_unit": business_unit or ""})
        pipe.hincrby(key, "count", 1)
        pipe.expire(key, KEEP_S)
        pipe.execute()

    def list(self, limit: int = 50) -> list[dict[str, Any]]:
        """Most recently seen first."""
        ids = self.redis.zrevrange(self.index, 0, limit - 1)
        pipe = self.redis.pipeline()
        for entity_id in ids:
            pipe.hgetall(self.entity_prefix + entity_id)
        out = []
        for entity_id, info in zip(ids, pipe.execute(), strict=True):
            if not info:  # its hash expired or was cut: the index entry is stale
                continue
            out.append({"entity_id": entity_id, "problem": info["problem"], "source": info["source"],
                        "business_unit": info.get("business_unit") or None, "count": int(info["count"]),
                        "first_seen": float(info["first_seen"]), "last_seen": float(info["last_seen"])})
        return out

    def count(self) -> int:
        return int(self.redis.zcard(self.index))

    def claim_notification(self, entity_id: str, every_s: int) -> bool:
        """True for the first caller per entity per ``every_s`` (0: never): that one tells a human."""
        if every_s <= 0:
            return False
        return bool(self.redis.set(self.notified_prefix + entity_id, "1", nx=True, ex=every_s))
