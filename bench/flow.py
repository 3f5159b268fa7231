"""Flow control: how close to a vendor's limit a backlog drains, and whether the vendor ever says 429.

The sandbox's PagerDuty allows ``limit`` requests per second per routing key (sliding 1 s window); our
``pagerduty_events`` schedule is configured at that same limit (its window checked at each send). A
backlog of events is routed first (ingest pool only), then two dispatch pools of two processes each (as
two hosts would run them) drain it. Drain rate = accepted requests after warm-up / their time span.
"""

from __future__ import annotations

from typing import Any

from bench.context import BenchContext
from bench.phases import DISPATCH, prefill
from bench.scenario import flow_limit
from bench.stack import start_worker
from switchboard.waiting import wait_for

WARM_UP_S = 2.0
DISPATCH_QUEUES = "dispatch.critical,dispatch.default,dispatch.bulk"


def flow_control(ctx: BenchContext, limit: int = 50) -> dict[str, Any]:
    n = 60 if ctx.quick else 1000
    env = ctx.env(pd_limit=flow_limit(limit))
    ctx.purge()
    ctx.reset_sandbox({"limit": limit, "window_s": 1})
    prefill(ctx, env, n)
    with start_worker("ingest", env, ctx.log_dir, "flow-ingest"):
        wait_for(lambda: ctx.depths((DISPATCH,))[DISPATCH] >= n or None, 120, 0.2, "the backlog routed")
    with start_worker(DISPATCH_QUEUES, env, ctx.log_dir, "flow-dispatch-a"), \
            start_worker(DISPATCH_QUEUES, env, ctx.log_dir, "flow-dispatch-b"):
        ctx.wait_dispatched(env, n, 60 + 3 * n / limit)
    calls = ctx.arrivals()
    accepted = sorted(c["at"] for c in calls if c["status"] == 202)
    start, warm_up = accepted[0], 0.2 if ctx.quick else WARM_UP_S
    warm = [t for t in accepted if t >= start + warm_up]
    rejected = [c["at"] for c in calls if c["status"] == 429]
    rate = (len(warm) - 1) / max(1e-6, warm[-1] - warm[0]) if len(warm) > 1 else 0.0
    return {"events": n, "vendor_limit_per_s": limit, "drain_per_s": round(rate, 2),
            "drain_fraction": round(rate / limit, 3), "answers_429": len(rejected),
            "answers_429_after_warm_up": sum(1 for t in rejected if t >= start + warm_up),
            "max_in_any_second": max_in_any_second([c["at"] for c in calls])}


def max_in_any_second(times: list[float]) -> int:
    times = sorted(times)
    best, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= 1.0:
            start += 1
        best = max(best, end - start + 1)
    return best
