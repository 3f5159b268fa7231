"""The vendor clients (``clients/``) against the sandbox emulators over real HTTP: Genesys (work items, query,
callbacks, queue observations), CXone (dial), the orchestrator callback, the CRM lookup, Slack and Twilio.
No mocks: every answer comes from a real server."""

from __future__ import annotations

import json
import time
import uuid

import redis

from clients.crm import CRMClient
from clients.cxone import CXoneClient
from clients.genesys import fetch_genesys_token
from clients.notify import SlackWebhook, TwilioSMS
from clients.orchestrator import OrchestratorClient
from tests.client_support import (
    RESOLUTIONS,
    SAMPLES,
    TOKEN_TIMEOUT,
    TWILIO_MESSAGES,
    WORKITEMS,
    bearer_of,
    cxone_tokens,
    raises_vendor_error,
    resolution,
    statuses,
    workitem,
)
from tests.posting import Sandbox
from vendor_sandbox import credentials as creds

# --- Genesys -----------------------------------------------------------------------------------------------


def test_fetch_genesys_token_is_a_bearer_token_the_api_accepts(sb: Sandbox) -> None:
    token = fetch_genesys_token(sb.url, creds.GENESYS_CLIENT_ID, creds.GENESYS_CLIENT_SECRET, TOKEN_TIMEOUT)
    assert token.access_token and token.expires_in == 86399
    form = sb.requests("/oauth/token")[0]["form"]
    assert form == {"grant_type": "client_credentials"}
    assert sb.oauth("genesys")["active_tokens"] == 1


def test_genesys_workitem_query_callback_and_observations(sb: Sandbox, genesys: tuple) -> None:
    client, tokens = genesys
    tag = f"ztp:{uuid.uuid4().hex}"
    first = client.create_workitem(workitem(externalTag=tag, customFields={"device_mac": "AA:BB:CC:00:11:22"}))
    second = client.create_workitem(workitem(name="ZTP firmware rollback", externalTag=tag))
    other = client.create_workitem(workitem(externalTag=f"{tag}-other"))
    assert len({first["id"], second["id"], other["id"]}) == 3
    stored = {w["id"]: w for w in sb.workitems()}
    assert stored[first["id"]]["customFields"] == {"device_mac": "AA:BB:CC:00:11:22"}

    found = client.find_workitems(tag)
    assert [w["id"] for w in found] == [first["id"], second["id"]]
    assert client.find_workitems(f"ztp:{uuid.uuid4().hex}") == []

    callback = client.create_callback({"callbackNumbers": ["+15551234567"], "queueId": "queue-iot",
                                       "callbackUserName": "Acme Cold Storage", "data": {"sensor": "t-17"}})
    conversation_id = callback["conversation"]["id"]
    stored_callbacks = sb.get("/_sandbox/genesys/callbacks")
    assert [c["conversationId"] for c in stored_callbacks] == [conversation_id]
    assert stored_callbacks[0]["data"] == {"sensor": "t-17"}

    sb.send("PUT", "/_sandbox/genesys/queues/queue-a", {"oWaiting": 4, "oOnQueueUsers": 9})
    sb.send("PUT", "/_sandbox/genesys/queues/queue-b", {"oWaiting": 1})
    assert client.queue_observations(["queue-a", "queue-b", "queue-empty"]) == {
        "queue-a": {"oWaiting": 4, "oOnQueueUsers": 9},
        "queue-b": {"oWaiting": 1, "oOnQueueUsers": 0},
        "queue-empty": {"oWaiting": 0, "oOnQueueUsers": 0},
    }
    assert client.queue_observations(["queue-a"], metrics=("oWaiting",)) == {"queue-a": {"oWaiting": 4}}

    # One token for all of it, sent on every API call.
    assert sb.oauth("genesys")["token_requests"] == 1
    api = [e for e in sb.requests() if e["path"].startswith("/api/v2/")]
    assert len(api) == 8 and {bearer_of(e) for e in api} == {tokens.token()}


