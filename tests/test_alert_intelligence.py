"""Alert intelligence end to end, counting what the vendor sandbox received: a ZTP retry storm files one
work item, a flapping trunk pages once and resolves once after its cooldown, and 200 queue alerts behind
one failed trunk become one incident naming the trunk with the queues attached. Real receiver, a real
worker with beat (it releases held events and sends incident updates), both brokers.

Times are scaled down (cooldown seconds instead of minutes) through the stack's own alerting.yaml.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
import requests

from switchboard.config import load_config
from switchboard.sender import post_signed
from switchboard.stages.normalize import alert_key
from switchboard.store import Keys
from switchboard.waiting import wait_for
from tests.conftest import REDIS_STATE_URL, own_broker
from tests.helpers import PD_LIMIT, SECRETS, ReceiverServer, WorkerProcess, config_copy, service_env
from tests.posting import SECRET_ENV, Sandbox, sample, unique_ztp

COOLDOWN_S = 8
UPDATE_AFTER_S = 2
QUEUES = 40


@pytest.fixture(scope="module")
def stack(broker_kind: str, run_id: str, sandbox, state_redis: redis.Redis,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    cleanups: list = []
    broker = own_broker(broker_kind, 9, f"intel-{uuid.uuid4().hex[:6]}", run_id, cleanups)
    uid = uuid.uuid4().hex[:6]
    trunk = f"trunk-storm-{uid}"
    queues = [f"queue-storm-{uid}-{i:02d}" for i in range(QUEUES)]
    deps = f"dependencies:\n  {trunk}: [{', '.join(queues)}]\n"
    tmp = tmp_path_factory.mktemp(f"intel-{broker_kind}")
    config_dir = config_copy(tmp / "config", {
        "targets.yaml": [(PD_LIMIT, "{rate: 200, burst: 50, per: routing_key}")],
        "alerting.yaml": [("cooldown_s: 300", f"cooldown_s: {COOLDOWN_S}"),
                          ("update_after_s: 60", f"update_after_s: {UPDATE_AFTER_S}")],
        "mappings.yaml": [("entities:\n", f"{deps}entities:\n  {trunk}: {{business_unit: voice-network}}\n")],
    }, alerting=True)
    prefix = f"t{run_id}ai{uid}:"
    env = service_env(broker, REDIS_STATE_URL, sandbox.url, prefix, SWITCHBOARD_CONFIG_DIR=str(config_dir))
    with WorkerProcess(env, tmp, beat=True, concurrency=4) as worker, ReceiverServer(env) as server:
        yield {"env": env, "server": server, "url": server.url, "keys": Keys(prefix), "worker": worker,
               "config": load_config(config_dir), "trunk": trunk, "queues": queues, "redis": state_redis}
    for cleanup in reversed(cleanups):
        cleanup()


def _post(ctx: dict, source: str, payload: dict[str, Any]) -> requests.Response:
    """Sign and post with a fresh request id / webhook id (a new delivery, as a retrying sender makes)."""
    rid = uuid.uuid4().hex
    secret = SECRETS[SECRET_ENV[source]].split(",")[0]
    return post_signed(ctx["url"], source, ctx["config"].sources[source], json.dumps(payload).encode(), secret,
                       request_id=rid, msg_id=f"msg_{rid}")


def _accepted(ctx: dict, source: str, payload: dict[str, Any]) -> str:
    r = _post(ctx, source, payload)
    assert r.status_code == 202, r.text
    return r.json()["event_id"]


def _final(ctx: dict, event_ids: list[str], timeout: float = 60) -> dict[str, dict]:
    """Every event's trace once none of them is still deferred (held events end in another outcome)."""
    ledger = ctx["server"].state.ledger

    def settled() -> dict[str, dict] | None:
        traces = {e: ledger.trace(e) for e in event_ids}
        done = all(t and t["outcome"] not in (None, "deferred") for t in traces.values())
        return traces if done else None

    return wait_for(settled, timeout, 0.1, f"final outcomes of {len(event_ids)} events")


def _pd(sb: Sandbox, dedup_key: str) -> list[dict]:
    return [r for r in sb.requests("/v2/enqueue") if r["json"].get("dedup_key") == dedup_key]


def _trunk_event(trunk: str, status: str, at: datetime) -> dict[str, Any]:
    body = sample("genesys-trunk-down.json")
    body["event"] = {**body["event"], "trunkId": trunk, "status": status, "timestamp": at.isoformat()}
    return body


