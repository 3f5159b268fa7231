"""End to end through a real Celery worker on both brokers: signed webhook in, PagerDuty call out."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid

import pytest
import requests

from switchboard.dead_letters import DeadLetters
from switchboard.signatures import sign_hmac
from switchboard.store import redis_client
from switchboard.waiting import wait_for
from tests.helpers import ROOT

SAMPLES = ROOT / "samples"


def post_genesys(ctx: dict, body: bytes) -> str:
    headers = {"Content-Type": "application/json", "X-Genesys-Signature": sign_hmac(body, "genesys-test-secret"),
               "X-Request-Id": uuid.uuid4().hex}
    r = requests.post(f"{ctx['url']}/webhooks/genesys", data=body, headers=headers, timeout=10)
    assert r.status_code == 202, r.text
    return r.json()["event_id"]


def unique_trunk(name: str, trunk: str) -> bytes:
    data = json.loads((SAMPLES / name).read_bytes())
    data["event"]["trunkId"] = trunk
    return json.dumps(data).encode()


def wait_outcome(ctx: dict, event_id: str, timeout: float = 30) -> dict:
    ledger = ctx["server"].state.ledger
    return wait_for(lambda: (t := ledger.trace(event_id)) and t["outcome"] and t, timeout, 0.05,
                    f"outcome of {event_id}")


def cli_trace(ctx: dict, event_id: str) -> dict:
    out = subprocess.run([sys.executable, "-m", "switchboard.cli", "trace", event_id], env=ctx["env"],
                         capture_output=True, text=True, timeout=30, check=True)
    return json.loads(out.stdout)


def pd_events(sandbox, **match) -> list[dict]:
    entries = requests.get(f"{sandbox.url}/_sandbox/requests", params={"path": "/v2/enqueue"}, timeout=5).json()
    return [e["json"] for e in entries if all(e["json"].get(k) == v for k, v in match.items())]


def test_trunk_down_then_up_pages_then_resolves(pipeline: dict, clean_sandbox) -> None:
    trunk = f"trunk-{uuid.uuid4().hex[:8]}"
    down_id = post_genesys(pipeline, unique_trunk("genesys-trunk-down.json", trunk))
    down = wait_outcome(pipeline, down_id)
    up_id = post_genesys(pipeline, unique_trunk("genesys-trunk-up.json", trunk))
    up = wait_outcome(pipeline, up_id)

    assert down["alert_key"] == up["alert_key"]
    events = pd_events(clean_sandbox, dedup_key=down["alert_key"])
    assert [e["event_action"] for e in events] == ["trigger", "resolve"]
    trigger, resolve = events
    assert trigger["payload"]["severity"] == "critical"
    assert trigger["routing_key"] == resolve["routing_key"] == "rk-default"  # unmapped trunk -> default key
    assert resolve == {"routing_key": "rk-default", "event_action": "resolve", "dedup_key": down["alert_key"]}
    alerts = requests.get(f"{clean_sandbox.url}/_sandbox/pagerduty/alerts",
                          params={"dedup_key": down["alert_key"]}, timeout=5).json()
    assert [a["status"] for a in alerts] == ["resolved"]

    for event_id in (down_id, up_id):
        trace = cli_trace(pipeline, event_id)
        assert trace["outcome"] == "dispatched"
        assert [s["stage"] for s in trace["stages"]] == ["normalize", "dedupe", "enrich", "gate", "route",
                                                          "dispatch:pagerduty"]
        assert trace["targets"]["pagerduty"]["result"] == "dispatched"


def test_mapped_trunk_uses_its_business_unit_key_and_links(pipeline: dict, clean_sandbox) -> None:
    event_id = post_genesys(pipeline, (SAMPLES / "genesys-trunk-down.json").read_bytes())
    trace = wait_outcome(pipeline, event_id)
    [event] = pd_events(clean_sandbox, dedup_key=trace["alert_key"])
    assert event["routing_key"] == "rk-voice"
    assert event["payload"]["group"] == "voice-network"
    assert event["links"][0]["href"].endswith("var-trunk=trunk-us-east-01")


def test_vendor_5xx_is_retried_then_dispatched(pipeline: dict, clean_sandbox) -> None:
    requests.post(f"{clean_sandbox.url}/_sandbox/faults/pagerduty",
                  json={"script": [{"status": 503, "count": 2}]}, timeout=5).raise_for_status()
    event_id = post_genesys(pipeline, unique_trunk("genesys-trunk-down.json", f"t-{uuid.uuid4().hex[:6]}"))
    trace = wait_outcome(pipeline, event_id)
    assert trace["outcome"] == "dispatched"
    results = [s["result"] for s in trace["stages"] if s["stage"] == "dispatch:pagerduty"]
    assert results == ["retry", "retry", "dispatched"]
    assert len(pd_events(clean_sandbox, dedup_key=trace["alert_key"])) == 1


def test_vendor_429_honours_retry_after(pipeline: dict, clean_sandbox) -> None:
    requests.post(f"{clean_sandbox.url}/_sandbox/faults/pagerduty",
                  json={"script": [{"status": 429, "count": 1, "retry_after": 1}]}, timeout=5).raise_for_status()
    event_id = post_genesys(pipeline, unique_trunk("genesys-trunk-down.json", f"t-{uuid.uuid4().hex[:6]}"))
    trace = wait_outcome(pipeline, event_id)
    retry = next(s for s in trace["stages"] if s.get("result") == "retry")
    assert retry["countdown_s"] >= 1.0  # Retry-After wins over the (fast) backoff
    assert trace["outcome"] == "dispatched"


def test_vendor_400_dead_letters_at_once_with_the_error(pipeline: dict, clean_sandbox) -> None:
    requests.post(f"{clean_sandbox.url}/_sandbox/faults/pagerduty",
                  json={"script": [{"status": 400, "count": 1, "body": {"status": "invalid event"}}]},
                  timeout=5).raise_for_status()
    event_id = post_genesys(pipeline, unique_trunk("genesys-trunk-down.json", f"t-{uuid.uuid4().hex[:6]}"))
    trace = wait_outcome(pipeline, event_id)
    assert trace["outcome"] == "dead_lettered"
    assert [s["result"] for s in trace["stages"] if s["stage"].startswith("dispatch")] == ["dead_lettered"]
    dlq = DeadLetters(redis_client(pipeline["env"]["SWITCHBOARD_REDIS_URL"]), pipeline["keys"])
    [entry] = [e for e in dlq.list(10_000) if e["event_id"] == event_id]
    assert "HTTP 400" in entry["error"] and entry["target"] == "pagerduty"
    assert entry["request"]["routing_key"] == "***"  # credentials never listed


def test_exhausted_retries_dead_letter(pipeline: dict, clean_sandbox) -> None:
    requests.post(f"{clean_sandbox.url}/_sandbox/faults/pagerduty",
                  json={"failure_rate": 1.0, "failure_status": 500}, timeout=5).raise_for_status()
    event_id = post_genesys(pipeline, unique_trunk("genesys-trunk-down.json", f"t-{uuid.uuid4().hex[:6]}"))
    trace = wait_outcome(pipeline, event_id)
    assert trace["outcome"] == "dead_lettered"
    attempts = [s for s in trace["stages"] if s["stage"] == "dispatch:pagerduty"]
    assert [s["result"] for s in attempts] == ["retry", "retry", "retry", "dead_lettered"]  # max_attempts 4
    assert pd_events(clean_sandbox, dedup_key=trace["alert_key"]) == []


def test_accounting_accepted_equals_outcomes(pipeline: dict, clean_sandbox) -> None:
    ids = [post_genesys(pipeline, unique_trunk("genesys-trunk-down.json", f"t-{uuid.uuid4().hex[:6]}"))
           for _ in range(20)]
    for event_id in ids:
        wait_outcome(pipeline, event_id)
    counts = pipeline["server"].state.ledger.counts()
    # every earlier test waited for its outcomes too, so the whole run must balance
    assert counts["accepted"] == sum(v for k, v in counts.items() if k != "accepted")
    assert len(pd_events(clean_sandbox)) == 20


@pytest.mark.parametrize(("grain", "task"), [("fused", "switchboard.ingest"), ("chain", "switchboard.stage.route")])
def test_each_grain_runs_every_stage(pipeline: dict, clean_sandbox, grain: str, task: str) -> None:
    from switchboard.config import load_config
    from switchboard.settings import load_settings
    from tests.helpers import ReceiverServer

    config = load_config(load_settings(pipeline["env"]).config_dir)  # a fresh copy: safe to change
    config.service["pipeline_grain"] = grain
    with ReceiverServer(pipeline["env"], config) as fused:
        event_id = post_genesys({**pipeline, "url": fused.url},
                                unique_trunk("genesys-trunk-down.json", f"t-{uuid.uuid4().hex[:6]}"))
        trace = wait_outcome(pipeline, event_id)
    assert trace["outcome"] == "dispatched"
    assert [s["stage"] for s in trace["stages"]] == ["normalize", "dedupe", "enrich", "gate", "route",
                                                      "dispatch:pagerduty"]
    assert len(pd_events(clean_sandbox, dedup_key=trace["alert_key"])) == 1
    # fused: one switchboard.ingest task ran the stages; chain: a task per stage (the last one is route)
    log_path = pipeline["worker"].log_path
    wait_for(lambda: f"Task {task}[" in log_path.read_text(), 10, 0.1, f"{task} in the worker log")