def test_genesys_schema_rejection_is_permanent_and_names_the_field(sb: Sandbox, genesys: tuple) -> None:
    client, _ = genesys
    exc = raises_vendor_error(lambda: client.create_workitem(workitem(name="ab")))
    assert exc.status == 400 and exc.retryable is False and exc.retry_after_s is None
    assert "$.name" in exc.message and "minLength 3" in exc.message
    body = json.loads(exc.body)
    assert body["code"] == "bad.request" and any("$.name" in d for d in body["details"])
    assert sb.workitems() == [] and statuses(sb, WORKITEMS) == [400]

    exc = raises_vendor_error(lambda: client.create_callback({"callbackNumbers": ["+15551234567"]}))
    assert exc.status == 400 and not exc.retryable and "queueId" in exc.message
    assert sb.get("/_sandbox/genesys/callbacks") == []



# --- CXone -------------------------------------------------------------------------------------------------


def test_cxone_dial(sb: Sandbox, state_redis: redis.Redis, prefix: str) -> None:
    client = CXoneClient(sb.url, cxone_tokens(state_redis, prefix, sb.url))
    first = client.dial({"skill": 4711, "phoneNumber": "+15551234567", "callDelay": 0})
    second = client.dial({"skill": "4711", "phoneNumber": "+14155550123", "notes": "IoT freezer alarm"})
    assert isinstance(first["contactId"], int) and second["contactId"] != first["contactId"]
    dials = sb.get("/_sandbox/cxone/dials")
    assert [(d["contactId"], d["phoneNumber"]) for d in dials] == [(first["contactId"], "+15551234567"),
                                                                    (second["contactId"], "+14155550123")]
    assert sb.oauth("cxone")["token_requests"] == 1
    form = sb.requests("/auth/token")[0]["form"]
    assert form == {"grant_type": "password", "username": creds.CXONE_ACCESS_KEY_ID,
                    "password": creds.CXONE_ACCESS_KEY_SECRET}

    exc = raises_vendor_error(lambda: client.dial({"skill": 4711, "phoneNumber": "call me maybe"}))
    assert exc.status == 400 and exc.retryable is False and "phoneNumber" in exc.message
    assert len(sb.get("/_sandbox/cxone/dials")) == 2


# --- orchestrator ------------------------------------------------------------------------------------------


def test_orchestrator_resolution_once_then_duplicate(sb: Sandbox) -> None:
    client = OrchestratorClient(sb.url, creds.ORCHESTRATOR_API_KEY)
    body = resolution()
    assert client.send_resolution(body) == {"status": "accepted", "ztp_event_id": body["ztp_event_id"]}
    assert client.send_resolution(body) == {"status": "duplicate", "ztp_event_id": body["ztp_event_id"]}
    state = sb.get("/_sandbox/orchestrator/resolutions")
    assert (state["received"], state["duplicates"]) == (2, 1)
    assert [r["ztp_event_id"] for r in state["resolutions"]] == [body["ztp_event_id"]]
    assert {e["headers"]["x-api-key"] for e in sb.requests(RESOLUTIONS)} == {creds.ORCHESTRATOR_API_KEY}

    wrong = OrchestratorClient(sb.url, "not-the-key")
    exc = raises_vendor_error(lambda: wrong.send_resolution(resolution()))
    assert exc.status == 401 and exc.retryable is False and "invalid api key" in exc.body
    assert sb.get("/_sandbox/orchestrator/resolutions")["received"] == 2


# --- CRM ---------------------------------------------------------------------------------------------------


def test_crm_lookup(sb: Sandbox) -> None:
    samples = json.loads((SAMPLES / "crm-customers.json").read_text())
    client = CRMClient(sb.url, creds.CRM_TOKEN)
    assert client.customer("CUST-9981") == {"customerId": "CUST-9981", **samples["CUST-9981"]}
    assert client.customer("CUST-0000") is None
    assert sb.requests("/api/v1/customers/CUST-9981")[0]["headers"]["authorization"] == f"Bearer {creds.CRM_TOKEN}"

    exc = raises_vendor_error(lambda: CRMClient(sb.url, "not-the-token").customer("CUST-9981"))
    assert exc.status == 401 and exc.retryable is False