def test_ztp_retry_storm_files_one_work_item(stack: dict, clean_sandbox) -> None:
    sb = Sandbox(clean_sandbox.url)
    event = unique_ztp()
    answers = [_post(stack, "ztp", event) for _ in range(50)]  # the same event, a new webhook id each time
    assert {a.status_code for a in answers} <= {200, 202}
    accepted = [a.json()["event_id"] for a in answers if a.status_code == 202]
    # an orchestrator that also renews ztp_event_id on every retry: only the alert_key window can tell
    renewed = [_accepted(stack, "ztp", {**event, "ztp_event_id": f"evt_{uuid.uuid4().hex[:20]}"}) for _ in range(20)]
    traces = _final(stack, accepted + renewed)
    outcomes = [t["outcome"] for t in traces.values()]
    assert outcomes.count("dispatched") == 1, outcomes
    assert set(outcomes) == {"dispatched", "duplicate"}
    items = [w for w in sb.workitems() if event["device_mac"] in json.dumps(w)]
    [dispatched] = [e for e, t in traces.items() if t["outcome"] == "dispatched"]
    assert len(items) == 1 and items[0]["externalTag"] == f"switchboard:{dispatched}:genesys_workitem", items
    merged = [t for t in traces.values() if t["outcome"] == "duplicate"]
    assert all("merged into the incident of event" in t["reason"] for t in merged)


def _flap(stack: dict, trunk: str, cycles: int, end: str) -> tuple[list[str], float]:
    """DOWN then UP/DOWN ``cycles`` times ending on ``end``; returns the event ids and when the first
    DOWN was accepted."""
    start = datetime.now(UTC)
    states = ["DOWN"] + ["UP", "DOWN"] * cycles
    if states[-1] != end:
        states.append(end)
    ids, first_at = [], 0.0
    for i, state in enumerate(states):
        ids.append(_accepted(stack, "genesys", _trunk_event(trunk, state, start + timedelta(milliseconds=10 * i))))
        if i == 0:
            first_at = time.time()
    return ids, first_at


def test_flapping_trunk_pages_once_and_resolves_once_after_the_cooldown(stack: dict, clean_sandbox) -> None:
    sb = Sandbox(clean_sandbox.url)
    up_trunk, down_trunk = f"trunk-flap-up-{uuid.uuid4().hex[:6]}", f"trunk-flap-down-{uuid.uuid4().hex[:6]}"
    up_ids, up_first = _flap(stack, up_trunk, 20, "UP")
    down_ids, _ = _flap(stack, down_trunk, 20, "DOWN")
    assert time.time() - up_first < COOLDOWN_S, "the flapping took longer than the cooldown: test is not valid"
    up_key = alert_key("genesys-cloud", "trunk_status", up_trunk)
    down_key = alert_key("genesys-cloud", "trunk_status", down_trunk)
    traces = _final(stack, up_ids + down_ids, timeout=COOLDOWN_S + 60)
    # the trunk that ended UP: one trigger, then one resolve, sent once its cooldown ended
    events = _pd(sb, up_key)
    actions = [e["json"]["event_action"] for e in events]
    assert actions == ["trigger", "resolve"], actions
    assert events[1]["at"] >= up_first + COOLDOWN_S - 0.5, (events[1]["at"] - up_first)
    # the trunk that ended DOWN: one trigger and nothing else
    assert [e["json"]["event_action"] for e in _pd(sb, down_key)] == ["trigger"]
    outcomes = [traces[e]["outcome"] for e in up_ids]  # parallel workers: which UP delivers may vary
    assert outcomes.count("dispatched") == 2 and set(outcomes) <= {"dispatched", "suppressed", "duplicate"}
    assert any("flapping" in s.get("reason", "") for t in traces.values() for s in t["stages"])
    incident = stack["redis"].hgetall(f"{stack['keys'].prefix}incident:{up_key}")
    assert incident["state"] == "resolved" and incident["status"] == "resolved"


