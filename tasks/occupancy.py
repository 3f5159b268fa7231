"""Occupancy of a Genesys queue at dispatch time, for a route's overflow: the queue observation query,
cached in Redis for ``genesys.occupancy_cache_s`` and shared by every worker.

A burst of 1,000 dispatches makes one analytics query per queue per period: the first worker to find the
cache empty takes a short lock and asks Genesys (through the target's rate limit, like any Genesys call);
the others wait briefly for its answer. A failed query is cached too (as unknown), so an analytics
outage costs one query per period, not one per dispatch. The decision itself is ``switchboard.overflow``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import redis
from prometheus_client import Counter

from clients.http import VendorError
from switchboard.overflow import OCCUPANCY_METRICS, QueueChoice, occupancy
from switchboard.waiting import Timeout, wait_for
from tasks.runtime import Runtime

log = logging.getLogger("switchboard.overflow")
UNKNOWN = "unknown"
LOCK_S = 15          # longer than a query can take (connect + read timeouts), so a dead holder frees it
WAIT_FOR_PEER_S = 2  # how long a dispatch waits for the worker that is asking Genesys
MAX_SLOT_WAIT_S = 1  # a rate-limit slot further away than this: do without the statistics this time
OVERFLOW_DECISIONS = Counter("switchboard_overflow_decisions", "Work items with an overflow option, by primary "
                             "queue and decision (unknown: occupancy unreadable, primary kept)",
                             ["queue", "decision"])


def cache_key(prefix: str, queue_id: str) -> str:
    return f"{prefix}occupancy:{queue_id}"


def cached_occupancy(client: redis.Redis, key: str, fetch: Callable[[], float], cache_s: float) -> float | None:
    """The cached occupancy, else ``fetch()``'s (cached for ``cache_s``); None when it cannot be known."""
    cached = client.get(key)
    if cached is not None:
        return None if cached == UNKNOWN else float(cached)
    if client.set(f"{key}:lock", "1", nx=True, ex=LOCK_S):
        cached = client.get(key)  # a peer may have stored it and let go of the lock since our first look
        if cached is not None:
            client.delete(f"{key}:lock")
            return None if cached == UNKNOWN else float(cached)
        try:
            value: float | None = fetch()
        except VendorError as exc:
            log.warning("queue occupancy unavailable: %s", exc)
            value = None
        client.set(key, UNKNOWN if value is None else repr(value), px=max(1, int(cache_s * 1000)))
        client.delete(f"{key}:lock")
        return value
    try:
        answer = wait_for(lambda: client.get(key), WAIT_FOR_PEER_S, 0.02, "the occupancy another worker is reading")
    except Timeout:
        return None
    return None if answer == UNKNOWN else float(answer)


def queue_occupancy(rt: Runtime, target: str, queue: str) -> float | None:
    """Occupancy of the Genesys queue named ``queue`` (a key of ``genesys.queues``), or None if unknown."""
    genesys = rt.config.vendors["genesys"]
    queue_id = genesys["queues"][queue]

    def fetch() -> float:
        _take_slot(rt, target)
        observations = rt.vendors.genesys(target).queue_observations([queue_id], OCCUPANCY_METRICS)
        return occupancy(observations.get(queue_id) or {})

    return cached_occupancy(rt.redis, cache_key(rt.keys.prefix, queue_id), fetch, genesys["occupancy_cache_s"])


def _take_slot(rt: Runtime, target: str) -> None:
    """The query is a Genesys API call like any other: it takes a slot of the target's rate limit."""
    name = rt.config.targets[target].get("rate_limit")
    if not name:
        return
    cfg = rt.config.vendors["rate_limits"][name]
    slot = rt.rate_limiter.acquire(name, "all", cfg)
    if not slot.reserved or slot.wait_s > MAX_SLOT_WAIT_S:
        raise VendorError(f"rate limit {name}: no slot for the queue observation query within {MAX_SLOT_WAIT_S}s",
                          retryable=True)
    if slot.wait_s > 0:
        time.sleep(slot.wait_s)  # a reserved slot less than a second away: waiting is cheaper than not knowing
    if rt.rate_limiter.admit(name, "all", cfg) > 0:
        raise VendorError(f"rate limit {name}: the vendor's window is full", retryable=True)


def record(rt: Runtime, choice: QueueChoice, primary: str) -> None:
    """Count the decision: Prometheus by decision, and unknowns also in Redis (``count:occupancy_unknown:<queue>``)."""
    OVERFLOW_DECISIONS.labels(primary, choice.decision).inc()
    if choice.decision == "unknown":
        rt.redis.incr(rt.keys.counter(f"occupancy_unknown:{primary}"))
