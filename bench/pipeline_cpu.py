"""``python -m bench.pipeline_cpu [--events N]``: the pipeline's own CPU and Redis round trips per event, in
one process.

The pipeline phase of ``make bench`` measures events/s through two pools, where Celery's consuming, the pools'
main processes and this machine's drifting speed (2x within a day) move the figure more than most changes we
make. Here ``N`` signed trunk-down webhooks are posted through the receiver (gunicorn) onto our own Redis, then
this process takes each ingest message off the broker and runs its task through Celery's ``apply`` (the task's
trace, signals and log lines, as in a pool child; not the pool's consuming and acking), then each dispatch that
ingest published, to the null vendor (the sandbox, in its own process). It reports:

- CPU µs per event of each task (this process's CPU time: Redis's and the sandbox's are not in it);
- each task's Redis round trips per event, counted on further events after the timed ones (a socket write
  of one command, one pipeline or one transaction step), by the call site in our code (the innermost frames
  of ``switchboard/``, ``tasks/``, ``clients/``): a count, so a change that saves round trips shows exactly,
  whatever the machine's speed.

To A/B a change, run it on both commits back to back (a git worktree for the old one).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import traceback
from collections import Counter
from pathlib import Path
from typing import Any

from bench.scenario import service_env, write_config
from bench.stack import start_redis, start_sandbox

COUNTED_EVENTS = 200  # round trips are counted on these, after the timed events
OURS = tuple(f"{os.sep}{name}{os.sep}" for name in ("switchboard", "tasks", "clients"))


def _site(stack: list[traceback.FrameSummary]) -> str:
    """The innermost three frames of our own code (outside a virtualenv) on ``stack``, innermost first."""
    ours = [f for f in stack if any(part in f.filename for part in OURS) and "site-packages" not in f.filename]
    return " <- ".join(f"{Path(f.filename).stem}.{f.name}" for f in ours[::-1][:3]) or "(not our code)"


class RoundTrips:
    """Counts Redis round trips by call site while ``on``: every socket write of a command or a pipeline goes
    through ``AbstractConnection.send_packed_command`` (redis-py's own and kombu's Redis transport alike)."""

    def __init__(self) -> None:
        from redis.connection import AbstractConnection

        self.sites: Counter[str] = Counter()
        self.on = False
        original = AbstractConnection.send_packed_command
        counter = self

        def counted(conn: Any, command: Any, check_health: bool = True) -> None:
            if counter.on:
                counter.sites[_site(traceback.extract_stack(limit=80))] += 1
            return original(conn, command, check_health)

        AbstractConnection.send_packed_command = counted  # type: ignore[method-assign]

    def take(self) -> Counter[str]:
        sites, self.sites = self.sites, Counter()
        return sites


def _messages(broker: Any, queue: str) -> list[tuple[list[Any], dict[str, Any]]]:
    """Every task message on ``queue`` (kombu's Redis transport: a JSON envelope, the body base64), oldest
    first, as the (args, kwargs) Celery's protocol 2 carries."""
    import base64

    from kombu.serialization import loads

    out = []
    while (raw := broker.rpop(queue)) is not None:  # kombu pushes on the left and pops on the right
        envelope = json.loads(raw)
        body = base64.b64decode(envelope["body"])
        args, kwargs, _embed = loads(body, envelope["content-type"], envelope["content-encoding"])
        out.append((args, kwargs))
    return out


def _run(task: Any, messages: list[tuple[list[Any], dict[str, Any]]]) -> float:
    """Run each message's task through ``apply``; this process's CPU seconds. A task that raised fails the run."""
    spent = 0.0
    for args, kwargs in messages:
        started = time.process_time()
        result = task.apply(args=args, kwargs=kwargs)
        spent += time.process_time() - started
        if not result.successful():
            raise AssertionError(f"{task.name} failed: {result.result!r}")
    return spent


def measure(base: str, sandbox_url: str, log_dir: Path, events: int, warm_up: int) -> dict[str, Any]:
    env = service_env(dict(os.environ), f"{base}/9", f"{base}/1", sandbox_url, "pipecpu:",
                      write_config(log_dir / "config", grain="fused"))
    # Before tasks is imported: its Celery app and runtime read the broker and Redis from the environment.
    if "tasks" in sys.modules:
        raise RuntimeError("run bench.pipeline_cpu in a process of its own: tasks was imported already")
    os.environ.update(env)
    import logging

    import redis

    from bench.context import BenchContext
    from bench.phases import prefill
    from switchboard.logs import configure
    from tasks.app import DISPATCH_QUEUES, INGEST_QUEUE
    from tasks.app import app as celery
    from tasks.dispatch import dispatch
    from tasks.stage_tasks import ingest

    if celery.conf.broker_url != env["SWITCHBOARD_BROKER_URL"]:  # never publish onto another Redis
        raise RuntimeError(f"the tasks' broker is {celery.conf.broker_url}, not ours")
    # The tasks' log lines are part of their cost: formatted and redacted as in a pool, written to /dev/null.
    configure("INFO")
    logging.getLogger().handlers[0].setStream(open(os.devnull, "w"))  # noqa: SIM115 - for the process's life
    ctx = BenchContext("redis", env["SWITCHBOARD_BROKER_URL"], env["SWITCHBOARD_REDIS_URL"], sandbox_url, log_dir,
                       False, "fused")
    ctx.reset_sandbox()
    counted = min(events, COUNTED_EVENTS)
    prefill(ctx, env, warm_up + events + counted)
    broker = redis.Redis.from_url(env["SWITCHBOARD_BROKER_URL"])
    trips = RoundTrips()
    incoming = _messages(broker, INGEST_QUEUE)

    def dispatches() -> list[tuple[list[Any], dict[str, Any]]]:
        return [m for queue in DISPATCH_QUEUES for m in _messages(broker, queue)]

    _run(ingest, incoming[:warm_up])  # imports, connections, scripts loaded, the runtime built
    _run(dispatch, dispatches())
    # CPU first, uncounted (walking the stack per round trip costs more than the round trip), then the count
    timed = incoming[warm_up:warm_up + events]
    ingest_s = _run(ingest, timed)
    published = dispatches()  # the harness's own reads are not counted
    dispatch_s = _run(dispatch, published)
    trips.on = True
    _run(ingest, incoming[warm_up + events:])
    ingest_sites = trips.take()
    trips.on = False
    published_counted = dispatches()
    trips.on = True
    _run(dispatch, published_counted)
    dispatch_sites = trips.take()
    trips.on = False
    dispatched = ctx.ledger(env).counts()["dispatched"]
    if (len(published), len(published_counted)) != (events, counted) or dispatched != warm_up + events + counted:
        raise AssertionError(f"{len(published)} + {len(published_counted)} dispatches published, {dispatched} "
                             f"events dispatched, for {events} + {counted} events after {warm_up} of warm-up")

    def per_event(sites: Counter[str]) -> dict[str, Any]:
        return {"total": round(sum(sites.values()) / counted, 2),
                "sites": {site: round(n / counted, 2) for site, n in sites.most_common()}}

    return {"events": events, "counted_events": counted,
            "ingest_cpu_us_per_event": round(ingest_s * 1e6 / events, 1),
            "dispatch_cpu_us_per_event": round(dispatch_s * 1e6 / events, 1),
            "round_trips_per_event": {"ingest": per_event(ingest_sites), "dispatch": per_event(dispatch_sites)}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.pipeline_cpu", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--warm-up", type=int, default=50)
    args = parser.parse_args(argv)
    log_dir = Path(tempfile.mkdtemp(prefix="sb-pipeline-cpu-"))
    redis_proc, base = start_redis(log_dir)
    sandbox_proc, sandbox_url = start_sandbox(log_dir)
    try:
        result = measure(base, sandbox_url, log_dir, args.events, args.warm_up)
    finally:
        sandbox_proc.stop()
        redis_proc.stop()
    print(json.dumps(result, indent=2))
    trips = result["round_trips_per_event"]
    print(f"per event, in one process: ingest {result['ingest_cpu_us_per_event']} µs CPU and "
          f"{trips['ingest']['total']} Redis round trips, dispatch {result['dispatch_cpu_us_per_event']} µs and "
          f"{trips['dispatch']['total']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
