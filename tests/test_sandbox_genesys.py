"""The Genesys Cloud emulator: work items, the work-item query, callbacks, queue observations, OAuth-protected
and schema-checked."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import requests

from tests.sandbox_support import (
    CALLBACKS,
    OBSERVATIONS,
    WORKITEMS,
    bearer,
    callback,
    control,
    genesys_token,
    post_workitem,
    recorded,
    workitem,
)

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
