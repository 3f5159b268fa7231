"""Vendor sandbox emulators other than PagerDuty (Genesys, CXone, orchestrator, CRM, Slack, Twilio): real
SandboxServer, real HTTP through ``requests``. Common behaviour (recording, injected 5xx, rate limits,
``latency_after_ms``) is checked for every vendor; then each vendor's contract: auth and schema rules."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from switchboard.waiting import wait_for
from vendor_sandbox.credentials import (
    CRM_TOKEN,
    CXONE_ACCESS_KEY_ID,
    CXONE_ACCESS_KEY_SECRET,
    CXONE_CLIENT_ID,
    CXONE_CLIENT_SECRET,
    GENESYS_CLIENT_ID,
    GENESYS_CLIENT_SECRET,
    ORCHESTRATOR_API_KEY,
    SLACK_WEBHOOK_PATH,
    TWILIO_ACCOUNT_SID,
    TWILIO_AUTH_TOKEN,
)

WORKITEMS = "/api/v2/taskmanagement/workitems"
CALLBACKS = "/api/v2/conversations/callbacks"
OBSERVATIONS = "/api/v2/analytics/queues/observations/query"
DIAL = "/incontactapi/services/v33.0/queuecallback"
RESOLUTIONS = "/api/v1/events/resolutions"
TWILIO_MESSAGES = f"/2010-04-01/Accounts/{TWILIO_ACCOUNT_SID}/Messages.json"


def control(url: str, method: str, path: str, **kwargs: Any) -> Any:
    response = requests.request(method, f"{url}/_sandbox{path}", timeout=5, **kwargs)
    assert response.status_code == 200, response.text
    return response.json()


def recorded(url: str, vendor: str, path: str | None = None, *, all_: bool = True) -> list[dict[str, Any]]:
    params = {"vendor": vendor, **({"path": path} if path else {}), **({"all": "1"} if all_ else {})}
    return control(url, "GET", "/requests", params=params)


def genesys_token(url: str) -> str:
    response = requests.post(
        f"{url}/oauth/token",
        auth=(GENESYS_CLIENT_ID, GENESYS_CLIENT_SECRET),
        data={"grant_type": "client_credentials"},
        timeout=5,
    )
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def cxone_token(url: str) -> str:
    form = {"grant_type": "password", "username": CXONE_ACCESS_KEY_ID, "password": CXONE_ACCESS_KEY_SECRET}
    response = requests.post(f"{url}/auth/token", auth=(CXONE_CLIENT_ID, CXONE_CLIENT_SECRET), data=form, timeout=5)
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def workitem(**overrides: Any) -> dict[str, Any]:
    body = {
        "name": "ZTP failed on 00:1A:2B:3C:4D:5E",
        "typeId": "type-ztp",
        "description": "Validation failed",
        "priority": 5,
        "dateDue": "2030-01-01T12:00:00Z",
        "queueId": "queue-ztp-l2",
        "skillIds": ["skill-ztp-l1", "skill-firmware"],
        "externalTag": "ztp-evt-1",
        "customFields": {"device_mac_text": "00:1A:2B:3C:4D:5E"},
    }
    body.update(overrides)
    return body


def callback(**overrides: Any) -> dict[str, Any]:
    body = {
        "callbackNumbers": ["+15551234567"],
        "queueId": "queue-iot",
        "callbackUserName": "Acme Cold Storage",
        "data": {"alert": "freezer 3 at -2C"},
    }
    body.update(overrides)
    return body


def resolution(**overrides: Any) -> dict[str, Any]:
    body = {
        "ztp_event_id": f"evt-{uuid.uuid4().hex[:8]}",
        "resolution_status": "resolved",
        "resolution_code": "FIRMWARE_ROLLBACK",
        "agent_id": "agent-7",
        "resolved_at": "2024-05-01T12:00:00Z",
        "device_mac": "00:1A:2B:3C:4D:5E",
        "orchestrator_action": "retry_provisioning",
    }
    body.update(overrides)
    return body


def post_workitem(url: str, body: Any, token: str | None = None) -> requests.Response:
    return requests.post(f"{url}{WORKITEMS}", json=body, headers=bearer(token or genesys_token(url)), timeout=5)


def post_dial(url: str, body: Any, token: str | None = None) -> requests.Response:
    return requests.post(f"{url}{DIAL}", json=body, headers=bearer(token or cxone_token(url)), timeout=5)


def post_resolution(url: str, body: Any, key: str = ORCHESTRATOR_API_KEY) -> requests.Response:
    return requests.post(f"{url}{RESOLUTIONS}", json=body, headers={"X-Api-Key": key}, timeout=5)


def get_customer(url: str, customer_id: str, token: str = CRM_TOKEN, timeout: float = 5) -> requests.Response:
    return requests.get(f"{url}/api/v1/customers/{customer_id}", headers=bearer(token), timeout=timeout)


def post_slack(url: str, body: Any, path: str = SLACK_WEBHOOK_PATH) -> requests.Response:
    return requests.post(f"{url}{path}", json=body, timeout=5)


def post_sms(url: str, form: Any, auth: tuple[str, str] = (TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN),
             path: str = TWILIO_MESSAGES) -> requests.Response:
    return requests.post(f"{url}{path}", data=form, auth=auth, timeout=5)


SMS = {"To": "+15551234567", "From": "+15557654321", "Body": "Freezer 3 is at -2C"}


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


# ---------------------------------------------------------------- Genesys


def test_genesys_workitem_answer_and_store(url: str) -> None:
    body = workitem()
    response = post_workitem(url, body)
    assert response.status_code == 200
    item = response.json()
    assert {k: item[k] for k in body} == body
    assert uuid.UUID(item["id"]) and item["selfUri"] == f"{WORKITEMS}/{item['id']}"
    assert item["dateCreated"].endswith("Z")
    assert control(url, "GET", "/genesys/workitems") == [item]
    assert recorded(url, "genesys", WORKITEMS)[0]["json"] == body


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (workitem(name="ab"), "$.name: length 2 is below minLength 3"),
        (workitem(name="n" * 257), "$.name: length 257 exceeds maxLength 256"),
        ({"name": "Valid name"}, "$: 'typeId' is a required property"),
        (workitem(skills=[{"name": "ZTP-L1"}]), "$: Additional properties are not allowed ('skills' was unexpected)"),
        (workitem(customFields={"note": "x" * 256}), "$.customFields.note: length 256 exceeds maxLength 255"),
        (workitem(description="d" * 513), "$.description: length 513 exceeds maxLength 512"),
        (workitem(dateDue="2030-01-01T12:00:00"), "$.dateDue: '2030-01-01T12:00:00' is not a valid date-time"),
        (workitem(priority="high"), "$.priority: 'high' is not of type 'integer'"),
        (workitem(skillIds="skill-a"), "$.skillIds: 'skill-a' is not of type 'array'"),
        (workitem(externalTag="t" * 257), "$.externalTag: length 257 exceeds maxLength 256"),
        ([workitem()], "$: [{"),
    ],
    ids=["name-short", "name-long", "no-type", "unknown-field", "custom-field-long", "description", "date-no-offset",
         "priority", "skill-ids", "external-tag", "not-object"],
)
def test_genesys_workitem_schema_violations(url: str, body: Any, expected: str) -> None:
    response = post_workitem(url, body)
    assert response.status_code == 400
    error = response.json()
    assert (error["code"], error["status"]) == ("bad.request", 400)
    assert any(detail.startswith(expected) for detail in error["details"]), error["details"]
    assert expected in error["message"]
    assert control(url, "GET", "/genesys/workitems") == []


def test_genesys_every_error_is_reported(url: str) -> None:
    details = post_workitem(url, {"name": "ab", "bogus": 1, "customFields": {"a": "x" * 300}}).json()["details"]
    assert len(details) == 4, details
    assert "$: 'typeId' is a required property" in details


def test_genesys_api_needs_a_valid_bearer_token(url: str) -> None:
    unauthorized = {"message": "Authentication required", "code": "authentication.required", "status": 401}
    for headers in ({}, bearer("not-a-token"), {"Authorization": f"Basic {genesys_token(url)}"}):
        response = requests.post(f"{url}{WORKITEMS}", json=workitem(), headers=headers, timeout=5)
        assert (response.status_code, response.json()) == (401, unauthorized)
    assert control(url, "GET", "/genesys/workitems") == []
    assert [e["status"] for e in recorded(url, "genesys", WORKITEMS)] == [401, 401, 401]


def test_genesys_body_limits_and_content_type(url: str) -> None:
    token = genesys_token(url)
    big = post_workitem(url, workitem(customFields={f"f{i}": "x" * 250 for i in range(2100)}), token)
    assert (big.status_code, big.json()["status"]) == (413, 413)
    plain = requests.post(f"{url}{WORKITEMS}", data="{}", headers={**bearer(token), "Content-Type": "text/plain"},
                          timeout=5)
    assert plain.status_code == 415
    broken = requests.post(f"{url}{WORKITEMS}", data="{", headers={**bearer(token), "Content-Type": "application/json"},
                           timeout=5)
    assert broken.status_code == 400 and broken.json()["code"] == "bad.request"


def test_genesys_rate_limit_body(url: str) -> None:
    token = genesys_token(url)
    control(url, "POST", "/ratelimit/genesys", json={"limit": 1, "window_s": 30})
    assert post_workitem(url, workitem(), token).status_code == 200
    throttled = post_workitem(url, workitem(), genesys_token(url))  # same client, other token: same budget
    seconds = int(throttled.headers["Retry-After"])
    assert throttled.status_code == 429 and 1 <= seconds <= 30
    assert throttled.json() == {
        "message": f"Rate limit exceeded the maximum. Retry the request in [{seconds}] seconds",
        "code": "too.many.requests.retry.after",
        "status": 429,
    }
    limits = control(url, "GET", "/ratelimit/genesys")
    assert limits["limit"] == 1
    control(url, "DELETE", "/requests")
    assert control(url, "GET", "/ratelimit/genesys")["limit"] == 3000


def test_genesys_workitem_query(url: str) -> None:
    token = genesys_token(url)
    first = post_workitem(url, workitem(externalTag="tag-a"), token).json()
    second = post_workitem(url, workitem(externalTag="tag-b", queueId="queue-other"), token).json()

    def query(*filters: dict[str, Any], **extra: Any) -> requests.Response:
        body = {"filters": list(filters), "pageSize": 25, **extra}
        return requests.post(f"{url}{WORKITEMS}/query", json=body, headers=bearer(token), timeout=5)

    def eq(name: str, *values: str, operator: str = "EQ") -> dict[str, Any]:
        return {"name": name, "type": "String", "operator": operator, "values": list(values)}

    assert query(eq("externalTag", "tag-a")).json() == {"entities": [first], "count": 1}
    assert query(eq("typeId", "type-ztp")).json()["count"] == 2
    assert query(eq("queueId", "queue-other")).json()["entities"] == [second]
    assert query(eq("typeId", "type-ztp"), eq("externalTag", "tag-b")).json()["entities"] == [second]
    assert query(eq("externalTag", "nope")).json() == {"entities": [], "count": 0}
    assert query(eq("externalTag", "tag-a", "tag-b", operator="IN")).json()["count"] == 2
    assert query(eq("typeId", "type-ztp"), pageSize=1).json()["count"] == 1
    two_values = query(eq("externalTag", "tag-a", "tag-b"))
    assert two_values.status_code == 400
    assert "$.filters[0].values: operator EQ takes exactly one value" in two_values.json()["details"]
    unknown = query(eq("colour", "red"))
    assert unknown.status_code == 400 and unknown.json()["details"][0].startswith("$.filters[0].name: 'colour'")
    assert query().status_code == 400


def test_genesys_callback_answer_and_store(url: str) -> None:
    body = callback(callbackScheduledTime="2030-01-01T15:00:00.000Z", countryCode="US", validateCallbackNumbers=True,
                    callerId="+15550000000", callerIdName="Switchboard", scriptId="script-1")
    response = requests.post(f"{url}{CALLBACKS}", json=body, headers=bearer(genesys_token(url)), timeout=5)
    assert response.status_code == 200
    result = response.json()
    conversation_id = result["conversation"]["id"]
    assert result["conversation"]["selfUri"] == f"/api/v2/conversations/{conversation_id}"
    [identifier] = result["callbackIdentifiers"]
    assert identifier["type"] == "EXTERNAL" and uuid.UUID(identifier["id"])
    [stored] = control(url, "GET", "/genesys/callbacks")
    assert stored["conversationId"] == conversation_id and stored["callbackNumbers"] == ["+15551234567"]
    routed = callback(routingData={"queueId": "queue-iot", "skillIds": ["s1"]})
    del routed["queueId"]
    assert requests.post(f"{url}{CALLBACKS}", json=routed, headers=bearer(genesys_token(url)),
                         timeout=5).status_code == 200


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (callback(callbackNumbers=[]), "$.callbackNumbers: [] should be non-empty"),
        (callback(callbackNumbers=["555-1234"]), "$.callbackNumbers[0]: '555-1234' does not match"),
        ({"callbackNumbers": ["+15551234567"]}, "$: either 'queueId' or 'routingData' is required"),
        (callback(data={"notes": "n" * 256}), "$.data.notes: length 256 exceeds maxLength 255"),
        (callback(data={"count": 3}), "$.data.count: 3 is not of type 'string'"),
        (callback(phone="+15551234567"), "$: Additional properties are not allowed ('phone' was unexpected)"),
        (callback(routingData={"skillIds": []}), "$.routingData: 'queueId' is a required property"),
        (callback(callbackScheduledTime="tomorrow"), "$.callbackScheduledTime: 'tomorrow' is not a valid date-time"),
    ],
    ids=["no-numbers", "not-e164", "no-queue", "data-long", "data-not-string", "unknown-field", "routing-no-queue",
         "scheduled-time"],
)
def test_genesys_callback_schema_violations(url: str, body: dict[str, Any], expected: str) -> None:
    response = requests.post(f"{url}{CALLBACKS}", json=body, headers=bearer(genesys_token(url)), timeout=5)
    assert response.status_code == 400
    assert any(d.startswith(expected) for d in response.json()["details"]), response.json()["details"]
    assert control(url, "GET", "/genesys/callbacks") == []


def test_genesys_queue_observations(url: str) -> None:
    assert control(url, "PUT", "/genesys/queues/Q1", json={"oWaiting": 3, "oOnQueueUsers": 10}) == {
        "queueId": "Q1", "oWaiting": 3, "oOnQueueUsers": 10}
    control(url, "PUT", "/genesys/queues/Q1", json={"oWaiting": 4})
    body = {
        "filter": {"type": "or", "predicates": [{"dimension": "queueId", "value": "Q1"},
                                                {"type": "dimension", "dimension": "queueId", "value": "Q2"}]},
        "metrics": ["oWaiting", "oOnQueueUsers"],
    }
    response = requests.post(f"{url}{OBSERVATIONS}", json=body, headers=bearer(genesys_token(url)), timeout=5)
    assert response.status_code == 200
    assert response.json() == {"results": [
        {"group": {"queueId": "Q1"}, "data": [{"metric": "oWaiting", "stats": {"count": 4}},
                                              {"metric": "oOnQueueUsers", "stats": {"count": 10}}]},
        {"group": {"queueId": "Q2"}, "data": [{"metric": "oWaiting", "stats": {"count": 0}},
                                              {"metric": "oOnQueueUsers", "stats": {"count": 0}}]},
    ]}
    bad_metric = {**body, "metrics": ["oWaiting", "waitingNow"]}
    response = requests.post(f"{url}{OBSERVATIONS}", json=bad_metric, headers=bearer(genesys_token(url)), timeout=5)
    assert response.status_code == 400 and response.json()["details"][0].startswith("$.metrics[1]: 'waitingNow'")
    no_queue = {**body, "filter": {"type": "and", "predicates": [{"dimension": "mediaType", "value": "voice"}]}}
    response = requests.post(f"{url}{OBSERVATIONS}", json=no_queue, headers=bearer(genesys_token(url)), timeout=5)
    assert response.status_code == 400
    for spec in ({"waitingNow": 1}, {"oWaiting": -1}, ["oWaiting"]):
        assert requests.put(f"{url}/_sandbox/genesys/queues/Q1", json=spec, timeout=5).status_code == 400
    control(url, "DELETE", "/requests")
    assert control(url, "GET", "/genesys/queues") == {}


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
