"""Entry point (``python -m bench``, ``make bench``, ``switchboard bench``): every phase on each broker,
then the table on stdout and ``bench/results.json``."""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.context import BenchContext
from bench.flow import flow_control
from bench.memory import memory
from bench.phases import ingress, latency, noop_baseline, pipeline_drain
from bench.report import headline, machine, summary, table, versions
from bench.stack import RabbitVhost, start_redis, start_sandbox
from switchboard.config import load_config

ROOT = Path(__file__).resolve().parent.parent
PHASES = ("ingress", "pipeline", "latency", "flow", "memory")


def run_broker(ctx: BenchContext, phases: tuple[str, ...]) -> dict[str, Any]:
    r: dict[str, Any] = {"grain": ctx.grain}
    timings: dict[str, float] = {}

    def timed(name: str, fn: Any, *args: Any) -> Any:
        started = time.time()
        print(f"[{ctx.broker}] {name} ...", flush=True)
        value = fn(*args)
        timings[name] = round(time.time() - started, 1)
        print(f"[{ctx.broker}] {name}: {json.dumps(value)}", flush=True)
        return value

    if "ingress" in phases:
        r["ingress"] = timed("ingress", ingress, ctx)
    if "pipeline" in phases:
        r["noop"] = timed("noop", noop_baseline, ctx)
        grains = (ctx.grain,) if ctx.quick else ("fused", "chain")  # the grain comparison is a full run's
        r["pipeline"] = {grain: timed(f"pipeline-{grain}", pipeline_drain, ctx, grain) for grain in grains}
    if "latency" in phases:
        r["latency"] = timed("latency", latency, ctx)
    if "flow" in phases:
        r["flow"] = timed("flow", flow_control, ctx)
    if "memory" in phases:
        r["memory"] = timed("memory", memory, ctx)
    r["summary"] = summary(r)
    r["phase_seconds"] = timings
    return r


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny counts (a smoke test of the bench itself)")
    parser.add_argument("--brokers", default="redis,rabbitmq", help="comma-separated: redis, rabbitmq")
    parser.add_argument("--phases", default=",".join(PHASES), help=f"comma-separated subset of {PHASES}")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results.json")
    parser.add_argument("--keep-logs", action="store_true", help="keep the run's directory (logs, configs)")
    args = parser.parse_args(argv)
    phases = tuple(p for p in args.phases.split(",") if p)
    started = time.time()
    log_dir = Path(tempfile.mkdtemp(prefix="sb-bench-"))
    grain = load_config(ROOT / "config").service["pipeline_grain"]
    results: dict[str, Any] = {}
    redis_proc, redis_base = start_redis(log_dir)
    sandbox_proc, sandbox_url = start_sandbox(log_dir)
    host = {"machine": machine()}
    try:
        for broker in [b for b in args.brokers.split(",") if b]:
            if broker == "rabbitmq" and not RabbitVhost.available():
                results[broker] = {"skipped": "no RabbitMQ on this machine (rabbitmqctl status failed)"}
                continue
            db = 1 + len(results)
            if broker == "redis":
                ctx = BenchContext(broker, f"{redis_base}/{db + 8}", f"{redis_base}/{db}", sandbox_url, log_dir,
                                   args.quick, grain)
                results[broker] = run_broker(ctx, phases)
            else:
                with RabbitVhost() as vhost:
                    ctx = BenchContext(broker, vhost.url, f"{redis_base}/{db}", sandbox_url, log_dir, args.quick, grain)
                    results[broker] = run_broker(ctx, phases)
        info = versions(f"{redis_base}/0")
    finally:
        sandbox_proc.stop()
        redis_proc.stop()
    host["machine"]["load_average_end"] = machine()["load_average"]
    out = {**headline({k: v for k, v in results.items() if "summary" in v}),
           "grain": grain, "brokers": results, "versions": info, **host,
           "command": "make bench" if not args.quick else "python -m bench --quick",
           "quick": args.quick, "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
           "duration_s": round(time.time() - started, 1), "platform": platform.platform()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(table(results))
    print(f"\n{out['duration_s']} s on {out['machine']['cores']} cores ({out['machine']['cpu']}); "
          f"load average {out['machine']['load_average']} -> {out['machine']['load_average_end']}; "
          f"written to {args.out}")
    if not args.keep_logs:
        shutil.rmtree(log_dir, ignore_errors=True)
    else:
        print(f"logs: {log_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