def test_queue_alerts_behind_a_failed_trunk_become_one_incident(stack: dict, clean_sandbox) -> None:
    sb = Sandbox(clean_sandbox.url)
    trunk, queues = stack["trunk"], stack["queues"]
    trunk_event = _accepted(stack, "genesys", _trunk_event(trunk, "DOWN", datetime.now(UTC)))
    assert _final(stack, [trunk_event])[trunk_event]["outcome"] == "dispatched"
    started = time.time()
    ids = []
    for i in range(200):
        body = sample("genesys-queue-abandon.json")
        body["event"] = {**body["event"], "queueId": queues[i % QUEUES], "queueName": f"Queue {i % QUEUES}",
                         "value": 0.15 + (i % 7) / 100, "timestamp": datetime.now(UTC).isoformat()}
        ids.append(_accepted(stack, "genesys", body))
    assert time.time() - started < 60
    traces = _final(stack, ids)
    assert {t["outcome"] for t in traces.values()} <= {"suppressed", "duplicate"}
    trunk_key = alert_key("genesys-cloud", "trunk_status", trunk)
    queue_keys = {alert_key("genesys-cloud", "abandon_rate", q) for q in queues}
    sent = sb.requests("/v2/enqueue")
    assert not [r for r in sent if r["json"].get("dedup_key") in queue_keys], "a queue alert paged on its own"

    def update_listing_all() -> dict | None:
        for r in _pd(sb, trunk_key):
            details = r["json"].get("payload", {}).get("custom_details", {}).get("attributes", {})
            if set(details.get("attached_entities", [])) == set(queues):
                return r["json"]
        return None

    update = wait_for(update_listing_all, 30, 0.2, "the trunk incident updated with its 40 queues")
    assert trunk in update["payload"]["summary"] or update["payload"]["source"] == trunk
    assert update["event_action"] == "trigger"  # PagerDuty adds it to the same incident (same dedup_key)
    triggered = {r["json"]["dedup_key"] for r in sent if r["json"].get("event_action") == "trigger"
                 and r["json"]["dedup_key"] in queue_keys | {trunk_key}}
    assert triggered == {trunk_key}
    suppressed = [t for t in traces.values() if t["outcome"] == "suppressed"]
    assert suppressed and all(f"dependency: {trunk} is firing" in t["reason"] for t in suppressed)
    # the operator's view: the trunk's incident with the queues attached
    out = subprocess.run([sys.executable, "-m", "switchboard.cli", "incidents", "--entity", trunk, "--json"],
                         env=stack["env"], capture_output=True, text=True, timeout=60, check=True)
    [incident] = json.loads(out.stdout)
    assert incident["alert_key"] == trunk_key and incident["state"] == "detected"
    assert set(incident["attached"]) == set(queues) and sum(incident["attached"].values()) == len(suppressed)


def test_a_sensor_is_called_at_most_once_per_suppression_window(stack: dict, clean_sandbox) -> None:
    sb = Sandbox(clean_sandbox.url)
    customer = f"CUST-{uuid.uuid4().hex[:8]}"
    sb.send("PUT", f"/_sandbox/crm/customers/{customer}",
            {"phone": "+15551239999", "doNotDisturb": False, "name": "Test", "timezone": _zone_at_local_hour(11)})
    sensor = f"sensor-{uuid.uuid4().hex[:8]}"
    # the same reading repeated (merged by the dedupe window) and other alert types of the same sensor
    # (other alert_keys: only the rule's suppression window stops them)
    kinds = ["temp_critical"] * 4 + ["humidity_critical", "door_open", "power_loss"]
    ids = [_accepted(stack, "iot", sample("iot-temp-critical.json", sensorId=sensor, alertType=kind,
                                          customerId=customer, idempotencyKey=uuid.uuid4().hex))
           for kind in kinds]
    traces = _final(stack, ids)
    outcomes = [t["outcome"] for t in traces.values()]
    assert outcomes.count("dispatched") == 1, outcomes
    windowed = [t for t in traces.values() if "suppression window" in (t["reason"] or "")]
    # whichever alert type goes first: 3 repeats merged, 3 other types held off by the rule's window
    assert outcomes.count("duplicate") == 3 and len(windowed) == 3, outcomes
    calls = [c for c in sb.get("/_sandbox/genesys/callbacks") if c["data"].get("event_id") in ids]
    assert len(calls) == 1, calls


def _zone_at_local_hour(hour: int) -> str:
    now = datetime.now(UTC)
    offset = (hour - now.hour + 12) % 24 - 12
    return f"Etc/GMT{'-' if offset >= 0 else '+'}{abs(offset)}"  # POSIX names have the sign reversed


