"""The stalled sweep against a real Redis broker, receiver and Celery worker (tasks/stalled_sweep.py).

A message lost between kombu's BRPOP and its ``unacked`` record is reproduced exactly: the test takes it off
the queue list with RPOP (what the dead consumer's BRPOP did) and drops it. The sweep must publish that event
again, and leave alone an event whose message is still queued or held by a worker."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from switchboard.config import load_config
from switchboard.settings import load_settings
from switchboard.waiting import wait_for
from tasks.runtime import build_runtime
from tasks.stalled_sweep import sweep
from tests.conftest import redis_broker_env
from tests.helpers import ReceiverServer, WorkerProcess, config_copy
from tests.posting import Sandbox, post, unique_ztp, wait_outcome

STALL_S = 1.0
SERVICE = [("stall_after_s: 120", f"stall_after_s: {STALL_S}"), ("stall_sweep_every_s: 30", "stall_sweep_every_s: 0.5"),
           ("stall_max_sweeps: 3", "stall_max_sweeps: 1")]


@pytest.fixture
def stack(run_id: str, sandbox, state_redis: redis.Redis, tmp_path: Path) -> Iterator[dict]:
    cleanups: list = []
    config_dir = config_copy(tmp_path / "config", {"service.yaml": SERVICE})
    env, broker_url = redis_broker_env(run_id, 8, "s", sandbox.url, config_dir, cleanups,
                                       SWITCHBOARD_REDIS_VISIBILITY_TIMEOUT_S="4")
    with ReceiverServer(env) as server:
        rt = build_runtime(load_settings(env), load_config(config_dir))
        yield {"env": env, "server": server, "url": server.url, "logs": tmp_path, "rt": rt,
               "broker": redis.Redis.from_url(broker_url), "celery": server.state.celery,
               "sandbox": Sandbox(sandbox.url)}
    for cleanup in reversed(cleanups):
        cleanup()


def _event_of(message: bytes) -> str:
    return json.loads(message)["headers"]["event_id"]


def _received_at(ctx: dict, event_id: str) -> float:
    return ctx["server"].state.ledger.trace(event_id)["received_at"]


def _stalled_since(ctx: dict, event_id: str) -> None:
    """Wait (on the clock, with a deadline) until the event's last step is older than the stall time."""
    since = ctx["rt"].redis.zscore(ctx["rt"].keys.inflight, event_id)
    assert since is not None, f"{event_id} is not in flight"
    wait_for(lambda: time.time() > since + STALL_S + 0.2, 10, 0.05, f"{event_id} idle for the stall time")


def _work_items(ctx: dict, event_id: str) -> list:
    return ctx["sandbox"].workitems(externalTag=f"switchboard:{event_id}:genesys_workitem")


def test_sweep_publishes_again_only_the_event_whose_message_the_broker_lost(stack: dict) -> None:
    b = stack["broker"]
    e1, e2 = post(stack, "ztp", unique_ztp()), post(stack, "ztp", unique_ztp())
    _stalled_since(stack, e2)  # e3 comes more than the stall time after e2: the FIFO bound can tell them apart
    e3 = post(stack, "ztp", unique_ztp())
    assert b.llen("ingest") == 3
    held = b.rpop("ingest")  # a live worker took e1 (it sits in kombu's unacked hash)
    b.hset("unacked", "tag-e1", json.dumps([json.loads(held), "", "ingest"]))
    lost = b.rpop("ingest")  # e2: its consumer died between BRPOP and the unacked record
    assert (_event_of(held), _event_of(lost)) == (e1, e2)
    _stalled_since(stack, e3)

    counts = sweep(stack["rt"], b, stack["celery"])
    assert counts == {"held": 1, "republish_ingest": 1, "maybe-queued": 1}, counts
    assert sorted(_event_of(m) for m in b.lrange("ingest", 0, -1)) == sorted([e2, e3])
    # e2 was just published again (a step): the next pass leaves it to run
    assert sweep(stack["rt"], b, stack["celery"]) == {"held": 1, "maybe-queued": 1}

    # e1's worker died too: the visibility timeout hands its message back
    b.hdel("unacked", "tag-e1")
    b.rpush("ingest", held)
    with WorkerProcess(stack["env"], stack["logs"], concurrency=2):
        traces = {e: wait_outcome(stack, e, timeout=30) for e in (e1, e2, e3)}
    assert {e: t["outcome"] for e, t in traces.items()} == dict.fromkeys((e1, e2, e3), "dispatched")
    assert all(len(_work_items(stack, e)) == 1 for e in (e1, e2, e3))
    swept = [s for s in traces[e2]["stages"] if s["stage"] == "sweep_stalled"]
    assert [s["result"] for s in swept] == ["republish_ingest"]
    assert not any(s["stage"] == "sweep_stalled" for e in (e1, e3) for s in traces[e]["stages"])
    rt = stack["rt"]
    assert rt.redis.zcard(rt.keys.inflight) == 0
    assert all("body" not in rt.redis.hkeys(rt.keys.ledger(e)) for e in (e1, e2, e3))  # dropped at the outcome


def test_a_lost_dispatch_message_is_published_again_by_beat(stack: dict) -> None:
    b = stack["broker"]
    with WorkerProcess(stack["env"], stack["logs"], queues="ingest", concurrency=1):
        event_id = post(stack, "ztp", unique_ztp())
        wait_for(lambda: b.llen("dispatch.default") == 1, 30, 0.05, "the dispatch message")
    lost = b.rpop("dispatch.default")
    assert _event_of(lost) == event_id
    with WorkerProcess(stack["env"], stack["logs"], concurrency=2, beat=True):
        trace = wait_outcome(stack, event_id, timeout=30)
    assert trace["outcome"] == "dispatched"
    assert len(_work_items(stack, event_id)) == 1
    assert [s["result"] for s in trace["stages"] if s["stage"] == "sweep_stalled"] == ["republish_dispatch"]


def test_an_event_lost_again_after_max_sweeps_is_dead_lettered(stack: dict) -> None:
    b, rt = stack["broker"], stack["rt"]
    event_id = post(stack, "ztp", unique_ztp())
    b.rpop("ingest")
    _stalled_since(stack, event_id)
    assert sweep(rt, b, stack["celery"]) == {"republish_ingest": 1}
    assert _event_of(b.rpop("ingest")) == event_id  # lost a second time
    _stalled_since(stack, event_id)
    assert sweep(rt, b, stack["celery"]) == {"give_up": 1}
    trace = rt.ledger.trace(event_id)
    assert trace["outcome"] == "dead_lettered"
    assert trace["reason"].startswith("stalled: published again 1 times")
    entry = next(e for e in rt.dead_letters.list() if e["event_id"] == event_id)
    assert entry["target"] == "stage:normalize"
    assert entry["alert"]["payload"]["provisioning_status"] == "VALIDATION_FAILED"  # replayable from the envelope
    assert rt.redis.zcard(rt.keys.inflight) == 0
    assert rt.ledger.counts()["dead_lettered"] == 1 == rt.ledger.counts()["accepted"]