def test_crm_slow_answer_times_out_after_two_seconds(sb: Sandbox) -> None:
    sb.faults("crm", latency_ms=2500)
    client = CRMClient(sb.url, creds.CRM_TOKEN)
    started = time.monotonic()
    exc = raises_vendor_error(lambda: client.customer("CUST-9981"))
    elapsed = time.monotonic() - started
    assert exc.retryable is True and exc.status is None and "timeout" in exc.message
    assert 1.9 <= elapsed < 2.45, elapsed


# --- Slack and Twilio --------------------------------------------------------------------------------------


def test_slack_post_and_rate_limit(sb: Sandbox) -> None:
    slack = SlackWebhook(sb.url + creds.SLACK_WEBHOOK_PATH)
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*PagerDuty dead-lettered* evt_1"}}]
    slack.post("Switchboard: PagerDuty dead-lettered evt_1", blocks=blocks)
    messages = sb.get("/_sandbox/slack/messages")
    assert [(m["text"], m["blocks"]) for m in messages] == [("Switchboard: PagerDuty dead-lettered evt_1", blocks)]

    exc = raises_vendor_error(lambda: slack.post("a second message within the same second"))
    assert exc.status == 429 and exc.retryable is True and exc.body == "rate_limited"
    assert exc.retry_after_s is not None and 1 <= exc.retry_after_s <= 2
    assert len(sb.get("/_sandbox/slack/messages")) == 1

    exc = raises_vendor_error(lambda: SlackWebhook(sb.url + "/services/T0/B0/wrong").post("hello"))
    assert exc.status == 404 and exc.retryable is False and exc.body == "no_service"


def test_twilio_sms(sb: Sandbox) -> None:
    sms = TwilioSMS(sb.url, creds.TWILIO_ACCOUNT_SID, creds.TWILIO_AUTH_TOKEN, "+15550006666")
    sent = sms.send("+15551234567", "Switchboard: the proactive call for evt_1 failed")
    assert sent["sid"].startswith("SM") and sent["status"] == "queued" and sent["from"] == "+15550006666"
    assert sb.requests(TWILIO_MESSAGES)[0]["form"] == {
        "To": "+15551234567", "From": "+15550006666", "Body": "Switchboard: the proactive call for evt_1 failed"}
    assert len(sms.send("+15551234567", "x" * 2000)["body"]) == 1600  # cut to Twilio's limit, not rejected

    service_sid = "MG" + "0123456789abcdef" * 2
    via_service = TwilioSMS(sb.url, creds.TWILIO_ACCOUNT_SID, creds.TWILIO_AUTH_TOKEN, service_sid)
    assert via_service.send("+15551234567", "hello")["messaging_service_sid"] == service_sid

    exc = raises_vendor_error(lambda: sms.send("555-1234", "hello"))
    assert exc.status == 400 and exc.retryable is False and json.loads(exc.body)["code"] == 21211

    wrong = TwilioSMS(sb.url, creds.TWILIO_ACCOUNT_SID, "not-the-token", "+15550006666")
    exc = raises_vendor_error(lambda: wrong.send("+15551234567", "hello"))
    assert exc.status == 401 and exc.retryable is False and json.loads(exc.body)["code"] == 20003
    assert len(sb.get("/_sandbox/twilio/messages")) == 3


def test_twilio_alphanumeric_sender_starting_with_mg_is_a_from(sb: Sandbox) -> None:
    sms = TwilioSMS(sb.url, creds.TWILIO_ACCOUNT_SID, creds.TWILIO_AUTH_TOKEN, "MGMT Alerts")
    assert sms.send("+15551234567", "hello")["from"] == "MGMT Alerts"
