"""Vendor sandbox emulators other than PagerDuty (Genesys, CXone, orchestrator, CRM, Slack, Twilio): real
SandboxServer, real HTTP through ``requests``. Common behaviour (recording, injected 5xx, rate limits,
``latency_after_ms``) is checked for every vendor; then each vendor's contract: auth and schema rules."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from switchboard.waiting import wait_for
from tests.sandbox_support import (
    CALLBACKS,
    DIAL,
    RESOLUTIONS,
    SMS,
    TWILIO_MESSAGES,
    WORKITEMS,
    bearer,
    callback,
    control,
    cxone_token,
    genesys_token,
    get_customer,
    post_dial,
    post_resolution,
    post_slack,
    post_sms,
    post_workitem,
    recorded,
    resolution,
    workitem,
)
from vendor_sandbox.credentials import (
    SLACK_WEBHOOK_PATH,
    TWILIO_ACCOUNT_SID,
    TWILIO_AUTH_TOKEN,
)


@dataclass(frozen=True)
class Case:
    """One vendor action: how to perform it, its success status, how many actions the vendor stored."""

    vendor: str
    path: str
    call: Callable[[str], requests.Response]
    ok_status: int
    stored: Callable[[str], int]
    throttle_body: Any  # the 429 body (dict, or text for Slack); None: checked elsewhere


def _count(path: str) -> Callable[[str], int]:
    return lambda url: len(control(url, "GET", path))


CASES = [
    Case("genesys", WORKITEMS, lambda url: post_workitem(url, workitem()), 200, _count("/genesys/workitems"), None),
    Case("genesys", CALLBACKS,
         lambda url: requests.post(f"{url}{CALLBACKS}", json=callback(), headers=bearer(genesys_token(url)), timeout=5),
         200, _count("/genesys/callbacks"), None),
    Case("cxone", DIAL, lambda url: post_dial(url, {"skill": 4711, "phoneNumber": "+15551234567"}), 202,
         _count("/cxone/dials"), None),
    Case("orchestrator", RESOLUTIONS, lambda url: post_resolution(url, resolution()), 200,
         lambda url: len(control(url, "GET", "/orchestrator/resolutions")["resolutions"]), {"error": "rate limited"}),
    Case("crm", "/api/v1/customers/CUST-9981", lambda url: get_customer(url, "CUST-9981"), 200,
         lambda url: len(recorded(url, "crm", all_=False)), {"error": "rate limited"}),
    Case("slack", SLACK_WEBHOOK_PATH, lambda url: post_slack(url, {"text": "ZTP alert unresolved"}), 200,
         _count("/slack/messages"), "rate_limited"),
    Case("twilio", TWILIO_MESSAGES, lambda url: post_sms(url, SMS), 201, _count("/twilio/messages"), None),
]
CASE_IDS = ["genesys-workitem", "genesys-callback", "cxone-dial", "orchestrator", "crm", "slack", "twilio"]


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_happy_path_acts_and_is_recorded(url: str, case: Case) -> None:
    response = case.call(url)
    assert response.status_code == case.ok_status, response.text
    assert case.stored(url) == 1
    [entry] = recorded(url, case.vendor, case.path, all_=False)
    assert entry["status"] == case.ok_status and entry["vendor"] == case.vendor


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_injected_5xx_then_success(url: str, case: Case) -> None:
    control(url, "POST", f"/faults/{case.vendor}", json={"script": [{"status": 503, "retry_after": 2}]})
    failed = case.call(url)
    assert failed.status_code == 503 and failed.headers["Retry-After"] == "2"
    assert case.stored(url) == 0
    assert case.call(url).status_code == case.ok_status
    assert case.stored(url) == 1
    assert [e["status"] for e in recorded(url, case.vendor, case.path)] == [503, case.ok_status]


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_rate_limit_answers_429_with_retry_after(url: str, case: Case) -> None:
    control(url, "POST", f"/ratelimit/{case.vendor}", json={"limit": 1, "window_s": 60})
    assert case.call(url).status_code == case.ok_status
    throttled = case.call(url)
    assert throttled.status_code == 429
    assert 1 <= int(throttled.headers["Retry-After"]) <= 60
    if isinstance(case.throttle_body, str):
        assert throttled.text == case.throttle_body
    elif case.throttle_body is not None:
        assert throttled.json() == case.throttle_body
    assert case.stored(url) == 1
    assert [e["status"] for e in recorded(url, case.vendor, case.path)] == [case.ok_status, 429]


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_latency_after_acts_before_the_slow_answer(url: str, case: Case) -> None:
    control(url, "POST", f"/faults/{case.vendor}", json={"latency_after_ms": 1000})
    with ThreadPoolExecutor(max_workers=1) as pool:
        started = time.monotonic()
        future = pool.submit(case.call, url)
        wait_for(lambda: case.stored(url) == 1, 5, 0.02, "the action to be stored")
        assert recorded(url, case.vendor, case.path, all_=False), "recorded before the answer"
        assert not future.done(), "the answer must still be held back"
        response = future.result(timeout=10)
    assert response.status_code == case.ok_status
    assert time.monotonic() - started >= 0.95


def test_latency_after_in_a_pass_through_script_entry(url: str) -> None:
    script = {"script": [{"pass": True, "latency_after_ms": 600}]}
    described = control(url, "POST", "/faults/orchestrator", json=script)
    assert described["script"] == [{"pass": True, "latency_ms": 0.0, "latency_after_ms": 600.0}]
    started = time.monotonic()
    assert post_resolution(url, resolution()).status_code == 200
    assert time.monotonic() - started >= 0.55
    started = time.monotonic()
    assert post_resolution(url, resolution()).status_code == 200
    assert time.monotonic() - started < 0.5
    scripted = {"script": [{"status": 500, "latency_after_ms": 300}]}
    control(url, "POST", "/faults/orchestrator", json=scripted)
    started = time.monotonic()
    assert post_resolution(url, resolution()).status_code == 500
    assert time.monotonic() - started >= 0.25
    bad = requests.post(f"{url}/_sandbox/faults/orchestrator", json={"script": [{"pass": True, "status": 500}]},
                        timeout=5)
    assert bad.status_code == 400


# ---------------------------------------------------------------- CXone


def test_cxone_dial_answer_and_store(url: str) -> None:
    token = cxone_token(url)
    first = post_dial(url, {"skill": 4711, "phoneNumber": "+15551234567", "callDelay": 30}, token)
    second = post_dial(url, {"skill": "4711", "phoneNumber": "5551234567", "notes": "freezer", "priority": 3,
                             "callerId": "+15550000000"}, token)
    assert first.status_code == second.status_code == 202
    assert second.json()["contactId"] == first.json()["contactId"] + 1
    dials = control(url, "GET", "/cxone/dials")
    assert [(d["contactId"], d["skill"]) for d in dials] == [(first.json()["contactId"], 4711),
                                                             (second.json()["contactId"], "4711")]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"phoneNumber": "+15551234567"}, "$: 'skill' is a required property"),
        ({"skill": "ztp", "phoneNumber": "+15551234567"}, "$.skill: 'ztp' does not match"),
        ({"skill": 1, "phoneNumber": "555-123-4567"}, "$.phoneNumber: '555-123-4567' does not match"),
        ({"skill": 1, "phoneNumber": "+15551234567", "callDelay": 3601}, "$.callDelay: 3601 is greater than"),
        ({"skill": 1, "phoneNumber": "+15551234567", "notes": "n" * 256}, "$.notes: length 256 exceeds"),
        ({"skill": 1, "phoneNumber": "+15551234567", "delay": 5}, "$: Additional properties are not allowed"),
    ],
    ids=["no-skill", "skill-text", "phone", "delay", "notes", "unknown-field"],
)
def test_cxone_dial_schema_violations(url: str, body: dict[str, Any], expected: str) -> None:
    response = post_dial(url, body)
    assert response.status_code == 400
    error = response.json()
    assert error["error"] == "invalid_request"
    assert any(e.startswith(expected) for e in error["errors"]), error["errors"]
    assert control(url, "GET", "/cxone/dials") == []


def test_cxone_dial_needs_a_valid_bearer_token(url: str) -> None:
    body = {"skill": 1, "phoneNumber": "+15551234567"}
    for token in ("bogus", genesys_token(url)):  # a Genesys token is not a CXone token
        response = post_dial(url, body, token)
        assert (response.status_code, response.json()) == (401, {"error": "invalid_token"})
    missing = requests.post(f"{url}{DIAL}", json=body, timeout=5)
    assert (missing.status_code, missing.json()) == (401, {"error": "invalid_token"})
    assert control(url, "GET", "/cxone/dials") == []


# ---------------------------------------------------------------- Orchestrator


def test_orchestrator_accepts_once_and_answers_duplicates(url: str) -> None:
    body = resolution(ztp_event_id="evt-1", agent_id=None)
    first = post_resolution(url, body)
    assert (first.status_code, first.json()) == (200, {"status": "accepted", "ztp_event_id": "evt-1"})
    again = post_resolution(url, {**body, "resolution_code": "OTHER"})
    assert (again.status_code, again.json()) == (200, {"status": "duplicate", "ztp_event_id": "evt-1"})
    state = control(url, "GET", "/orchestrator/resolutions")
    assert (state["received"], state["duplicates"]) == (2, 1)
    [stored] = state["resolutions"]
    assert {k: stored[k] for k in body} == body


def test_orchestrator_api_key(url: str) -> None:
    for key in ("wrong", ""):
        response = post_resolution(url, resolution(), key=key)
        assert (response.status_code, response.json()) == (401, {"error": "invalid api key"})
    assert requests.post(f"{url}{RESOLUTIONS}", json=resolution(), timeout=5).status_code == 401
    assert control(url, "PUT", "/orchestrator/config", json={"api_key": "rotated"}) == {"api_key": "rotated"}
    assert post_resolution(url, resolution()).status_code == 401
    assert post_resolution(url, resolution(), key="rotated").status_code == 200
    control(url, "DELETE", "/requests")
    assert post_resolution(url, resolution()).status_code == 200
    assert control(url, "GET", "/orchestrator/resolutions")["received"] == 1


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({k: v for k, v in resolution().items() if k != "agent_id"}, "$: 'agent_id' is a required property"),
        (resolution(agent_id=7), "$.agent_id: 7 is not of type ['string', 'null']"),
        (resolution(resolved_at="yesterday"), "$.resolved_at: 'yesterday' is not a valid date-time"),
        (resolution(ztp_event_id=""), "$.ztp_event_id: length 0 is below minLength 1"),
        (resolution(notes="x"), "$: Additional properties are not allowed ('notes' was unexpected)"),
    ],
    ids=["no-agent", "agent-int", "resolved-at", "empty-id", "unknown-field"],
)
def test_orchestrator_schema_violations(url: str, body: dict[str, Any], expected: str) -> None:
    response = post_resolution(url, body)
    assert response.status_code == 400
    assert any(e.startswith(expected) for e in response.json()["errors"]), response.json()
    assert control(url, "GET", "/orchestrator/resolutions") == {"resolutions": [], "received": 0, "duplicates": 0}


# ---------------------------------------------------------------- CRM


def test_crm_seeded_customers(url: str) -> None:
    acme = get_customer(url, "CUST-9981")
    assert acme.status_code == 200
    assert acme.json() == {"customerId": "CUST-9981", "phone": "+15551234567", "timezone": "America/New_York",
                           "doNotDisturb": False, "name": "Acme Cold Storage"}
    assert get_customer(url, "CUST-4410").json()["doNotDisturb"] is True
    assert get_customer(url, "CUST-7302").json()["timezone"] == "Europe/London"
    missing = get_customer(url, "CUST-0000")
    assert (missing.status_code, missing.json()) == (404, {"error": "not found"})


def test_crm_needs_the_token(url: str) -> None:
    assert get_customer(url, "CUST-9981", token="wrong").status_code == 401
    assert requests.get(f"{url}/api/v1/customers/CUST-9981", timeout=5).status_code == 401
    assert [e["status"] for e in recorded(url, "crm")] == [401, 401]


def test_crm_control_sets_customers(url: str) -> None:
    new = {"phone": "+13055550100", "timezone": "America/New_York", "doNotDisturb": False, "name": "Miami Foods"}
    assert control(url, "PUT", "/crm/customers/CUST-1", json=new) == {"customerId": "CUST-1", **new}
    assert get_customer(url, "CUST-1").json() == {"customerId": "CUST-1", **new}
    control(url, "PUT", "/crm/customers/CUST-9981", json={"doNotDisturb": True})
    assert get_customer(url, "CUST-9981").json()["doNotDisturb"] is True
    bad = requests.put(f"{url}/_sandbox/crm/customers/CUST-2", json={"phone": "+1"}, timeout=5)
    assert bad.status_code == 400 and "$: 'timezone' is a required property" in bad.json()["errors"]
    control(url, "DELETE", "/crm/customers/CUST-7302")
    assert get_customer(url, "CUST-7302").status_code == 404
    control(url, "DELETE", "/requests")
    assert get_customer(url, "CUST-1").status_code == 404
    assert get_customer(url, "CUST-9981").json()["doNotDisturb"] is False
    assert get_customer(url, "CUST-7302").status_code == 200


def test_crm_latency_exceeds_a_2s_client_timeout(url: str) -> None:
    control(url, "POST", "/faults/crm", json={"script": [{"pass": True, "latency_ms": 2300}]})
    with pytest.raises(requests.exceptions.ReadTimeout):
        get_customer(url, "CUST-9981", timeout=2)
    wait_for(lambda: len(recorded(url, "crm")) == 1, 5, 0.05, "the slow answer")
    assert get_customer(url, "CUST-9981", timeout=2).status_code == 200


# ---------------------------------------------------------------- Slack


def test_slack_webhook(url: str) -> None:
    body = {"text": "ZTP alert unresolved", "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "*x*"}}]}
    response = post_slack(url, body)
    assert (response.status_code, response.text) == (200, "ok")
    assert response.headers["Content-Type"].startswith("text/plain")
    [message] = control(url, "GET", "/slack/messages")
    assert message["text"] == body["text"] and message["blocks"] == body["blocks"]
    assert recorded(url, "slack")[0]["json"] == body


def test_slack_unknown_webhook_and_invalid_payloads(url: str) -> None:
    unknown = post_slack(url, {"text": "hi"}, path="/services/TSANDBOX/BSANDBOX/wrong-token")
    assert (unknown.status_code, unknown.text) == (404, "no_service")
    control(url, "POST", "/ratelimit/slack", json={"limit": 100, "window_s": 1})
    cases = [({"blocks": []}, "text"), ({"text": ""}, "text"), ({"text": "x", "blocks": {}}, "blocks"),
             ({"text": "x", "blocks": [{"text": "no type"}]}, "block"), (["x"], "object")]
    for body, reason in cases:
        response = post_slack(url, body)
        assert (response.status_code, response.text) == (400, "invalid_payload")
        assert reason in response.headers["X-Sandbox-Reason"]
    not_json = requests.post(f"{url}{SLACK_WEBHOOK_PATH}", data="text=hi", timeout=5)
    assert (not_json.status_code, not_json.text) == (400, "invalid_payload")
    assert control(url, "GET", "/slack/messages") == []


def test_slack_default_rate_limit_is_one_per_second(url: str) -> None:
    assert control(url, "GET", "/ratelimit/slack")["window_s"] == 1.0
    assert post_slack(url, {"text": "first"}).status_code == 200
    throttled = post_slack(url, {"text": "second"})
    assert (throttled.status_code, throttled.text, throttled.headers["Retry-After"]) == (429, "rate_limited", "1")
    answers: list[int] = []
    wait_for(lambda: answers.append(post_slack(url, {"text": "later"}).status_code) or answers[-1] == 200,
             3, 0.05, "the next slot")
    assert len(control(url, "GET", "/slack/messages")) == 2


# ---------------------------------------------------------------- Twilio


def test_twilio_sends_and_records_the_form(url: str) -> None:
    response = post_sms(url, SMS)
    assert response.status_code == 201
    message = response.json()
    assert message["sid"].startswith("SM") and len(message["sid"]) == 34 and int(message["sid"][2:], 16) >= 0
    assert (message["status"], message["to"], message["from"], message["body"]) == (
        "queued", SMS["To"], SMS["From"], SMS["Body"])
    assert message["account_sid"] == TWILIO_ACCOUNT_SID and message["date_created"].endswith("+0000")
    assert control(url, "GET", "/twilio/messages") == [message]
    [entry] = recorded(url, "twilio")
    assert entry["form"] == SMS and entry["json"] is None
    service = {"To": "+15551234567", "MessagingServiceSid": "MG" + "0" * 32, "Body": "x"}
    assert post_sms(url, service).json()["messaging_service_sid"] == service["MessagingServiceSid"]


def test_twilio_authentication(url: str) -> None:
    wrong = post_sms(url, SMS, auth=(TWILIO_ACCOUNT_SID, "wrong"))
    assert wrong.status_code == 401
    assert {k: wrong.json()[k] for k in ("code", "message", "status")} == {
        "code": 20003, "message": "Authenticate", "status": 401}
    assert requests.post(f"{url}{TWILIO_MESSAGES}", data=SMS, timeout=5).status_code == 401
    other = post_sms(url, SMS, path="/2010-04-01/Accounts/AC" + "1" * 32 + "/Messages.json")
    assert (other.status_code, other.json()["code"]) == (404, 20404)
    assert control(url, "GET", "/twilio/messages") == []


@pytest.mark.parametrize(
    ("form", "code", "field"),
    [
        ({"From": "+15557654321", "Body": "x"}, 21604, "'To'"),
        ({**SMS, "To": "5551234567"}, 21211, "'To'"),
        ({"To": "+15551234567", "Body": "x"}, 21603, "'From'"),
        ({**SMS, "From": "not a number!"}, 21212, "'From'"),
        ({"To": "+15551234567", "MessagingServiceSid": "MG123", "Body": "x"}, 21701, "'MessagingServiceSid'"),
        ({"To": "+15551234567", "From": "+15557654321"}, 21602, "'Body'"),
        ({**SMS, "Body": "b" * 1601}, 21617, "'Body'"),
    ],
    ids=["no-to", "bad-to", "no-from", "bad-from", "bad-service", "no-body", "body-long"],
)
def test_twilio_validation_errors(url: str, form: dict[str, str], code: int, field: str) -> None:
    response = post_sms(url, form)
    assert response.status_code == 400
    error = response.json()
    assert (error["code"], error["status"]) == (code, 400) and field in error["message"]
    assert control(url, "GET", "/twilio/messages") == []


def test_twilio_json_body_is_not_a_form(url: str) -> None:
    response = requests.post(f"{url}{TWILIO_MESSAGES}", json=SMS, auth=(TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN),
                             timeout=5)
    assert (response.status_code, response.json()["code"]) == (400, 21604)
    assert post_sms(url, {**SMS, "Body": "b" * 1600}).status_code == 201
