"""Who may call the vendor for one (event, target): a lease on the dispatch state in Redis.

The state is ``done`` once the vendor acted, or ``inflight:<attempt>:<until>:<token>`` while one run of the
dispatch task is calling it. ``until`` is when that call has certainly ended (its timeouts, see
``lease_seconds``); a run that ends without an answer (a timeout) sets it to 0 at once.

Why: a broker may deliver one message twice at the same time (Redis, after the visibility timeout while
the first copy is still running; any broker, after a lost connection). Both copies once sent, and the
vendor created two work items (issue 9). Now the second copy waits while the lease is live: it then finds
``done``, or an expired lease, which means the holder died and the target's ``on_uncertain`` policy
applies (verify, resend or dead-letter). Taking the lease is a compare-and-set, so of two copies that
find the same state only one calls.

``decide`` and ``lease_seconds`` are pure; ``DispatchLease`` is the Redis side.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import redis

DONE, INFLIGHT = "done", "inflight"

# SET the state to ARGV[1] (expiring in ARGV[3] s) if it is still ARGV[2] ('' = absent). 1 if taken.
_CLAIM = """
local current = redis.call('GET', KEYS[1])
if ARGV[2] == '' then
  if current then return 0 end
elseif current ~= ARGV[2] then
  return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', tonumber(ARGV[3]))
return 1
"""


@dataclass(frozen=True)
class Turn:
    """What a run should do: ``send`` (nobody called yet), ``uncertain`` (an earlier call ended or died
    without an answer: apply on_uncertain), ``done`` (the vendor acted), or ``wait`` ``wait_s`` more
    seconds (another run is calling now)."""

    kind: str
    wait_s: float = 0.0


def decide(state: str | None, now: float) -> Turn:
    if state is None:
        return Turn("send")
    if state == DONE:
        return Turn("done")
    parts = state.split(":")
    if parts[0] != INFLIGHT:
        return Turn("uncertain")  # unknown: never assume nobody called
    until = float(parts[2]) if len(parts) > 2 else 0.0  # "inflight:<attempt>" (before leases): ended
    return Turn("wait", until - now) if until > now else Turn("uncertain")


def lease_seconds(timeout: dict[str, Any]) -> float:
    """How long one run may spend in the vendor: a token fetch and the call, each within its timeouts."""
    return 2 * (float(timeout["connect_s"]) + float(timeout["read_s"])) + 1.0


def held(attempt: int, until: float) -> str:
    return f"{INFLIGHT}:{attempt}:{until:.3f}:{uuid.uuid4().hex[:12]}"


def ended(value: str) -> str:
    """The same lease, over now: the run's call ended without an answer (a timeout)."""
    parts = value.split(":")
    return ":".join([parts[0], parts[1], "0", *parts[3:]])


class DispatchLease:
    def __init__(self, client: redis.Redis) -> None:
        self.r = client
        self._claim = client.register_script(_CLAIM)

    def take(self, key: str, expected: str | None, value: str, ttl_s: int) -> bool:
        """Set the state to ``value`` if it is still ``expected`` (None: absent); False if another run moved it."""
        return bool(self._claim(keys=[key], args=[value, expected or "", ttl_s]))

    def release_uncertain(self, key: str, value: str, ttl_s: int) -> None:
        """Our call ended without an answer: keep it marked uncertain, but let the next attempt go at once."""
        self.take(key, value, ended(value), ttl_s)
