"""Ingress and pipeline phases, each beside its baseline measured on the same broker and settings.

- ingress: the receiver (signed, validated, deduplicated, published) vs a bare Flask 202 app, both under
  the Procfile's gunicorn settings, closed loop, in alternating rounds; no worker consumes meanwhile.
- pipeline: events drained end to end (every stage, then the null vendor) vs Celery no-op tasks drained
  by the same two pools (ingest + dispatch.critical, prefork, 2 processes each). Both start from a
  backlog built while the running pools were told not to consume (Celery remote control), and are timed
  from the moment they are told to resume to the last vendor arrival (the queue empty, for no-ops).
- latency: 202 -> vendor arrival at 25/50/90% of the saturation rate (open loop). Saturation here is what the
  whole service sustains with the receiver sharing the machine (measured first in the same phase): the
  drain rate above has the receiver idle, and on 2 cores 90% of it would be past what the service keeps up with.
"""

from __future__ import annotations

import json
import statistics
import time
from contextlib import ExitStack
from typing import Any

from bench.context import BenchContext
from bench.cpu import cpu_ms_per_item, snapshot
from bench.floor_app import clean_up
from bench.load import closed_loop, open_loop, percentile
from bench.scenario import trunk_down_requests
from bench.stack import pause, resume, start_gunicorn, start_worker

DISPATCH = "dispatch.critical"  # where trunk-down pages go


def ingress_rounds(ctx: BenchContext) -> int:
    return 2 if ctx.quick else 5


def counts(ctx: BenchContext) -> dict[str, int]:
    if ctx.quick:
        return {"ingress": 200, "noop": 300, "fused": 150, "chain": 60, "latency_s": 1}
    return {"ingress": 8000, "noop": 8000, "fused": 3000, "chain": 1500, "latency_s": 12}


def _latency_ms(replies: list[Any]) -> dict[str, float]:
    values = [r.latency_s * 1000 for r in replies]
    return {"p50_ms": round(percentile(values, 0.5), 2), "p99_ms": round(percentile(values, 0.99), 2)}


