"""Ingress backpressure at the receiver: a per-source rate (429 + Retry-After) and a guard on the
ingest queue's depth (503 + Retry-After), so a flood is pushed back to the senders, who retry,
instead of growing the backlog without bound.

The rate uses the shared GCRA script (``switchboard.rate_limit``) with no reservation: a request
either fits now or is told how long to wait. The depth is read from the broker at most every
``depth_check_every_s`` per process, so the guard costs no broker round trip per request.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

from switchboard.rate_limit import RateLimiter

INGRESS_SHAPE = {"per": "bucket", "critical_share": 0.0, "horizon_s": 0.0, "backoff_factor": 0.5,
                 "min_factor": 1.0, "recovery_per_s": 1.0}


def check_ingress(limiter: RateLimiter, source: str, limit: int, per_seconds: int) -> int:
    """0 when the request may pass, else whole seconds to wait (the Retry-After)."""
    cfg = {**INGRESS_SHAPE, "rate": limit / per_seconds, "burst": max(1.0, float(limit))}
    slot = limiter.acquire("ingress", source, cfg)
    return 0 if slot.reserved else max(1, math.ceil(slot.wait_s))


class DepthGuard:
    """Is the ingest queue deeper than allowed? Reads the depth at most every ``every_s`` seconds."""

    def __init__(self, read_depth: Callable[[], int], max_depth: int, every_s: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.read_depth = read_depth
        self.max_depth = max_depth
        self.every_s = every_s
        self.clock = clock
        self._lock = threading.Lock()
        self._checked_at = -math.inf
        self._depth = 0

    def over(self) -> bool:
        if self.max_depth <= 0:
            return False
        # One request reads; the others meanwhile go by the last depth read rather than queue behind it (a
        # broker that is away can take seconds to refuse, and every request would wait that long in turn).
        if self._lock.acquire(blocking=False):
            try:
                if self.clock() - self._checked_at >= self.every_s:
                    self._checked_at = self.clock()
                    try:
                        self._depth = self.read_depth()
                    except Exception:  # noqa: BLE001 - unknown depth: let the publish itself decide (503 if down)
                        self._depth = 0
            finally:
                self._lock.release()
        return self._depth >= self.max_depth
