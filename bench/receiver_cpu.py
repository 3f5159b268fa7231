"""``python -m bench.receiver_cpu``: the receiver's own CPU per webhook against bare Flask's, in one process.

The ingress phase measures requests/s over HTTP, where gunicorn, the load generator and this machine's drifting
speed (2x within a day) move both sides, so a 10% change in the receiver is lost in the noise between runs. Here
the receiver (``webhook_app``) and the bare baseline (``bench/bare_app.py``) run in the same process, through
werkzeug's test client, in alternating rounds on the same signed trunk-down webhooks, and the figure is CPU ms
per request (this process's CPU time: Redis's own is not in it) and the ratio of the two. To A/B a receiver
change, run it on both commits back to back (a git worktree for the old one).

Redis is our own (``bench.stack.start_redis``), state and broker both; nothing consumes the ingest queue. By
default they are one database, as ``make up`` deploys them, so the gate's script pushes the ingest message
(tasks/redis_push.py); ``--broker-db own`` puts the broker in a database of its own (a separate publish).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.scenario import service_env, trunk_down_webhooks, write_config
from bench.stack import start_redis

Post = Callable[[bytes, dict[str, str]], int]


def _poster(client: Any) -> Post:
    def post(body: bytes, headers: dict[str, str]) -> int:
        return client.post("/webhooks/genesys", data=body, headers=headers).status_code
    return post


def _round(post: Post, webhooks: list[tuple[bytes, dict[str, str]]]) -> float:
    """CPU ms per request over ``webhooks``; every answer must be 202."""
    started = time.process_time()
    for body, headers in webhooks:
        status = post(body, headers)
        if status != 202:
            raise AssertionError(f"answered {status}, not 202")
    return (time.process_time() - started) * 1000 / len(webhooks)


def measure(env: dict[str, str], rounds: int, per_round: int) -> dict[str, Any]:
    """Alternate ``rounds`` rounds of ``per_round`` webhooks on each app: the medians of the rounds, and the
    median of each receiver round's ratio to the bare round before it."""
    os.environ.update(env)  # bench.bare_app reads its config from the environment when imported
    import logging

    from bench.bare_app import app as bare
    from switchboard.logs import configure
    from switchboard.settings import load_settings
    from webhook_app import create_app

    # The receiver's log line per accepted webhook is part of its cost: formatted and redacted as under
    # gunicorn, then written to /dev/null instead of our stderr.
    configure("INFO")
    logging.getLogger().handlers[0].setStream(open(os.devnull, "w"))  # noqa: SIM115 - for the process's life

    apps = {"bare": bare.test_client(), "receiver": create_app(load_settings(env)).test_client()}
    posts: dict[str, Post] = {name: _poster(client) for name, client in apps.items()}
    for post in posts.values():  # warm-up: imports, connections, first-request work
        _round(post, trunk_down_webhooks(env, 200))
    per: dict[str, list[float]] = {name: [] for name in posts}
    for _ in range(rounds):
        for name, post in posts.items():
            per[name].append(_round(post, trunk_down_webhooks(env, per_round)))
    out = {f"{name}_cpu_ms_per_request": round(statistics.median(values), 4) for name, values in per.items()}
    out["rounds"] = {name: [round(v, 4) for v in values] for name, values in per.items()}
    # each round's ratio to the bare round just before it (the machine's speed drifts within a run), median
    out["ratio"] = round(statistics.median(r / b for r, b in zip(per["receiver"], per["bare"], strict=True)), 3)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.receiver_cpu", description=__doc__)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--per-round", type=int, default=300)
    parser.add_argument("--broker-db", choices=["same", "own"], default="same",
                        help="the broker in the state store's database (default) or in its own")
    args = parser.parse_args(argv)
    log_dir = Path(tempfile.mkdtemp(prefix="sb-receiver-cpu-"))
    redis_proc, base = start_redis(log_dir)
    try:
        broker_url = f"{base}/0" if args.broker_db == "same" else f"{base}/1"
        env = service_env(dict(os.environ), broker_url, f"{base}/0", "http://127.0.0.1:9", "rcpu:",
                          write_config(log_dir / "config", grain="fused"))
        result = measure(env, args.rounds, args.per_round)
    finally:
        redis_proc.stop()
    print(json.dumps(result, indent=2))
    print(f"receiver {result['receiver_cpu_ms_per_request']} ms vs bare Flask {result['bare_cpu_ms_per_request']} ms"
          f" CPU per request in one process: {result['ratio']}x", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
