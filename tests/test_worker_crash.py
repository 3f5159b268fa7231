"""A worker SIGKILLed inside a dispatch call, after the vendor acted but before it answered: the message is
redelivered to a fresh worker, which finds what the first attempt created instead of acting again."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from switchboard.dead_letters import DeadLetters
from switchboard.store import Keys, redis_client
from switchboard.waiting import wait_for
from tests.conftest import REDIS_STATE_URL, own_broker
from tests.helpers import ReceiverServer, WorkerProcess, config_copy, service_env
from tests.poison_app import POISON
from tests.posting import Sandbox, post, unique_ztp, wait_outcome

WORKITEMS = "/api/v2/taskmanagement/workitems"


@pytest.fixture
def crash_stack(broker_kind: str, run_id: str, sandbox, state_redis: redis.Redis, tmp_path: Path) -> Iterator[dict]:
    """Its own broker, prefix and workers (the shared pipeline worker must not take the redelivery)."""
    cleanups: list = []
    # a vhost and a prefix of its own per test: a receiver may still hold a connection to a deleted vhost
    # of the same name, and ledger counters must start at 0
    label = uuid.uuid4().hex[:6]
    broker = own_broker(broker_kind, 14, f"crash{label}", run_id, cleanups)
    prefix = f"t{run_id}c{broker_kind}{label}:"
    config_dir = config_copy(tmp_path / "config")
    # On Redis a message held by a dead worker comes back after the visibility timeout: keep it short here.
    env = service_env(broker, REDIS_STATE_URL, sandbox.url, prefix, SWITCHBOARD_CONFIG_DIR=str(config_dir),
                      SWITCHBOARD_REDIS_VISIBILITY_TIMEOUT_S="4")
    with ReceiverServer(env) as server:
        yield {"env": env, "server": server, "url": server.url, "keys": Keys(prefix), "logs": tmp_path}
    for cleanup in reversed(cleanups):
        cleanup()


def test_sigkill_mid_dispatch_then_restart_acts_once(crash_stack: dict, clean_sandbox) -> None:
    sb = Sandbox(clean_sandbox.url)
    redis_client(REDIS_STATE_URL).delete(f"{crash_stack['keys'].prefix}oauth:genesys")
    queues = "ingest,dispatch.default"
    with WorkerProcess(crash_stack["env"], crash_stack["logs"], queues=queues, concurrency=1) as first:
        warm = post(crash_stack, "ztp", unique_ztp())  # fetch the token now, so the next call is the work item
        assert wait_outcome(crash_stack, warm)["outcome"] == "dispatched"
        # The next Genesys request is handled (the work item exists) but answered only after 20 s.
        sb.faults("genesys", script=[{"pass": True, "latency_after_ms": 20_000}])
        event_id = post(crash_stack, "ztp", unique_ztp())
        tag = f"switchboard:{event_id}:genesys_workitem"
        wait_for(lambda: sb.workitems(externalTag=tag), 30, 0.05, "the vendor to create the work item")
        first.kill()  # inside the call: the vendor acted, we never saw the answer
    ledger = crash_stack["server"].state.ledger
    assert ledger.trace(event_id)["outcome"] is None
    with WorkerProcess(crash_stack["env"], crash_stack["logs"], queues=queues, concurrency=1):
        trace = wait_outcome(crash_stack, event_id, timeout=60)
    assert trace["outcome"] == "dispatched"
    assert len(sb.workitems(externalTag=tag)) == 1  # the vendor acted exactly once
    creates = [r for r in sb.requests(WORKITEMS) if r["json"] and r["json"].get("externalTag") == tag]
    assert len(creates) == 1
    dispatches = [s for s in trace["stages"] if s["stage"] == "dispatch:genesys_workitem"]
    # one run verified what the killed one created; on Redis, copies of the waiting message (visibility timeout
    # 4 s < the lease) may also run, and find it done
    assert [s["result"] for s in dispatches if s["result"] != "already-dispatched"] == ["verified-existing"]
    assert trace["targets"]["genesys_workitem"]["result"] == "dispatched"
    counts = ledger.counts()
    assert counts["accepted"] == 2 and counts["dispatched"] == 2  # one outcome each, none twice
    assert sum(v for k, v in counts.items() if k != "accepted") == 2


# Redis only: RabbitMQ does not redeliver a message its live consumer still holds, so the race cannot happen there.
@pytest.mark.parametrize("broker_kind", ["redis"], indirect=True)
def test_a_copy_delivered_while_the_first_is_calling_waits_and_does_not_act_again(crash_stack: dict, broker_kind: str,
                                                                                   clean_sandbox) -> None:
    """Redis redelivers a message still running after the visibility timeout (4 s here): the second copy
    arrives while the first is waiting on the vendor, before the vendor acted. It must wait for the first
    copy's call (the dispatch lease) instead of looking, finding nothing and creating a second work item."""
    sb = Sandbox(clean_sandbox.url)
    redis_client(REDIS_STATE_URL).delete(f"{crash_stack['keys'].prefix}oauth:genesys")
    with WorkerProcess(crash_stack["env"], crash_stack["logs"], queues="ingest,dispatch.default", concurrency=2):
        warm = post(crash_stack, "ztp", unique_ztp())  # the token now, so the next Genesys call is the work item
        assert wait_outcome(crash_stack, warm)["outcome"] == "dispatched"
        # The next Genesys request waits 7 s before the vendor handles it: past the 4 s visibility timeout.
        sb.faults("genesys", script=[{"pass": True, "latency_ms": 7000}])
        event_id = post(crash_stack, "ztp", unique_ztp())
        ledger = crash_stack["server"].state.ledger
        trace = wait_outcome(crash_stack, event_id, timeout=60)
        tag = f"switchboard:{event_id}:genesys_workitem"
        # the redelivered copy ran too (it waited for the first copy's call, or found it done)
        wait_for(lambda: len([s for s in ledger.trace(event_id)["stages"]
                              if s["stage"] in ("dispatch:genesys_workitem", "wait:genesys_workitem")]) >= 2,
                 30, 0.1, "the second copy to run")
    assert trace["outcome"] == "dispatched"
    creates = [r for r in sb.requests(WORKITEMS) if r["json"] and r["json"].get("externalTag") == tag]
    assert len(creates) == 1, creates
    assert len(sb.workitems(externalTag=tag)) == 1


