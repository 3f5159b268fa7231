"""``python -m bench.redis_commands [--events N]``: Redis commands per event through the fused pipeline.

A count, not a time: it does not move with this machine's speed (which drifts 2x within a day, more than most
changes we make), so a change that saves round trips or commands shows here exactly. Events are posted through
the receiver (gunicorn) while no pool runs, the server's ``INFO commandstats`` is reset, then the ingest and
dispatch pools drain them to the null vendor and the commands they caused are divided by the events. The
pools' idle polling (BRPOP, heartbeats) is in it too; it is small against a few hundred events.

Redis is our own (``bench.stack.start_redis``), state and broker both, as in ``make bench``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import redis

from bench.context import BenchContext
from bench.phases import DISPATCH, prefill
from bench.stack import start_redis, start_sandbox, start_worker


def count(events: int) -> tuple[float, list[tuple[str, float]]]:
    """(commands per event, [(command, calls per event)] most frequent first)."""
    log_dir = Path(tempfile.mkdtemp(prefix="sb-redis-commands-"))
    redis_proc, base = start_redis(log_dir)
    sandbox_proc, sandbox_url = start_sandbox(log_dir)
    try:
        ctx = BenchContext("redis", f"{base}/9", f"{base}/1", sandbox_url, log_dir, False, "fused")
        env = ctx.env()
        ctx.reset_sandbox()
        prefill(ctx, env, events)
        server = redis.Redis.from_url(base)
        server.config_resetstat()
        with start_worker("ingest", env, log_dir, "commands-ingest"), \
                start_worker(DISPATCH, env, log_dir, "commands-dispatch"):
            ctx.wait_dispatched(env, events, 60 + events / 20)
        stats = server.info("commandstats")
    finally:
        sandbox_proc.stop()
        redis_proc.stop()
        shutil.rmtree(log_dir, ignore_errors=True)
    rows = sorted(((name.split("_", 1)[1], v["calls"] / events) for name, v in stats.items()), key=lambda r: -r[1])
    return sum(calls for _, calls in rows), rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.redis_commands", description=__doc__)
    parser.add_argument("--events", type=int, default=300)
    args = parser.parse_args(argv)
    total, rows = count(args.events)
    print(f"{total:.1f} Redis commands per event ({args.events} events, grain fused)")
    for name, calls in rows:
        if calls >= 0.05:
            print(f"{calls:7.2f} {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
