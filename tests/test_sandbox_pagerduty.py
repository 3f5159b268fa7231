"""Vendor sandbox, PagerDuty Events v2 emulator: real SandboxServer, real HTTP through ``requests``."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from clients.pagerduty import PagerDutyClient
from switchboard.waiting import wait_for
from vendor_sandbox.credentials import PAGERDUTY_API_TOKEN
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


# --- REST API v2: GET /incidents (what reconciliation reads) and the human status control -----------------

REST_HEADERS = {"Authorization": f"Token token={PAGERDUTY_API_TOKEN}",
                "Accept": "application/vnd.pagerduty+json;version=2"}


def incidents(url: str, headers: dict[str, str] | None = None, **params: Any) -> requests.Response:
    return requests.get(f"{url}/incidents", params=params, headers=REST_HEADERS if headers is None else headers,
                        timeout=5)


def human(url: str, dedup_key: str, status: str, **extra: Any) -> requests.Response:
    return requests.put(f"{url}/_sandbox/pagerduty/alerts/{dedup_key}", json={"status": status, **extra}, timeout=5)


def test_rest_incidents_follow_events_and_have_the_documented_shape(url: str) -> None:
    assert enqueue(url, trigger()).status_code == 202
    body = incidents(url, incident_key="ztp-42").json()
    assert (body["limit"], body["offset"], body["more"], body["total"]) == (25, 0, False, None)
    [incident] = body["incidents"]
    assert incident["type"] == "incident" and incident["incident_key"] == "ztp-42"
    assert incident["status"] == "triggered" and incident["title"] == "Device 00:11:22 failed ZTP"
    assert len(incident["id"]) == 7 and incident["id"].startswith("P") and incident["incident_number"] == 1
    assert incident["created_at"].endswith("Z") and incident["last_status_change_at"] == incident["created_at"]
    assert incident["service"]["type"] == "service_reference" and ROUTING_KEY not in str(incident)
    assert incident["summary"] == "[#1] Device 00:11:22 failed ZTP" and incident["resolved_at"] is None
    ack = {"routing_key": ROUTING_KEY, "event_action": "acknowledge", "dedup_key": "ztp-42"}
    enqueue(url, ack)
    assert incidents(url, incident_key="ztp-42").json()["incidents"][0]["status"] == "acknowledged"
    enqueue(url, {**ack, "event_action": "resolve"})
    enqueue(url, trigger())  # after a resolve, a trigger opens a new incident
    listed = incidents(url, incident_key="ztp-42", total="true").json()
    assert [i["status"] for i in listed["incidents"]] == ["resolved", "triggered"] and listed["total"] == 2
    assert listed["incidents"][0]["resolved_at"] is not None
    assert listed["incidents"][0]["last_status_change_by"]["type"] == "service_reference"
    assert incidents(url, incident_key="unknown").json()["incidents"] == []


def test_rest_filters_sorting_and_pagination(url: str) -> None:
    for i in range(3):
        enqueue(url, trigger(dedup_key=f"p{i}"))
    human(url, "p1", "resolved")
    everything = incidents(url).json()["incidents"]
    assert [i["incident_key"] for i in everything] == ["p0", "p1", "p2"]
    newest_first = incidents(url, sort_by="created_at:desc").json()["incidents"]
    assert [i["incident_key"] for i in newest_first] == ["p2", "p1", "p0"]
    assert [i["incident_key"] for i in incidents(url, **{"statuses[]": "resolved"}).json()["incidents"]] == ["p1"]
    page = incidents(url, limit=2, offset=1).json()
    assert [i["incident_key"] for i in page["incidents"]] == ["p1", "p2"] and page["more"] is False
    assert incidents(url, limit=2).json()["more"] is True
    for bad in ({"limit": 101}, {"limit": "x"}, {"offset": 9950, "limit": 100}, {"statuses[]": "open"},
                {"sort_by": "urgency:sideways"}):
        answer = incidents(url, **bad)
        assert answer.status_code == 400 and answer.json()["error"]["code"] == 2001, bad


@pytest.mark.parametrize("headers", [
    {},
    {"Accept": REST_HEADERS["Accept"]},
    {"Authorization": f"Token token={PAGERDUTY_API_TOKEN}"},  # no version-2 Accept header
    {**REST_HEADERS, "Authorization": "Token token=wrong"},
    {**REST_HEADERS, "Authorization": f"Bearer {PAGERDUTY_API_TOKEN}"},
], ids=["none", "no-token", "no-accept", "wrong-token", "bearer"])
def test_rest_requires_the_token_and_the_version_header(url: str, headers: dict[str, str]) -> None:
    answer = incidents(url, headers=headers)
    assert answer.status_code == 401
    assert answer.json() == {"error": {"message": "Authentication failed", "code": 2006}}
    params = {"vendor": "pagerduty_api", "all": "1"}
    assert [e["status"] for e in requests.get(f"{url}/_sandbox/requests", params=params, timeout=5).json()] == [401]


def test_rest_faults_are_scriptable(url: str) -> None:
    requests.post(f"{url}/_sandbox/faults/pagerduty_api", json={"script": [{"status": 503, "count": 1}]}, timeout=5)
    assert incidents(url).status_code == 503
    assert incidents(url).status_code == 200
    assert enqueue(url, trigger()).status_code == 202  # the Events API has its own faults


def test_a_human_acknowledges_and_resolves_in_the_web_ui(url: str) -> None:
    enqueue(url, trigger())
    acked = human(url, "ztp-42", "acknowledged")
    assert acked.status_code == 200 and acked.json()["status"] == "acknowledged"
    [incident] = incidents(url, incident_key="ztp-42").json()["incidents"]
    assert incident["status"] == "acknowledged" and incident["last_status_change_by"]["type"] == "user_reference"
    assert human(url, "ztp-42", "resolved").json()["status"] == "resolved"
    assert human(url, "ztp-42", "resolved").status_code == 404  # nothing open any more
    late = {"routing_key": ROUTING_KEY, "event_action": "resolve", "dedup_key": "ztp-42"}
    assert enqueue(url, late).status_code == 202  # PagerDuty accepts it and does nothing
    assert [a["status"] for a in alerts(url)] == ["resolved"]
    enqueue(url, trigger())
    assert [a["status"] for a in alerts(url)] == ["resolved", "triggered"]
    assert human(url, "ztp-42", "snoozed").status_code == 400
    assert human(url, "never", "resolved").status_code == 404
    enqueue(url, trigger(routing_key="other-key"))
    assert human(url, "ztp-42", "resolved").status_code == 400  # two services: say which
    assert human(url, "ztp-42", "resolved", routing_key="other-key").status_code == 200


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
        # It keeps connections open as a vendor does, and our client reuses its connection: every event
        # arrives from one client port (a client or server that closed them would show one port per event).
        client = PagerDutyClient(base)
        for n in range(3):
            assert client.enqueue(trigger(dedup_key=f"keep-{n}"))["status"] == "success"
        seen = requests.get(f"{base}/_sandbox/requests", params={"vendor": "pagerduty"}, timeout=5).json()
        assert [e["json"]["dedup_key"] for e in seen] == ["keep-0", "keep-1", "keep-2"]
        assert len({e["peer"] for e in seen}) == 1, [e["peer"] for e in seen]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()


def test_main_refuses_a_busy_port_at_once() -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        started = time.monotonic()
        done = subprocess.run([sys.executable, "-m", "vendor_sandbox", "--port", str(port), "--quiet"],
                              capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)},
                              cwd=ROOT, timeout=30)
    assert done.returncode == 2, done.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr
    assert time.monotonic() - started < 5  # not gunicorn's seconds of retrying
