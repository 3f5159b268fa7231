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
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from bench.context import BenchContext
from bench.flow import flow_control
from bench.memory import memory
from bench.phases import ingress, latency, noop_baseline, pipeline_drain
from bench.report import cpu_tables, headline, machine, median_round, summary, table, versions
from bench.stack import RabbitVhost, start_redis, start_sandbox
from switchboard.config import load_config

ROOT = Path(__file__).resolve().parent.parent
PHASES = ("ingress", "pipeline", "latency", "flow", "memory")
PIPELINE_ROUNDS = 3


class Runner:
    """Runs phases on one broker, timing each and printing its figures as they come."""

    def __init__(self, ctx: BenchContext) -> None:
        self.ctx = ctx
        self.r: dict[str, Any] = {"grain": ctx.grain, "phase_seconds": {}}

    def timed(self, name: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        started = time.time()
        print(f"[{self.ctx.broker}] {name} ...", flush=True)
        value = fn(*args, **kwargs)
        self.r["phase_seconds"][name] = round(time.time() - started, 1)
        print(f"[{self.ctx.broker}] {name}: {json.dumps(value)}", flush=True)
        return value

    def run(self, phases: tuple[str, ...]) -> None:
        ctx, r = self.ctx, self.r
        if "ingress" in phases:
            r["ingress"] = self.timed("ingress", ingress, ctx)
        if "pipeline" in phases:
            # Rounds of the chosen grain, each between two no-op runs: the ratio is the median of the rounds'
            # (bench.report.pipeline_rounds), so a stretch where the machine slowed (seen here: 1.46x for
            # one drain only) is one outlier round, not the figure.
            rounds = 1 if ctx.quick else PIPELINE_ROUNDS
            r["noop_runs"] = [self.timed("noop", noop_baseline, ctx)]
            r["pipeline_rounds"] = []
            for i in range(rounds):
                r["pipeline_rounds"].append(self.timed(f"pipeline-{ctx.grain} (round {i + 1}/{rounds})",
                                                       pipeline_drain, ctx, ctx.grain))
                r["noop_runs"].append(self.timed("noop", noop_baseline, ctx))
            r["pipeline"] = {ctx.grain: median_round(r)}
            if not ctx.quick:  # the grain comparison: once, against the mean of every no-op run
                other = "chain" if ctx.grain == "fused" else "fused"
                r["pipeline"][other] = self.timed(f"pipeline-{other}", pipeline_drain, ctx, other)
        if "latency" in phases:
            r["latency"] = self.timed("latency", latency, ctx)
        if "flow" in phases:
            r["flow"] = self.timed("flow", flow_control, ctx)

    def soak(self, deadline: float | None, events: int | None = None) -> None:
        self.r["memory"] = self.timed("memory", memory, self.ctx, events, deadline=deadline)


# What the Redis soak (last) needs at least on a slow machine: its warm-up and one measured batch.
REDIS_SOAK_RESERVE_S = 180


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny counts (a smoke test of the bench itself)")
    parser.add_argument("--brokers", default="redis,rabbitmq", help="comma-separated: redis, rabbitmq")
    parser.add_argument("--phases", default=",".join(PHASES), help=f"comma-separated subset of {PHASES}")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results.json")
    parser.add_argument("--minutes", type=float, default=19.0,
                        help="time budget: the memory soaks stop starting batches after it "
                             f"(RabbitMQ's leaves the Redis soak {REDIS_SOAK_RESERVE_S} s)")
    parser.add_argument("--soak-events", type=int, default=None,
                        help="events each memory soak sends (default: 100,000 on Redis, 10,000 on RabbitMQ, which "
                             "share make bench's 20 minutes); e.g. 100000 on its own with --phases memory --minutes 45")
    parser.add_argument("--rabbitmq-queue-version", type=int, choices=(1, 2), default=2,
                        help="2: the queue-version policy operators are asked to set (README); 1: without it")
    parser.add_argument("--redis-broker-db", choices=("same", "own"), default="same",
                        help="Redis: the broker in the state store's database, as make up deploys it (the gate's "
                             "script pushes the ingest message), or in a database of its own")
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
        with ExitStack() as stack:
            runners: dict[str, Runner] = {}
            for db, broker in enumerate([b for b in args.brokers.split(",") if b], start=1):
                if broker == "rabbitmq" and not RabbitVhost.available():
                    results[broker] = {"skipped": "no RabbitMQ on this machine (rabbitmqctl status failed)"}
                    continue
                if broker == "redis":
                    broker_url = f"{redis_base}/{db if args.redis_broker_db == 'same' else db + 8}"
                else:
                    broker_url = stack.enter_context(RabbitVhost(args.rabbitmq_queue_version)).url
                runners[broker] = Runner(BenchContext(broker, broker_url, f"{redis_base}/{db}", sandbox_url, log_dir,
                                                      args.quick, grain))
                if broker == "rabbitmq":
                    runners[broker].r["queue_version"] = args.rabbitmq_queue_version
                else:
                    runners[broker].r["broker_db"] = args.redis_broker_db
            for runner in runners.values():
                runner.run(phases)
            if "memory" in phases:
                # Redis soaks last: the 100,000 events get what is left of the time budget.
                for broker in sorted(runners, key=lambda b: b == "redis"):
                    budget_end = started + args.minutes * 60
                    reserve = REDIS_SOAK_RESERVE_S if broker != "redis" and "redis" in runners else 0
                    runners[broker].soak(budget_end - reserve, args.soak_events)
            for broker, runner in runners.items():
                runner.r["summary"] = summary(runner.r)
                results[broker] = runner.r
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
    print("\nWhere the CPU goes:\n" + cpu_tables(results))
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
