"""Idempotency keys at the receiver: claim all of an event's keys atomically, release on failed publish.

DESIGN.md's trap: a key recorded before a publish that then fails would turn the sender's retry into
a "duplicate" and lose the event. So a claim stores the new event id under every key (only if none
exists), and a failed publish deletes exactly the keys that still hold that event id, in the same step
that un-accepts the event (``Ledger.unaccept``).
"""

from __future__ import annotations

from dataclasses import dataclass

import redis

# Lua because the check of every key and the set of every key must be one atomic step; redis-py has
# no multi-key SET NX with per-key TTLs.
_CLAIM = """
for i, key in ipairs(KEYS) do
  local existing = redis.call('GET', key)
  if existing then return existing end
end
for i, key in ipairs(KEYS) do
  redis.call('SET', key, ARGV[1], 'EX', tonumber(ARGV[i + 1]))
end
return false
"""


@dataclass(frozen=True)
class IdempotencyKey:
    key: str
    ttl_s: int


class IdempotencyStore:
    def __init__(self, client: redis.Redis) -> None:
        self._claim = client.register_script(_CLAIM)

    def claim(self, keys: list[IdempotencyKey], event_id: str) -> str | None:
        """Claim every key for ``event_id``; return the earlier event id if any key was taken."""
        if not keys:
            return None
        existing = self._claim(keys=[k.key for k in keys], args=[event_id] + [k.ttl_s for k in keys])
        return existing or None
