"""Memory: resident set of every pool child and gunicorn worker across 100,000 events (no growth; see
``FULL_EVENTS`` for the second broker).

The whole path runs (receiver, ingest and dispatch pools, null vendor). Events are posted in batches,
each waiting for the previous to be dispatched, so the backlog (and the broker's memory) stays bounded.
RSS is read after a warm-up (``WARM_UP_EVENTS``) and at the end; growth is the largest relative change
of any one process across the events after the warm-up (at least one batch, whatever the time budget).
The sandbox forgets its records between batches (they are not ours to measure).
"""

from __future__ import annotations

import time
from typing import Any

from bench.context import BenchContext
from bench.load import closed_loop
from bench.phases import DISPATCH
from bench.scenario import trunk_down_requests
from bench.stack import Proc, rss_kb, start_gunicorn, start_worker


def _snapshot(procs: dict[str, Proc]) -> dict[str, dict[int, dict[str, int]]]:
    return {role: {pid: rss_kb(pid) for pid in proc.children()} for role, proc in procs.items()}


# 100,000 events through the whole service take ~10 minutes on this 2-core machine; twice, with every other
# phase, would not fit the bench's 20 minutes, so the second broker runs a shorter soak (the table says so).
FULL_EVENTS = {"redis": 100_000, "rabbitmq": 10_000}
# Caches, connection pools and allocator arenas fill within the first few hundred events; a short warm-up
# leaves most of a time-bounded soak to measure growth over (at 10% of 100,000, a slow machine's budget
# could end at the warm-up itself, measuring nothing).
WARM_UP_EVENTS = 2000
BATCH = 2000


def memory(ctx: BenchContext, events: int | None = None, deadline: float | None = None) -> dict[str, Any]:
    """RSS across ``events``; with a ``deadline`` (the bench's time budget) no batch starts that would end after
    it, so a loaded machine soaks fewer events (reported as ``events`` beside ``target_events``)."""
    total = events or (400 if ctx.quick else FULL_EVENTS[ctx.broker])
    warm_up = min(WARM_UP_EVENTS, total // 10)
    batch = min(BATCH, max(100, total // 10))
    env = ctx.env()
    ctx.purge()
    ctx.reset_sandbox()
    gunicorn, port = start_gunicorn("webhook_app.wsgi:app", env, ctx.log_dir, "gunicorn-memory")
    with gunicorn, start_worker("ingest", env, ctx.log_dir, "memory-ingest") as ingest, \
            start_worker(DISPATCH, env, ctx.log_dir, "memory-dispatch") as dispatch:
        procs = {"gunicorn_worker": gunicorn, "ingest_worker": ingest, "dispatch_worker": dispatch}
        sent, warm, warm_sent, batch_s = 0, None, 0, 0.0
        # Each role's largest RSS after every batch: a plateau and a slow slope can end at the same growth.
        series: dict[str, list[list[float]]] = {role: [] for role in procs}
        while sent < total:
            if deadline is not None and warm is not None and sent > warm_sent and time.time() + batch_s > deadline:
                break
            batch_started = time.time()
            count = min(batch, total - sent)
            result = closed_loop(port, trunk_down_requests(env, count), concurrency=8)
            assert result.statuses() == {202: count}, result.statuses()
            sent += count
            ctx.wait_dispatched(env, sent, 120 + count / 10)
            ctx.sandbox("DELETE", "/_sandbox/requests")
            ctx.sandbox("POST", "/_sandbox/ratelimit/pagerduty", {"limit": 10_000_000, "window_s": 1})
            snapshot = _snapshot(procs)
            for role, per_pid in snapshot.items():
                series[role].append([sent, _largest_mb(per_pid)])
            if warm is None and sent >= warm_up:
                warm, warm_sent = snapshot, sent
            batch_s = time.time() - batch_started
        end = snapshot  # the last batch's: nothing ran since
    out: dict[str, Any] = {"events": sent, "target_events": total, "after_warm_up_events": warm_sent,
                           "measured_events": sent - warm_sent}
    growth = 0.0
    for role in procs:
        before, after = warm[role], end[role]
        changes = [(after[p]["rss_kb"] - before[p]["rss_kb"]) / before[p]["rss_kb"] for p in after if p in before]
        role_growth = max(changes, key=abs) if changes else 0.0
        growth = max(growth, role_growth, key=abs)
        out[role] = {"processes": len(after), "rss_mb_after_warm_up": _largest_mb(before),
                     "rss_mb_end": _largest_mb(after),
                     "peak_rss_mb": _largest_mb(after, "peak_kb"),
                     "growth": round(role_growth, 4), "rss_mb_after_batches": series[role]}
    out["rss_growth"] = round(growth, 4)
    return out


def _largest_mb(per_pid: dict[int, dict[str, int]], field: str = "rss_kb") -> float:
    """The largest ``field`` among a role's processes, in MB."""
    return round(max(v[field] for v in per_pid.values()) / 1024, 1)