def ingress(ctx: BenchContext) -> dict[str, Any]:
    """Both apps up at once, measured in alternating rounds (bare, receiver, bare, ...): this machine's speed
    drifts within minutes (the load generator's own CPU per request moved 0.51 -> 0.77 ms between the two legs
    of one run), so a ratio of two legs run one after the other measured the drift as much as the receiver.
    Each receiver round is divided by the bare round just before it and the ratios' median is the figure, as
    for the pipeline's rounds; requests/s, latencies and CPU are also given over all of each app's rounds.
    Each round then runs the floor (``bench/floor_app.py``: the four duties at their cheapest), whose ratios to
    the round's bare figures are given the same way: how much of the gap to bare Flask the duties themselves
    cost, and how much the receiver's way of doing them."""
    n, rounds = counts(ctx)["ingress"], ingress_rounds(ctx)
    env = ctx.env()
    apps = (("bare", "bench.bare_app:app"), ("receiver", "webhook_app.wsgi:app"),
            ("floor", "bench.floor_app:create_app()"))
    per: dict[str, dict[str, Any]] = {name: {"seconds": 0.0, "replies": [], "rates": [], "p99s": [], "cpu": {}}
                                      for name, _ in apps}
    with ExitStack() as running:
        started = []
        for name, app in apps:
            gunicorn, port = start_gunicorn(app, env, ctx.log_dir, f"gunicorn-{name}")
            started.append((running.enter_context(gunicorn), port))
        for _, port in started:
            closed_loop(port, trunk_down_requests(env, 200), concurrency=16)  # warm-up
        for _ in range(rounds):
            for (name, _), (gunicorn, port) in zip(apps, started, strict=True):
                batch = trunk_down_requests(env, n // rounds)  # new ids: nothing is a duplicate
                before = snapshot()
                result = closed_loop(port, batch, concurrency=16)
                # the other apps' gunicorns, idle meanwhile, count as "other"
                cpu = cpu_ms_per_item(before, snapshot(), {"gunicorn": gunicorn.proc.pid}, len(batch))
                assert result.statuses() == {202: len(batch)}, f"{name}: {result.statuses()} errors={result.errors}"
                acc = per[name]
                acc["seconds"] += result.ended - result.started
                acc["replies"] += result.ok
                acc["rates"].append(round(result.rate, 1))
                acc["p99s"].append(_latency_ms(result.ok)["p99_ms"])
                for role, ms in cpu.items():
                    acc["cpu"][role] = acc["cpu"].get(role, 0.0) + ms * len(batch)
    ctx.purge()
    clean_up(env["SWITCHBOARD_BROKER_URL"], env["SWITCHBOARD_REDIS_URL"], env["SWITCHBOARD_KEY_PREFIX"])
    out: dict[str, Any] = {"rounds": rounds}
    for name, acc in per.items():
        count = len(acc["replies"])
        out[name] = {"requests": count, "req_per_s": round(count / acc["seconds"], 1), "statuses": {202: count},
                     **_latency_ms(acc["replies"]), "round_req_per_s": acc["rates"], "round_p99_ms": acc["p99s"],
                     "cpu_ms_per_request": {role: round(ms / count, 3) for role, ms in acc["cpu"].items()}}
    bare = out["bare"]
    for name, prefix in (("receiver", ""), ("floor", "floor_")):
        app = out[name]
        pairs = zip(app["round_req_per_s"], bare["round_req_per_s"], strict=True)
        out[f"{prefix}round_ratios"] = [round(r / b, 3) for r, b in pairs]
        pairs = zip(app["round_p99_ms"], bare["round_p99_ms"], strict=True)
        out[f"{prefix}round_p99_ratios"] = [round(r / max(0.001, b), 3) for r, b in pairs]
        out[f"{prefix}ratio"] = round(statistics.median(out[f"{prefix}round_ratios"]), 3)
        out[f"{prefix}p99_ratio"] = round(statistics.median(out[f"{prefix}round_p99_ratios"]), 3)
    return out


def noop_baseline(ctx: BenchContext) -> dict[str, Any]:
    """Celery no-op tasks/s: the same two pools drain a backlog spread over both their queues."""
    n = counts(ctx)["noop"]
    env = ctx.env()
    ctx.purge()
    queues = ("ingest", DISPATCH)
    with start_worker("ingest", env, ctx.log_dir, "noop-ingest") as a, \
            start_worker(DISPATCH, env, ctx.log_dir, "noop-dispatch") as b:
        pause(ctx.celery(), [a], ["ingest"])
        pause(ctx.celery(), [b], [DISPATCH])
        ctx.publish_noops(n, queues)
        before = snapshot()
        started = resume(ctx.celery(), [a], ["ingest"])
        resume(ctx.celery(), [b], [DISPATCH])
        deadline = time.time() + 300
        while sum(ctx.depths(queues).values()) > 0:
            assert time.time() < deadline, "no-op backlog not drained in 300 s"
            time.sleep(0.02)
        ended = time.time()
        cpu = cpu_ms_per_item(before, snapshot(), {"ingest": a.proc.pid, "dispatch": b.proc.pid}, n)
    return {"tasks": n, "tasks_per_s": round(n / (ended - started), 1), "cpu_ms_per_task": cpu}


def prefill(ctx: BenchContext, env: dict[str, str], n: int) -> None:
    """Post ``n`` events through the receiver (gunicorn) while no pool runs, then stop the receiver."""
    gunicorn, port = start_gunicorn("webhook_app.wsgi:app", env, ctx.log_dir, "gunicorn-prefill")
    with gunicorn:
        result = closed_loop(port, trunk_down_requests(env, n), concurrency=16)
    assert result.statuses() == {202: n}, result.statuses()


def pipeline_drain(ctx: BenchContext, grain: str) -> dict[str, Any]:
    """End-to-end events/s from a pre-filled ingest queue to the null vendor."""
    n = counts(ctx)[grain]
    env = ctx.env(grain)
    ctx.purge()
    ctx.reset_sandbox()
    with start_worker("ingest", env, ctx.log_dir, f"{grain}-ingest") as ingest, \
            start_worker(DISPATCH, env, ctx.log_dir, f"{grain}-dispatch") as dispatch:
        pause(ctx.celery(), [ingest], ["ingest"])
        prefill(ctx, env, n)
        before = snapshot()
        started = resume(ctx.celery(), [ingest], ["ingest"])
        ctx.wait_dispatched(env, n, 60 + n / 20)
        cpu = cpu_ms_per_item(before, snapshot(), {"ingest": ingest.proc.pid, "dispatch": dispatch.proc.pid}, n)
    last = max(c["at"] for c in ctx.arrivals() if c["status"] == 202)
    return {"events": n, "grain": grain, "events_per_s": round(n / (last - started), 1),
            "drain_s": round(last - started, 2), "cpu_ms_per_event": cpu}


def _sustained(ctx: BenchContext, env: dict[str, str], port: int, seconds: float, sent: int) -> float:
    """Events/s the whole service (receiver included) sustains: post faster than it drains for ``seconds``,
    then time the deliveries from the first post to the last arrival."""
    ctx.sandbox("DELETE", "/_sandbox/requests")
    ctx.sandbox("POST", "/_sandbox/ratelimit/pagerduty", {"limit": 10_000_000, "window_s": 1})
    requests_ = trunk_down_requests(env, int(seconds * 400))
    started = time.time()
    posted = 0
    while time.time() - started < seconds and posted < len(requests_):
        result = closed_loop(port, requests_[posted:posted + 100], concurrency=2)
        posted += len(result.ok)
    ctx.wait_dispatched(env, sent + posted, 120 + posted / 10)
    last = max(c["at"] for c in ctx.arrivals() if c["status"] == 202)
    return posted / (last - started)


def latency(ctx: BenchContext) -> dict[str, Any]:
    """p50/p99 from the 202 to the vendor's arrival at 25%, 50%, 90% of the rate the service sustains."""
    seconds = counts(ctx)["latency_s"]
    env = ctx.env()
    ctx.purge()
    ctx.reset_sandbox()
    gunicorn, port = start_gunicorn("webhook_app.wsgi:app", env, ctx.log_dir, "gunicorn-latency")
    with gunicorn, start_worker("ingest", env, ctx.log_dir, "latency-ingest"), \
            start_worker(DISPATCH, env, ctx.log_dir, "latency-dispatch"):
        closed_loop(port, trunk_down_requests(env, 50), concurrency=4)  # warm every process
        ctx.wait_dispatched(env, 50, 60)
        saturation = _sustained(ctx, env, port, seconds, 50)
        sent = ctx.ledger(env).counts()["dispatched"]
        out: dict[str, Any] = {"saturation_per_s": round(saturation, 1), "grain": ctx.grain}
        for share in (0.25, 0.5, 0.9):
            rate = saturation * share
            count = max(20, int(rate * seconds))
            ctx.sandbox("DELETE", "/_sandbox/requests")
            ctx.sandbox("POST", "/_sandbox/ratelimit/pagerduty", {"limit": 10_000_000, "window_s": 1})
            result = open_loop(port, trunk_down_requests(env, count), rate)
            sent += count
            ctx.wait_dispatched(env, sent, 120 + count / 10)
            accepted = {json.loads(r.body)["event_id"]: r.done_at for r in result.ok}
            arrived = {c["json"]["payload"]["custom_details"]["event_id"]: c["at"]
                       for c in ctx.arrivals() if c["status"] == 202}
            lat = [(arrived[e] - t) * 1000 for e, t in accepted.items() if e in arrived]
            out[f"at_{int(share * 100)}"] = {
                "rate_per_s": round(rate, 1), "events": len(lat), "offered_s": round(result.ended - result.started, 2),
                "p50_ms": round(percentile(lat, 0.5), 2), "p99_ms": round(percentile(lat, 0.99), 2),
                "receiver_p99_ms": _latency_ms(result.ok)["p99_ms"]}
    return out