def test_an_event_whose_pool_process_dies_on_every_try_is_dead_lettered(crash_stack: dict) -> None:
    """task_retry_on_worker_lost tries again 1 s later until ingest's retries run out; then Celery acks the
    message and only tasks/worker_lost.py stands between the event and no outcome at all."""
    poison = unique_ztp()
    poison["ztp_event_id"] = f"evt_{POISON}{uuid.uuid4().hex[:8]}"
    worker = WorkerProcess(crash_stack["env"], crash_stack["logs"], queues="ingest,dispatch.default", concurrency=1)
    worker.cmd[worker.cmd.index("tasks.app")] = "tests.poison_app"
    with worker:
        bad = post(crash_stack, "ztp", poison)
        good = post(crash_stack, "ztp", unique_ztp())
        trace = wait_outcome(crash_stack, bad, timeout=60)
        assert wait_outcome(crash_stack, good, timeout=60)["outcome"] == "dispatched"  # the pool recovered
    assert trace["outcome"] == "dead_lettered"
    assert "pool process lost" in trace["reason"]
    letters = DeadLetters(crash_stack["server"].state.redis, crash_stack["keys"]).list(10)
    mine = [d for d in letters if d["event_id"] == bad]
    assert len(mine) == 1 and mine[0]["target"] == "stage:ingest" and "WorkerLostError" in mine[0]["error"]
    counts = crash_stack["server"].state.ledger.counts()
    assert counts["accepted"] == 2 and counts["dead_lettered"] == 1 and counts["dispatched"] == 1
