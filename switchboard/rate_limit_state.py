"""What the rate-limit schedules look like right now: configured and effective rate (after 429 back-off),
back-off factor and how far ahead slots are booked. Read by ``switchboard status`` and the /metrics gauges.

Pure arithmetic in ``schedule_state`` (the same recovery rule as the GCRA script in
``switchboard.rate_limit``); ``read_schedules`` only scans the schedules' hashes in Redis.
"""

from __future__ import annotations

from typing import Any

import redis


def schedule_state(name: str, fields: dict[str, str], limits: dict[str, dict[str, Any]], now_ms: float
                   ) -> dict[str, Any] | None:
    """One schedule (``<limit>:<key>`` or ``<limit>:<key>:critical``) as seen at ``now_ms``; None if its
    limit is no longer configured."""
    limit, _, rest = name.partition(":")
    cfg = limits.get(limit)
    if cfg is None or not rest:
        return None
    lane = "critical" if rest.endswith(":critical") else "main"
    key = rest.removesuffix(":critical")
    share = cfg["critical_share"]
    configured = cfg["rate"] * (share if lane == "critical" else 1 - share)
    factor = float(fields.get("factor") or 1.0)
    factor_at = float(fields.get("factor_at") or now_ms)
    factor = min(1.0, factor + cfg["recovery_per_s"] * max(0.0, now_ms - factor_at) / 1000)
    tat = float(fields.get("tat") or now_ms)
    return {"limit": limit, "key": key, "lane": lane, "configured_rate": round(configured, 4),
            "factor": round(factor, 4), "effective_rate": round(configured * factor, 4),
            "booked_ahead_s": round(max(0.0, tat - now_ms) / 1000, 3)}


def read_schedules(client: redis.Redis, prefix: str, limits: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Every live schedule under ``prefix`` (schedules expire 10 minutes after their last booked slot)."""
    seconds, micros = client.time()
    now_ms = seconds * 1000 + micros / 1000
    base = f"{prefix}ratelimit:"
    names = sorted(k for k in client.scan_iter(f"{base}*", count=1000) if not k.endswith(":window"))
    pipe = client.pipeline()
    for name in names:
        pipe.hgetall(name)
    out = []
    for name, fields in zip(names, pipe.execute(), strict=True):
        state = schedule_state(name[len(base):], fields, limits, now_ms) if fields else None
        if state is not None:
            out.append(state)
    return out
