"""Reconciliation end to end: a real worker with beat (``reconcile_every_s: 1``), the receiver and the
vendor sandbox. Drift is made the way it happens: a responder acknowledges / resolves in PagerDuty's web
UI (the sandbox's control endpoint), PagerDuty loses a resolve or a trigger. Each time the local incident
state or what PagerDuty received is corrected, re-sends go through the dispatch path with their own
ledger entry, and accepted still equals the sum of outcomes."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import requests

from switchboard.incidents import IncidentStore
from switchboard.runner import free_port
from switchboard.store import Keys
from switchboard.waiting import wait_for
from tests.conftest import REDIS_STATE_URL
from tests.helpers import REDIS_PORT, SECRETS, ReceiverServer, WorkerProcess, config_copy, service_env
from tests.posting import Sandbox, post, sample, wait_outcome

BROKER_DB = 14
ROUTING_KEY = SECRETS["SWITCHBOARD_PD_KEY_DEFAULT"]


@pytest.fixture
def stack(run_id: str, sandbox, state_redis: redis.Redis, tmp_path: Path) -> Iterator[dict]:
    """Receiver + one worker with beat reconciling every second, on its own Redis broker DB and prefix."""
    broker = redis.Redis(host="127.0.0.1", port=REDIS_PORT, db=BROKER_DB)
    broker.flushdb()
    prefix = f"t{run_id}rc{uuid.uuid4().hex[:4]}:"
    every_second = [("reconcile_every_s: 300", "reconcile_every_s: 1")]
    config_dir = config_copy(tmp_path / "config", {"service.yaml": every_second})
    env = service_env(f"redis://127.0.0.1:{REDIS_PORT}/{BROKER_DB}", REDIS_STATE_URL, sandbox.url, prefix,
                      SWITCHBOARD_CONFIG_DIR=str(config_dir), SWITCHBOARD_WORKER_METRICS_PORT=str(free_port()),
                      PROMETHEUS_MULTIPROC_DIR=str(tmp_path))
    with WorkerProcess(env, tmp_path, beat=True) as worker, ReceiverServer(env) as server:
        yield {"env": env, "server": server, "url": server.url, "keys": Keys(prefix), "worker": worker,
               "incidents": IncidentStore(state_redis, prefix)}
    broker.flushdb()


def _trunk_down(stack: dict) -> str:
    """A trunk-down webhook paged through the pipeline; returns its alert_key once PagerDuty has it."""
    body = sample("genesys-trunk-down.json")
    body["event"]["trunkId"] = f"trunk-{uuid.uuid4().hex[:8]}"
    traced = wait_outcome(stack, post(stack, "genesys", body))
    assert traced["outcome"] == "dispatched", traced
    return traced["alert_key"]


def _state(stack: dict, alert_key: str) -> str | None:
    return (stack["incidents"].get(alert_key) or {}).get("state")


def _pd_events(sb: Sandbox, dedup_key: str, action: str) -> list[dict]:
    return [r["json"] for r in sb.requests("/v2/enqueue")
            if r["json"].get("dedup_key") == dedup_key and r["json"]["event_action"] == action]


def _passes(stack: dict) -> int:
    """Reconciliation passes the worker finished so far (from its log)."""
    return len(re.findall(r"Task switchboard\.reconcile\[[^]]+\] succeeded", stack["worker"].log_path.read_text()))


def _two_more_passes(stack: dict) -> None:
    seen = _passes(stack)
    wait_for(lambda: _passes(stack) >= seen + 2, 30, 0.2, "two more reconciliation passes")


def _accounting(stack: dict) -> dict:
    ledger = stack["server"].state.ledger
    counts = wait_for(lambda: (c := ledger.counts())["accepted"] == sum(v for k, v in c.items() if k != "accepted")
                      and c, 30, 0.1, "every accepted event to have its outcome")
    return counts


def test_acknowledged_then_resolved_by_a_human_in_pagerduty(stack: dict, clean_sandbox) -> None:
    sb = Sandbox(clean_sandbox.url)
    alert_key = _trunk_down(stack)
    assert wait_for(lambda: _state(stack, alert_key), 10, 0.1, "the incident record") == "detected"
    sb.send("PUT", f"/_sandbox/pagerduty/alerts/{alert_key}", {"status": "acknowledged"})
    wait_for(lambda: _state(stack, alert_key) == "acknowledged", 30, 0.2, "local state acknowledged")
    sb.send("PUT", f"/_sandbox/pagerduty/alerts/{alert_key}", {"status": "resolved"})
    wait_for(lambda: _state(stack, alert_key) == "resolved", 30, 0.2, "local state resolved")
    assert "resolved in PagerDuty" in stack["incidents"].get(alert_key)["state_reason"]
    _two_more_passes(stack)
    assert _state(stack, alert_key) == "resolved"
    # Agreement now: nothing was sent to PagerDuty on our side but the original trigger.
    assert len(_pd_events(sb, alert_key, "trigger")) == 1 and _pd_events(sb, alert_key, "resolve") == []
    _accounting(stack)


def test_a_lost_resolve_is_sent_again_through_dispatch(stack: dict, clean_sandbox) -> None:
    sb = Sandbox(clean_sandbox.url)
    alert_key = _trunk_down(stack)
    # We delivered a resolve (the record says so) but PagerDuty never got it: its incident is still open.
    record = wait_for(lambda: stack["incidents"].get(alert_key), 10, 0.1, "the incident record")
    resolved = {**record["alert"], "status": "resolved", "event_id": f"evt-lost-{uuid.uuid4().hex[:6]}"}
    stack["incidents"].record_delivery(resolved)
    stack["incidents"].r.hset(stack["incidents"].key(alert_key), mapping={"status": "resolved",
                                                                          "changed_at": time.time()})
    [resend] = wait_for(lambda: _pd_events(sb, alert_key, "resolve"), 30, 0.2, "the re-sent resolve")
    assert resend == {"routing_key": ROUTING_KEY, "event_action": "resolve", "dedup_key": alert_key}
    assert [a["status"] for a in sb.get("/_sandbox/pagerduty/alerts", dedup_key=alert_key)] == ["resolved"]

    event_id = f"reconcile-{alert_key}-1"
    traced = wait_outcome(stack, event_id)
    assert traced["outcome"] == "dispatched" and traced["origin"] == "reconcile"
    assert traced["source"] == "genesys" and traced["reconciles"] == resolved["event_id"]
    assert [s["stage"] for s in traced["stages"]] == ["reconcile", "dispatch:pagerduty"]
    assert traced["stages"][0]["result"] == "resend_resolve" and traced["stages"][0]["vendor_status"] == "triggered"
    shown = subprocess.run([sys.executable, "-m", "switchboard.cli", "trace", event_id], env=stack["env"],
                           capture_output=True, text=True, timeout=60, check=True).stdout
    assert json.loads(shown)["origin"] == "reconcile"

    _two_more_passes(stack)
    assert len(_pd_events(sb, alert_key, "resolve")) == 1  # once: PagerDuty agrees now
    counts = _accounting(stack)
    assert counts["dispatched"] >= 2

    metrics = f"http://127.0.0.1:{stack['env']['SWITCHBOARD_WORKER_METRICS_PORT']}/metrics"
    text = wait_for(lambda: requests.get(metrics, timeout=2).text, 20, 0.2, "the worker's metrics")
    assert 'switchboard_reconcile_corrections_total{action="resend_resolve"} 1.0' in text


def test_a_lost_trigger_is_sent_again(stack: dict, clean_sandbox) -> None:
    sb = Sandbox(clean_sandbox.url)
    alert_key = _trunk_down(stack)
    [first] = _pd_events(sb, alert_key, "trigger")
    wait_for(lambda: _state(stack, alert_key), 10, 0.1, "the incident record")
    sb.send("DELETE", "/_sandbox/requests")  # PagerDuty lost the incident (and the sandbox its records)
    [again] = wait_for(lambda: _pd_events(sb, alert_key, "trigger"), 30, 0.2, "the re-sent trigger")
    assert again["routing_key"] == first["routing_key"] and again["payload"]["summary"] == first["payload"]["summary"]
    assert again["payload"]["custom_details"]["event_id"] == f"reconcile-{alert_key}-1"
    assert [a["status"] for a in sb.get("/_sandbox/pagerduty/alerts", dedup_key=alert_key)] == ["triggered"]
    assert wait_outcome(stack, f"reconcile-{alert_key}-1")["outcome"] == "dispatched"
    _two_more_passes(stack)
    assert len(_pd_events(sb, alert_key, "trigger")) == 1
    assert _state(stack, alert_key) == "detected"
    _accounting(stack)
