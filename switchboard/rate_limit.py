"""Distributed rate limits: GCRA schedules in Redis, shared by every worker on every machine.

Why hand-written: the well-kept Python limiters (``limits``, ``pyrate-limiter``) answer yes/no per
request; we need (1) a reservation ("your slot is in 3.2 s") so a dispatch is re-queued once with the
exact countdown instead of thousands of tasks polling, (2) a lane for critical traffic that bulk can
never starve, and (3) a rate that backs off on a vendor 429 and recovers (AIMD) — all in one atomic
script using Redis' clock, so workers with skewed clocks still agree.

GCRA in one paragraph: a schedule keeps the theoretical arrival time (TAT) of the next request. A
request's slot is ``max(now, TAT - burst)``; taking it moves TAT one interval (``cost / rate``) on.
Slots are therefore spaced at exactly the rate, with at most ``burst`` requests early. Non-critical
requests may reserve slots up to ``horizon`` seconds ahead; beyond that they are told to come back.
Critical requests also have their own small lane (``critical_share`` of the rate, the main lane running
at the rest) and take whichever slot comes first (peek both, take one), so a bulk backlog never delays
them and a critical flood still drains at the full rate. Optionally, the vendor's own window
(``max_in_window``: at most N sends in any W seconds, a sorted set of send times) is checked at the
moment of sending, so workers running slots late can never bunch above the vendor's limit.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import redis

from switchboard.lua import lua_function

# KEYS[1] schedule hash. ARGV: rate/s, burst (requests), cost, horizon ms, mode ("take" | "peek" | "penalize"),
# decrease factor, floor factor, recovery per second (added to the factor).
# Returns {reserved (1/0), wait ms, effective rate * 1000}.
_GCRA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local rate, burst, cost = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local horizon, mode = tonumber(ARGV[4]), ARGV[5]
local decrease, floor, recovery = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local s = redis.call('HMGET', KEYS[1], 'tat', 'factor', 'factor_at')
local tat = tonumber(s[1]) or now
local factor = tonumber(s[2]) or 1
local factor_at = tonumber(s[3]) or now
factor = math.min(1, factor + recovery * (now - factor_at) / 1000)
if mode == 'penalize' then
  factor = math.max(floor, factor * decrease)
  redis.call('HSET', KEYS[1], 'factor', factor, 'factor_at', now)
  return {0, 0, math.floor(rate * factor * 1000)}
end
local interval = cost * 1000 / (rate * factor)
if tat < now then tat = now end
local slot = math.max(now, tat - (burst - 1) * interval)
local wait = slot - now
if wait > horizon then
  return {0, math.ceil(wait - horizon), math.floor(rate * factor * 1000)}
end
if mode == 'peek' then
  return {1, math.ceil(wait), math.floor(rate * factor * 1000)}
end
redis.call('HSET', KEYS[1], 'tat', tat + interval, 'factor', factor, 'factor_at', now)
redis.call('PEXPIRE', KEYS[1], math.ceil(tat + interval - now) + 600000)
return {1, math.ceil(wait), math.floor(rate * factor * 1000)}
"""


# The vendor's own window, enforced at the moment of sending: KEYS[1] a sorted set of send times.
# ARGV: window ms, count, a unique member. Returns 0 (send now, recorded) or the ms to wait.
_WINDOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window, count = tonumber(ARGV[1]), tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) < count then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], window + 1000)
  return 0
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return math.max(1, math.ceil(tonumber(oldest[2]) + window - now))
"""


# A critical request: peek the main schedule (KEYS[1]) and the critical lane (KEYS[2]), take whichever slot
# comes first, in one script (one round trip, and no other worker can take the slot between peek and take).
# ARGV: main rate, lane rate, then ARGV[3..] as _GCRA's ARGV[2..] without the mode. Returns as _GCRA.
_CRITICAL = lua_function("gcra", _GCRA) + """
local function call(key, rate, mode)
  return gcra({key}, {rate, ARGV[3], ARGV[4], ARGV[5], mode, ARGV[6], ARGV[7], ARGV[8]})
end
local main = call(KEYS[1], ARGV[1], 'peek')
local lane = call(KEYS[2], ARGV[2], 'peek')
if main[1] == 1 and (lane[1] == 0 or main[2] <= lane[2]) then return call(KEYS[1], ARGV[1], 'take') end
if lane[1] == 1 then return call(KEYS[2], ARGV[2], 'take') end
return {0, math.min(main[2], lane[2]), main[3]}
"""


@dataclass(frozen=True)
class Slot:
    reserved: bool   # True: go at ``wait_s``; False: nothing reserved, ask again after ``wait_s``
    wait_s: float
    rate: float      # the effective rate of the schedule that answered (after 429 back-off)


class RateLimiter:
    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self.r = client
        self.prefix = f"{prefix}ratelimit:"
        self._script = client.register_script(_GCRA)
        self._window = client.register_script(_WINDOW)
        self._critical = client.register_script(_CRITICAL)

    def _call(self, key: str, cfg: dict[str, Any], rate: float, mode: str, horizon_s: float) -> Slot:
        reserved, wait_ms, rate_milli = self._script(keys=[self.prefix + key], args=[
            rate, cfg["burst"], 1, int(horizon_s * 1000), mode, cfg["backoff_factor"], cfg["min_factor"],
            cfg["recovery_per_s"]])
        return Slot(bool(reserved), wait_ms / 1000, rate_milli / 1000)

    def acquire(self, bucket: str, key: str, cfg: dict[str, Any], *, critical: bool = False) -> Slot:
        """Reserve the next slot of ``bucket`` for ``key`` (a routing key, an OAuth client, ...)."""
        share = cfg["critical_share"]
        main = f"{bucket}:{key}"
        if not critical or share <= 0:
            return self._call(main, cfg, cfg["rate"] * (1 - share), "take", cfg["horizon_s"])
        # Critical: whichever comes first, the main schedule's next slot or its own lane's (never behind bulk).
        keys = [self.prefix + main, f"{self.prefix}{main}:critical"]
        reserved, wait_ms, rate_milli = self._critical(keys=keys, args=[
            cfg["rate"] * (1 - share), cfg["rate"] * share, cfg["burst"], 1, int(cfg["horizon_s"] * 1000),
            cfg["backoff_factor"], cfg["min_factor"], cfg["recovery_per_s"]])
        return Slot(bool(reserved), wait_ms / 1000, rate_milli / 1000)

    def penalize(self, bucket: str, key: str, cfg: dict[str, Any]) -> float:
        """A vendor 429: slow both schedules down (multiplicative); they recover additively. Returns the rate."""
        share = cfg["critical_share"]
        if share > 0:
            self._call(f"{bucket}:{key}:critical", cfg, cfg["rate"] * share, "penalize", 0)
        return self._call(f"{bucket}:{key}", cfg, cfg["rate"] * (1 - share), "penalize", 0).rate

    def admit(self, bucket: str, key: str, cfg: dict[str, Any]) -> float:
        """At the moment of sending: 0 if the vendor's window (``max_in_window``) has room (the send is
        counted), else the seconds to wait. Slots are spaced right, but a worker that runs one late can
        bunch sends; this keeps even a bunch inside the vendor's limit."""
        cap = cfg.get("max_in_window")
        if not cap:
            return 0.0
        wait_ms = self._window(keys=[f"{self.prefix}{bucket}:{key}:window"],
                               args=[int(cap["window_s"] * 1000), cap["count"], uuid.uuid4().hex])
        return wait_ms / 1000