def test_every_sample_reaches_the_target_its_readme_names(stack: dict, clean_sandbox) -> None:
    """samples/README.md's table, with alert intelligence on: health samples page PagerDuty (trunk-up resolves
    the trunk-down incident once the flapping cooldown ends), ZTP samples file work items in the named
    queues with the named skills, the IoT sample calls or files a follow-up work item."""
    from switchboard.demo_scenario import FIRST_WAVE

    sb = Sandbox(clean_sandbox.url)
    genesys = stack["config"].vendors["genesys"]
    # the demo names the sandbox's keys; this stack's environment has its own values for the same variables
    key_of = {"sandbox-voice-network": stack["env"]["SWITCHBOARD_PD_KEY_VOICE_NETWORK"],
              "sandbox-cc-ops": stack["env"]["SWITCHBOARD_PD_KEY_CC_OPS"]}
    first = {spec["file"]: _accepted(stack, spec["source"], sample(spec["file"])) for spec in FIRST_WAVE}
    _final(stack, list(first.values()))
    up = _accepted(stack, "genesys", sample("genesys-trunk-up.json"))
    ledger = stack["server"].state.ledger
    assert wait_for(lambda: ledger.trace(up)["outcome"], 30, 0.1, "trunk-up held") == "deferred"
    traces = _final(stack, [*first.values(), up], timeout=COOLDOWN_S + 60)
    assert all(t["outcome"] == "dispatched" for t in traces.values()), {e: t["outcome"] for e, t in traces.items()}
    sent = [r["json"] for r in sb.requests("/v2/enqueue")]
    for spec in FIRST_WAVE:
        event_id = first[spec["file"]]
        if "pd" in spec:
            [event] = [e for e in sent if e.get("payload", {}).get("custom_details", {}).get("event_id") == event_id]
            assert event["event_action"] == "trigger" and event["routing_key"] == key_of[spec["pd"]["routing_key"]]
            assert event["payload"]["severity"] == spec["pd"]["severity"]
        elif "workitem" in spec:
            [item] = sb.workitems(externalTag=f"switchboard:{event_id}:genesys_workitem")
            assert item["queueId"] == genesys["queues"][spec["workitem"]["queue"]], spec["file"]
            assert item.get("skillIds", []) == [genesys["skills"][s] for s in spec["workitem"]["skills"]], spec["file"]
        elif "call" in spec:
            calls = [c for c in sb.get("/_sandbox/genesys/callbacks") if c["data"].get("event_id") == event_id]
            items = sb.workitems(externalTag=f"switchboard:{event_id}:iot_call")
            assert len(calls) + len(items) == 1
    down_key = traces[first["genesys-trunk-down.json"]]["alert_key"]
    assert traces[up]["alert_key"] == down_key
    resolves = [e for e in sent if e.get("event_action") == "resolve" and e["dedup_key"] == down_key]
    assert len(resolves) == 1 and resolves[0]["routing_key"] == key_of["sandbox-voice-network"]


def test_a_business_units_alerts_within_the_grouping_window_become_one_incident(stack: dict, clean_sandbox) -> None:
    sb = Sandbox(clean_sandbox.url)
    uid = uuid.uuid4().hex[:6]
    queues = [f"cx-queue-group-{uid}-{i}" for i in range(6)]  # unmapped: they group under "unmapped"
    ids = []
    for queue in queues:
        body = sample("cxone-queue-status.json")
        body["data"] = {**body["data"], "queueId": queue, "occurredAt": datetime.now(UTC).isoformat()}
        ids.append(_accepted(stack, "cxone", body))
    traces = _final(stack, ids)
    outcomes = sorted(t["outcome"] for t in traces.values())
    assert outcomes == ["dispatched"] + ["suppressed"] * 5, outcomes
    [lead] = [t for t in traces.values() if t["outcome"] == "dispatched"]
    assert all(f"joined incident {lead['alert_key']}" in t["reason"] for t in traces.values() if t is not lead)
    keys = {alert_key("nice-cxone", "wait_time_seconds", q): q for q in queues}
    triggered = {r["json"]["dedup_key"] for r in sb.requests("/v2/enqueue") if r["json"]["dedup_key"] in keys}
    assert triggered == {lead["alert_key"]}  # one incident

    def listing() -> list | None:
        for r in _pd(sb, lead["alert_key"]):
            attached = r["json"]["payload"]["custom_details"]["attributes"].get("attached_entities")
            if attached:
                return attached
        return None

    attached = wait_for(listing, 30, 0.2, "the group's incident updated with its members")
    assert sorted(attached) == sorted(q for k, q in keys.items() if k != lead["alert_key"])
