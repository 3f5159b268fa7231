"""The receiver's gate in one Redis round trip: the source's ingress rate, then (if the request is
admissible) the idempotency claim and the ledger's ``accepted`` record, atomically in one Lua script.

Why one script: these were three round trips per webhook (bench/: a third of a request's time was spent
waiting on Redis). The rate is still decided first, so the answers keep DESIGN.md's order: a request over
its source's rate is 429 whatever its body; the receiver parses and validates the body before calling
(pure CPU, no I/O) but passes ``admit=False`` for an invalid one, so nothing is claimed or recorded for it.
The pieces are the same scripts the rate limiter and the idempotency store run on their own
(``switchboard.rate_limit._GCRA``, ``switchboard.idempotency._CLAIM``), wrapped as Lua functions.

When the broker is the same Redis database, the receiver also hands the script the ingest message as kombu
would push it (tasks/redis_push.py), and an accepted event is pushed in the same script: accepted and enqueued
in one round trip, atomically.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import redis

from switchboard.idempotency import _CLAIM, IdempotencyKey
from switchboard.ingress_limit import INGRESS_SHAPE
from switchboard.lua import lua_function
from switchboard.rate_limit import _GCRA
from switchboard.store import Keys

# KEYS: ingress schedule, ledger hash, accepted counter, in-flight index, the broker's list to push onto (or
#       ""), idempotency keys...
# ARGV: rate, burst, decrease, floor, recovery, admit (1/0), event_id, source, received_at, idempotency json,
#       ledger ttl, body (kept until the outcome, so the stalled sweep can publish the event again), the
#       message to push (or ""), then one ttl per idempotency key.
# Returns {"limited", wait ms} | {"passed"} | {"duplicate", earlier event id} | {"accepted"}.
_GATE = lua_function("gcra", _GCRA) + lua_function("claim", _CLAIM) + """
if ARGV[13] ~= '' then
  -- checked before anything is written: a script's writes stay when a later command fails, and an event
  -- accepted but not pushed would be in no queue while its sender's retries are told "duplicate"
  local kind = redis.call('TYPE', KEYS[5]).ok
  if kind ~= 'list' and kind ~= 'none' then
    return redis.error_reply('broker queue ' .. KEYS[5] .. ' holds a ' .. kind .. ', not a list')
  end
end
local slot = gcra({KEYS[1]}, {ARGV[1], ARGV[2], 1, 0, 'take', ARGV[3], ARGV[4], ARGV[5]})
if slot[1] == 0 then return {'limited', slot[2]} end
if ARGV[6] ~= '1' then return {'passed'} end
local idem_keys, idem_args = {}, {ARGV[7]}
for i = 6, #KEYS do
  idem_keys[#idem_keys + 1] = KEYS[i]
  idem_args[#idem_args + 1] = ARGV[i + 8]
end
if #idem_keys > 0 then
  local earlier = claim(idem_keys, idem_args)
  if earlier then return {'duplicate', earlier} end
end
redis.call('HSET', KEYS[2], 'event_id', ARGV[7], 'source', ARGV[8], 'received_at', ARGV[9],
           'idempotency_keys', ARGV[10], 'body', ARGV[12])
redis.call('EXPIRE', KEYS[2], tonumber(ARGV[11]))
redis.call('INCR', KEYS[3])
redis.call('ZADD', KEYS[4], ARGV[9], ARGV[7])
if ARGV[13] ~= '' then redis.call('LPUSH', KEYS[5], ARGV[13]) end
return {'accepted'}
"""


@dataclass(frozen=True)
class PushEntry:
    """A message as the Redis broker's LPUSH would add it (built by tasks/redis_push.py)."""
    key: str      # the Redis list (the queue, or its priority list), with kombu's global key prefix if any
    payload: str  # the message as kombu's Redis transport serializes it


@dataclass(frozen=True)
class Verdict:
    kind: str              # "limited" | "passed" (not admitted: nothing claimed) | "duplicate" | "accepted"
    retry_after_s: int = 0  # limited: whole seconds to wait
    earlier: str = ""       # duplicate: the event id that holds the key


class Gate:
    def __init__(self, client: redis.Redis, keys: Keys, prefix: str, ledger_ttl_s: int) -> None:
        self.keys = keys
        self.schedule_prefix = f"{prefix}ratelimit:ingress:"  # the same schedule check_ingress uses
        self.ledger_ttl_s = ledger_ttl_s
        self._script = client.register_script(_GATE)

    def check(self, source: str, limit: int, per_seconds: int, *, admit: bool, event_id: str = "",
              received_at: float = 0.0, idempotency: list[IdempotencyKey] | None = None,
              body: bytes | str = b"", push: PushEntry | None = None) -> Verdict:
        """Take a slot of ``source``'s ingress rate; if ``admit``, claim the keys and record ``accepted`` (with
        ``body``, the validated JSON, and the event in the in-flight index), and push ``push`` if given: only
        when the broker is this client's Redis database."""
        idem = idempotency or []
        shape = INGRESS_SHAPE
        rate = limit / per_seconds
        keys = [self.schedule_prefix + source, self.keys.ledger(event_id or "-"), self.keys.counter("accepted"),
                self.keys.inflight, push.key if push else "", *(k.key for k in idem)]
        args = [rate, max(1.0, float(limit)), shape["backoff_factor"], shape["min_factor"], shape["recovery_per_s"],
                "1" if admit else "0", event_id, source, received_at, json.dumps([k.key for k in idem]),
                self.ledger_ttl_s, body if admit else b"", push.payload if push else "", *(k.ttl_s for k in idem)]
        answer = self._script(keys=keys, args=args)
        kind = answer[0].decode() if isinstance(answer[0], bytes) else answer[0]
        if kind == "limited":
            return Verdict(kind, retry_after_s=max(1, -(-int(answer[1]) // 1000)))
        if kind == "duplicate":
            earlier = answer[1].decode() if isinstance(answer[1], bytes) else answer[1]
            return Verdict(kind, earlier=earlier)
        return Verdict(kind)
