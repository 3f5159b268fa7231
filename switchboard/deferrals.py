"""The deferral store: events held until a time (maintenance windows), in a Redis sorted set scored by
release time, drained by a beat task (``tasks.deferral``).

Not Celery countdowns: on Redis a long ETA is redelivered after the visibility timeout and on RabbitMQ
it hits the consumer timeout (DESIGN.md). Releasing is a claim (due entries move to a lease set in one
Lua call, so two drainers never take the same entry) followed by ``done``; a drainer that dies between
the two leaves a lease that expires and is claimed again, so nothing held is ever forgotten.
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from typing import Any

import redis

# Move up to ARGV[3] due entries (and entries whose lease expired) to the lease set; return their ids.
_CLAIM = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])
local stale = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])
for _, id in ipairs(stale) do table.insert(ids, id) end
for _, id in ipairs(ids) do
  redis.call('ZREM', KEYS[1], id)
  redis.call('ZADD', KEYS[2], ARGV[2], id)
end
return ids
"""

# Finish a release: drop the lease; drop the entry unless the event was held again meanwhile.
_DONE = """
redis.call('ZREM', KEYS[2], ARGV[1])
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  redis.call('HDEL', KEYS[3], ARGV[1])
end
return 1
"""


class Deferrals:
    def __init__(self, client: redis.Redis, prefix: str, max_hold_s: int = 7 * 86400) -> None:
        self.r = client
        self.due = f"{prefix}deferred"
        self.leases = f"{prefix}deferred:releasing"
        self.entries = f"{prefix}deferred:entries"
        self.status_prefix = f"{prefix}held-status:"
        self.max_hold_s = max_hold_s
        self._claim = client.register_script(_CLAIM)
        self._done = client.register_script(_DONE)

    def hold(self, event_id: str, *, stage: str, data: dict[str, Any], release_at: float, reason: str) -> float:
        """Hold ``data`` (the input of ``stage``) until ``release_at`` (at most ``max_hold_s``); returns it."""
        now = time.time()
        release_at = min(release_at, now + self.max_hold_s)
        entry = {"event_id": event_id, "stage": stage, "data": data, "release_at": release_at, "reason": reason,
                 "held_at": now}
        pipe = self.r.pipeline()
        pipe.hset(self.entries, event_id, json.dumps(entry, default=str))
        pipe.zadd(self.due, {event_id: release_at})
        if data.get("alert_key") and data.get("timestamp"):
            self._note_status(pipe, data["alert_key"], data.get("status", ""), epoch(data["timestamp"]))
        pipe.execute()
        return release_at

    def claim_due(self, now: float, *, lease_s: float = 60.0, limit: int = 200) -> list[dict[str, Any]]:
        ids = self._claim(keys=[self.due, self.leases], args=[now, now + lease_s, limit])
        if not ids:
            return []
        raw = self.r.hmget(self.entries, ids)
        return [json.loads(r) for r in raw if r]

    def done(self, event_id: str) -> None:
        self._done(keys=[self.due, self.leases, self.entries], args=[event_id])

    def list(self) -> list[dict[str, Any]]:
        """Everything held, soonest release first (entries being released now included)."""
        entries = [json.loads(v) for v in self.r.hvals(self.entries)]
        return sorted(entries, key=lambda e: e["release_at"])

    def depth(self) -> int:
        return int(self.r.zcard(self.due)) + int(self.r.zcard(self.leases))

    def _note_status(self, pipe: Any, alert_key: str, status: str, timestamp: float) -> None:
        # Keep the newest status seen for the key while held: a firing alert resolved meanwhile is suppressed.
        key = self.status_prefix + alert_key
        pipe.eval("""
local current = redis.call('HGET', KEYS[1], 'timestamp')
if not current or tonumber(current) < tonumber(ARGV[2]) then
  redis.call('HSET', KEYS[1], 'status', ARGV[1], 'timestamp', ARGV[2])
end
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 1
""", 1, key, status, timestamp, self.max_hold_s + 86400)

    def resolved_after(self, alert_key: str, timestamp: str) -> bool:
        """True if an event held for the same alert resolved it after ``timestamp``."""
        latest = self.r.hgetall(self.status_prefix + alert_key)
        return latest.get("status") == "resolved" and float(latest["timestamp"]) > epoch(timestamp)


def epoch(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()
