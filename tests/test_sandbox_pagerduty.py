"""Vendor sandbox, PagerDuty Events v2 emulator: real SandboxServer, real HTTP through ``requests``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from switchboard.waiting import wait_for
from vendor_sandbox.faults import RateLimiter

ROUTING_KEY = "R0UT1NGKEY0000000000000000000001"
ROOT = Path(__file__).resolve().parents[1]


def trigger(**overrides: Any) -> dict[str, Any]:
    event = {
        "routing_key": ROUTING_KEY,
        "event_action": "trigger",
        "dedup_key": "ztp-42",
        "payload": {"summary": "Device 00:11:22 failed ZTP", "source": "ztp", "severity": "critical"},
    }
    event.update(overrides)
    return event


def enqueue(url: str, event: Any, path: str = "/v2/enqueue") -> requests.Response:
    return requests.post(f"{url}{path}", json=event, timeout=5)


def recorded(url: str, *, all_: bool = False, path: str = "/v2/enqueue") -> list[dict[str, Any]]:
    params = {"vendor": "pagerduty", "path": path, **({"all": "1"} if all_ else {})}
    response = requests.get(f"{url}/_sandbox/requests", params=params, timeout=5)
    assert response.status_code == 200
    return response.json()


def alerts(url: str) -> list[dict[str, Any]]:
    return requests.get(f"{url}/_sandbox/pagerduty/alerts", timeout=5).json()


def test_health_and_binding(url: str) -> None:
    assert url.startswith("http://127.0.0.1:")
    assert requests.get(f"{url}/_sandbox/health", timeout=5).json() == {"status": "ok"}


def test_valid_trigger_is_accepted_recorded_and_opens_an_alert(url: str) -> None:
    event = trigger(payload={**trigger()["payload"], "timestamp": "2015-07-17T08:42:58.315+0000"})
    response = enqueue(url, event)
    assert response.status_code == 202
    assert response.json() == {"status": "success", "message": "Event processed", "dedup_key": "ztp-42"}
    [entry] = recorded(url)
    assert entry["json"] == event and entry["status"] == 202 and entry["method"] == "POST"
    assert entry["vendor"] == "pagerduty" and entry["path"] == "/v2/enqueue"
    assert entry["headers"]["content-type"] == "application/json"
    assert isinstance(entry["at"], float) and abs(entry["at"] - time.time()) < 60
    [alert] = alerts(url)
    assert (alert["routing_key"], alert["dedup_key"], alert["status"]) == (ROUTING_KEY, "ztp-42", "triggered")


def test_trigger_without_dedup_key_gets_a_generated_one(url: str) -> None:
    event = trigger()
    del event["dedup_key"]
    dedup_key = enqueue(url, event).json()["dedup_key"]
    assert len(dedup_key) == 32 and int(dedup_key, 16) >= 0
    assert alerts(url)[0]["dedup_key"] == dedup_key


LONG = "x" * 1025


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        ({"routing_key": ROUTING_KEY, "event_action": "trigger"}, "$: 'payload' is a required property"),
        (trigger(payload={**trigger()["payload"], "severity": "bad"}), "$.payload.severity: 'bad' is not one of"),
        (trigger(payload={**trigger()["payload"], "summary": LONG}), "$.payload.summary: length 1025 exceeds"),
        ({"routing_key": ROUTING_KEY, "event_action": "resolve"}, "$: 'dedup_key' is a required property"),
        (trigger(images=[{"src": "http://example.com/a.png"}]), "$.images[0].src: 'http://example.com/a.png'"),
        (trigger(payload={**trigger()["payload"], "timestamp": "2024-13-45T99:00:00Z"}), "$.payload.timestamp"),
        (trigger(event_action="escalate"), "$.event_action: 'escalate' is not one of"),
        (trigger(dedup_key="k" * 256), "$.dedup_key: length 256 exceeds maxLength 255"),
        ([trigger()], "$: [{"),
    ],
    ids=["no-payload", "severity", "summary-long", "resolve-no-dedup", "image-http", "timestamp", "action",
         "dedup-long", "not-object"],
)
def test_schema_violations_are_400_and_not_accepted(url: str, event: Any, expected: str) -> None:
    response = enqueue(url, event)
    assert response.status_code == 400
    body = response.json()
    assert (body["status"], body["message"]) == ("invalid event", "Event object is invalid")
    assert any(error.startswith(expected) for error in body["errors"]), body["errors"]
    assert recorded(url) == []
    assert [e["status"] for e in recorded(url, all_=True)] == [400]
    assert alerts(url) == []


def test_every_schema_error_is_reported(url: str) -> None:
    event = trigger(payload={"summary": LONG, "severity": "loud"})
    errors = enqueue(url, event).json()["errors"]
    assert any(e.startswith("$.payload.summary: length 1025") for e in errors)
    assert any(e.startswith("$.payload.severity: 'loud'") for e in errors)
    assert "$.payload: 'source' is a required property" in errors


def test_body_must_be_json(url: str) -> None:
    headers = {"Content-Type": "application/json"}
    bad = requests.post(f"{url}/v2/enqueue", data="not json{", headers=headers, timeout=5)
    assert bad.status_code == 400 and bad.json()["status"] == "invalid event"
    assert "not valid JSON" in bad.json()["errors"][0]
    plain = requests.post(f"{url}/v2/enqueue", data="{}", headers={"Content-Type": "text/plain"}, timeout=5)
    assert plain.status_code == 415 and "application/json" in plain.json()["errors"][0]
    big = trigger(payload={**trigger()["payload"], "custom_details": {"blob": "y" * (512 * 1024)}})
    assert enqueue(url, big).status_code == 413
    assert recorded(url) == []
    assert [e["status"] for e in recorded(url, all_=True)] == [400, 415, 413]


def test_rate_limit_per_routing_key(url: str) -> None:
    configured = requests.post(f"{url}/_sandbox/ratelimit/pagerduty", json={"limit": 3, "window_s": 60}, timeout=5)
    assert configured.json() == {"vendor": "pagerduty", "limit": 3, "window_s": 60.0}
    assert [enqueue(url, trigger(dedup_key=f"k{i}")).status_code for i in range(3)] == [202, 202, 202]
    throttled = enqueue(url, trigger(dedup_key="k3"))
    assert throttled.status_code == 429
    assert 1 <= int(throttled.headers["Retry-After"]) <= 60
    assert throttled.json() == {
        "status": "throttle event",
        "message": "Requests for this service are arriving too quickly. Please retry later.",
    }
    assert enqueue(url, trigger(routing_key="another-key")).status_code == 202
    assert len(recorded(url)) == 4
    assert [e["status"] for e in recorded(url, all_=True)].count(429) == 1


def test_default_rate_limit_is_120_per_60s(url: str) -> None:
    limit = requests.get(f"{url}/_sandbox/ratelimit/pagerduty", timeout=5).json()
    assert (limit["limit"], limit["window_s"]) == (120, 60.0)


def test_sliding_window_frees_slots_as_they_age() -> None:
    now = [0.0]
    limiter = RateLimiter(clock=lambda: now[0])
    limiter.configure("pagerduty", 2, 10)
    assert limiter.hit("pagerduty", "a") is None
    now[0] = 4.0
    assert limiter.hit("pagerduty", "a") is None
    now[0] = 5.0
    assert limiter.hit("pagerduty", "a") == 5  # the t=0 slot frees at t=10
    assert limiter.hit("pagerduty", "b") is None  # other keys have their own window
    now[0] = 10.01
    assert limiter.hit("pagerduty", "a") is None
    now[0] = 13.9
    assert limiter.hit("pagerduty", "a") == 1  # t=4 frees at 14: never less than 1


def test_scripted_fault_then_success(url: str) -> None:
    script = {"script": [{"status": 503, "count": 2, "retry_after": 2}]}
    assert requests.post(f"{url}/_sandbox/faults/pagerduty", json=script, timeout=5).status_code == 200
    answers = [enqueue(url, trigger()) for _ in range(3)]
    assert [a.status_code for a in answers] == [503, 503, 202]
    assert [a.headers.get("Retry-After") for a in answers] == ["2", "2", None]
    assert [e["status"] for e in recorded(url, all_=True)] == [503, 503, 202]
    assert len(recorded(url)) == 1
    assert requests.get(f"{url}/_sandbox/faults/pagerduty", timeout=5).json()["script"] == []


def test_fault_body_failure_rate_and_latency(url: str) -> None:
    spec = {"script": [{"status": 500, "body": {"error": "boom"}}], "failure_rate": 1.0, "failure_status": 502}
    requests.post(f"{url}/_sandbox/faults/pagerduty", json=spec, timeout=5)
    first = enqueue(url, trigger())
    assert (first.status_code, first.json()) == (500, {"error": "boom"})
    assert enqueue(url, trigger()).status_code == 502
    requests.post(f"{url}/_sandbox/faults/pagerduty", json={"failure_rate": 0.0, "latency_ms": 300}, timeout=5)
    started = time.monotonic()
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.post(f"{url}/v2/enqueue", json=trigger(), timeout=0.1)
    # The slow answer is still sent (and recorded) after the client gave up: wait for it so that it
    # cannot leak into the next test, and check it really was held back for the latency.
    wait_for(lambda: len(recorded(url, all_=True)) >= 3, 5, 0.01, "the slow answer")
    held_back = time.monotonic() - started
    [slow] = recorded(url)
    assert slow["status"] == 202 and held_back >= 0.29


def test_invalid_control_requests_are_refused(url: str) -> None:
    for spec in ({"script": [{"count": 2}]}, {"failure_rate": 2}, {"latency": 5}, {"script": [{"status": 99}]}):
        assert requests.post(f"{url}/_sandbox/faults/pagerduty", json=spec, timeout=5).status_code == 400
    assert requests.post(f"{url}/_sandbox/ratelimit/pagerduty", json={"limit": 0, "window_s": 1},
                         timeout=5).status_code == 400
    assert enqueue(url, trigger()).status_code == 202


def test_alert_lifecycle_and_orphans(url: str) -> None:
    for action in ("trigger", "trigger", "acknowledge", "resolve", "trigger"):
        event = trigger() if action == "trigger" else {
            "routing_key": ROUTING_KEY, "event_action": action, "dedup_key": "ztp-42"}
        assert enqueue(url, event).status_code == 202
    first, second = alerts(url)
    assert first["status"] == "resolved"
    assert first["events"] == ["trigger", "trigger", "acknowledge", "resolve"]
    assert (second["status"], second["events"]) == ("triggered", ["trigger"])
    unknown = {"routing_key": ROUTING_KEY, "event_action": "resolve", "dedup_key": "never-triggered"}
    assert enqueue(url, unknown).status_code == 202
    assert len(alerts(url)) == 2
    orphans = requests.get(f"{url}/_sandbox/pagerduty/orphans", timeout=5).json()
    assert [(o["dedup_key"], o["event_action"]) for o in orphans] == [("never-triggered", "resolve")]
    assert recorded(url)[-1]["json"] == unknown


def test_change_events(url: str) -> None:
    change = {"routing_key": ROUTING_KEY, "payload": {"summary": "Deployed v2", "source": "ci"}}
    response = enqueue(url, change, path="/v2/change/enqueue")
    assert (response.status_code, response.json()["message"]) == (202, "Change event processed")
    missing = enqueue(url, {"routing_key": ROUTING_KEY, "payload": {"source": "ci"}}, path="/v2/change/enqueue")
    assert missing.status_code == 400
    assert "$.payload: 'summary' is a required property" in missing.json()["errors"]
    assert [e["json"] for e in recorded(url, path="/v2/change/enqueue")] == [change]
    assert alerts(url) == []


def test_reset_clears_records_faults_limits_and_alerts(url: str) -> None:
    requests.post(f"{url}/_sandbox/ratelimit/pagerduty", json={"limit": 1, "window_s": 60}, timeout=5)
    assert enqueue(url, trigger()).status_code == 202
    assert enqueue(url, trigger()).status_code == 429
    requests.post(f"{url}/_sandbox/faults/pagerduty", json={"script": [{"status": 500, "count": 5}]}, timeout=5)
    assert requests.delete(f"{url}/_sandbox/requests", timeout=5).json() == {"status": "reset"}
    assert recorded(url, all_=True) == [] and alerts(url) == []
    assert [enqueue(url, trigger(dedup_key=f"r{i}")).status_code for i in range(2)] == [202, 202]
    assert requests.get(f"{url}/_sandbox/ratelimit/pagerduty", timeout=5).json()["limit"] == 120


def test_main_serves_until_sigterm() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "vendor_sandbox", "--port", "0", "--quiet"],
        stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT,
    )
    try:
        line = proc.stdout.readline()
        assert line.startswith("vendor sandbox listening on http://127.0.0.1:"), line
        base = line.rsplit(" ", 1)[1].strip()
        assert requests.get(f"{base}/_sandbox/health", timeout=5).status_code == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
