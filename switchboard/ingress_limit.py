"""Per-source ingress rate limit at the receiver (answered 429 with Retry-After).

A fixed window counter (INCR + EXPIRE) shared by every gunicorn worker through Redis; the shared
token-bucket script of the flow-control work can replace it without changing the receiver.
"""

from __future__ import annotations

import time

import redis

from switchboard.store import Keys


def check_ingress(client: redis.Redis, keys: Keys, source: str, limit: int, per_seconds: int,
                  now: float | None = None) -> int:
    """0 when the request may pass, else the seconds to wait before the window reopens."""
    now = time.time() if now is None else now
    window = int(now // per_seconds)
    key = keys.ingress(source, window)
    pipe = client.pipeline()
    pipe.incr(key)
    pipe.expire(key, per_seconds + 1)
    count = pipe.execute()[0]
    if count <= limit:
        return 0
    return max(1, int((window + 1) * per_seconds - now + 0.999))
