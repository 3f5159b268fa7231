"""``switchboard dlq`` end to end: an outage dead-letters a dispatch, the outage ends, an operator lists,
shows and replays it from the CLI, and the vendor acts exactly once with the original idempotency key."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid

from switchboard.dead_letters import DeadLetters
from switchboard.waiting import wait_for
from tests.posting import Sandbox, post, sample, unique_ztp, wait_outcome

WORKITEMS = "/api/v2/taskmanagement/workitems"


def cli(ctx: dict, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "switchboard.cli", "dlq", *args], env=ctx["env"],
                          capture_output=True, text=True, timeout=60, check=check)


def entries_for(ctx: dict, event_id: str) -> list[dict]:
    out = cli(ctx, "list", "--json", "--limit", "100000").stdout
    return [e for e in map(json.loads, out.splitlines()) if e["event_id"] == event_id]


def test_dead_letter_under_outage_then_replay_acts_exactly_once(pipeline: dict, clean_sandbox) -> None:
    sb = Sandbox(clean_sandbox.url)
    sb.faults("genesys", failure_rate=1.0, failure_status=503)  # the outage
    event_id = post(pipeline, "ztp", unique_ztp())
    assert wait_outcome(pipeline, event_id)["outcome"] == "dead_lettered"
    ledger = pipeline["server"].state.ledger
    before = ledger.counts()

    [entry] = entries_for(pipeline, event_id)
    assert entry["target"] == "genesys_workitem" and entry["attempts"] == 4 and "503" in entry["error"]
    table = cli(pipeline, "list", "--target", "genesys_workitem", "--limit", "100000").stdout
    assert entry["id"] in table and event_id in table
    shown = json.loads(cli(pipeline, "show", entry["id"]).stdout)
    tag = f"switchboard:{event_id}:genesys_workitem"
    assert shown["request"]["externalTag"] == tag and shown["route"]["queue"] == "QUEUE_ZTP_L2_FIRMWARE"
    assert cli(pipeline, "show", "0-1", check=False).returncode != 0

    sb.send("DELETE", "/_sandbox/faults/genesys")  # the outage ends
    out = cli(pipeline, "replay", entry["id"]).stdout
    assert f"replayed {event_id} to genesys_workitem" in out

    trace = wait_for(lambda: (t := ledger.trace(event_id))["outcome"] == "dispatched" and t, 30, 0.05,
                     "the replayed dispatch")
    assert len(sb.workitems(externalTag=tag)) == 1  # exactly one vendor action, same idempotency key
    assert [r["status"] for r in sb.requests(WORKITEMS, rejected=True)] == [503] * 4 + [200]
    assert trace["targets"]["genesys_workitem"]["result"] == "dispatched" and trace["replays"] == 1
    assert entries_for(pipeline, event_id) == []  # replayed entries leave the stream
    after = ledger.counts()
    assert after["dead_lettered"] == before["dead_lettered"] - 1
    assert after["dispatched"] == before["dispatched"] + 1
    assert after["accepted"] == sum(v for k, v in after.items() if k != "accepted")

    # The entry is gone: replaying it again is refused and sends nothing more.
    again = cli(pipeline, "replay", entry["id"], check=False)
    assert again.returncode != 0 and "no dead letter" in again.stderr
    assert len(sb.workitems(externalTag=tag)) == 1


def test_replay_all_and_purge(pipeline: dict, clean_sandbox) -> None:
    sb = Sandbox(clean_sandbox.url)
    cli(pipeline, "purge", "--yes")  # other tests' dead letters are not this test's to replay
    sb.faults("genesys", script=[{"status": 400, "count": 2, "body": {"message": "queue not found",
                                                                      "code": "bad.request", "status": 400}}])
    ids = [post(pipeline, "ztp", unique_ztp()) for _ in range(2)]
    for event_id in ids:
        assert wait_outcome(pipeline, event_id)["outcome"] == "dead_lettered"
    assert cli(pipeline, "replay", check=False).returncode == 2  # neither an id nor --all
    out = cli(pipeline, "replay", "--all", "--target", "genesys_workitem").stdout
    assert all(f"replayed {event_id}" in out for event_id in ids)
    ledger = pipeline["server"].state.ledger
    for event_id in ids:
        wait_for(lambda e=event_id: ledger.trace(e)["outcome"] == "dispatched", 30, 0.05, "replay of " + event_id)
        assert len(sb.workitems(externalTag=f"switchboard:{event_id}:genesys_workitem")) == 1

    sb.faults("genesys", script=[{"status": 400, "count": 1}])
    failed = post(pipeline, "ztp", unique_ztp())
    assert wait_outcome(pipeline, failed)["outcome"] == "dead_lettered"
    assert "purged" in cli(pipeline, "purge", "--yes").stdout
    assert cli(pipeline, "list").stdout.strip() == "no dead letters"
    assert ledger.trace(failed)["outcome"] == "dead_lettered"  # purge forgets the letters, not the outcome


def test_a_pipeline_stage_dead_letter_replays_from_that_stage(pipeline: dict, clean_sandbox) -> None:
    """A stage that failed (a bug since fixed) is replayed from that stage with the data it was given."""
    state = pipeline["server"].state
    event_id = uuid.uuid4().hex
    envelope = {"event_id": event_id, "source": "ztp", "received_at": time.time(),
                "payload": sample("ztp-firmware-rollback.json", ztp_event_id=f"evt_{event_id[:20]}")}
    state.ledger.accept(event_id, "ztp", envelope["received_at"], [])
    state.ledger.set_outcome(event_id, "dead_lettered", "stage normalize failed: KeyError")
    entry_id = DeadLetters(state.redis, state.keys).add(event_id=event_id, target="stage:normalize", request={},
                                                        attempts=1, error="KeyError: 'x'", alert=envelope)
    assert f"replayed {event_id} from stage normalize" in cli(pipeline, "replay", entry_id).stdout
    trace = wait_for(lambda: (t := state.ledger.trace(event_id))["outcome"] == "dispatched" and t, 30, 0.05,
                     "the replayed pipeline")
    assert [s["stage"] for s in trace["stages"]] == ["normalize", "dedupe", "enrich", "gate", "route",
                                                      "dispatch:genesys_workitem"]
    assert len(Sandbox(clean_sandbox.url).workitems(externalTag=f"switchboard:{event_id}:genesys_workitem")) == 1
