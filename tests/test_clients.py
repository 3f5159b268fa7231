"""The vendor clients (``clients/``) against the sandbox emulators over real HTTP, with the OAuth token cache in
the real Redis: Genesys (work items, query, callbacks, queue observations), CXone (dial), the orchestrator
callback, the CRM lookup, Slack and Twilio, the shared HTTP layer's classification, and the token manager:
one token shared by spawned OS processes, refreshed before expiry without 401s, one re-fetch after a 401,
compare-and-delete invalidation, credential failures raised once, a still-valid token kept while the token
endpoint fails. No mocks: every answer comes from a real server."""

from __future__ import annotations

import json
import multiprocessing
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from clients.crm import CRMClient
from clients.cxone import CXoneClient, fetch_cxone_token
from clients.genesys import GenesysClient, fetch_genesys_token
from clients.http import VendorError, call
from clients.notify import SlackWebhook, TwilioSMS
from clients.oauth import CredentialError, TokenManager
from clients.orchestrator import OrchestratorClient
from tests.posting import Sandbox
from vendor_sandbox import credentials as creds

TOKEN_TIMEOUT = (3.05, 5.0)
WORKITEMS = "/api/v2/taskmanagement/workitems"
CXONE_DIAL = "/incontactapi/services/v33.0/queuecallback"
RESOLUTIONS = "/api/v1/events/resolutions"
TWILIO_MESSAGES = f"/2010-04-01/Accounts/{creds.TWILIO_ACCOUNT_SID}/Messages.json"
SAMPLES = Path(__file__).resolve().parent.parent / "samples"


# --- helpers (module level: the spawned worker processes import this module) -----------------------------


def genesys_tokens(client: redis.Redis, prefix: str, url: str, *,
                   secret: str = creds.GENESYS_CLIENT_SECRET, **options: Any) -> TokenManager:
    def fetch() -> Any:
        return fetch_genesys_token(url, creds.GENESYS_CLIENT_ID, secret, TOKEN_TIMEOUT)

    return TokenManager(client, prefix, "genesys", fetch, **options)


def cxone_tokens(client: redis.Redis, prefix: str, url: str, **options: Any) -> TokenManager:
    def fetch() -> Any:
        return fetch_cxone_token(url, creds.CXONE_CLIENT_ID, creds.CXONE_CLIENT_SECRET, creds.CXONE_ACCESS_KEY_ID,
                                 creds.CXONE_ACCESS_KEY_SECRET, TOKEN_TIMEOUT)

    return TokenManager(client, prefix, "cxone", fetch, **options)


def workitem(**changes: Any) -> dict[str, Any]:
    return {"name": "ZTP validation failed", "typeId": "type-ztp-alert", **changes}


def _share_worker(redis_url: str, prefix: str, sandbox_url: str, calls: int, run_for_s: float,
                  ready: Any, go: Any, results: Any) -> None:
    """One OS process: its own Redis client, TokenManager and GenesysClient; waits for ``go``, then creates
    work items until it made ``calls`` and ``run_for_s`` has passed. Errors come back as strings."""
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    client = GenesysClient(sandbox_url, genesys_tokens(r, prefix, sandbox_url))
    ready.put(os.getpid())
    go.wait(60)
    made, errors = 0, []
    start = time.monotonic()
    while made < calls or time.monotonic() - start < run_for_s:
        try:
            client.create_workitem(workitem(name=f"process {os.getpid()} call {made}"))
        except VendorError as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
        made += 1
    results.put({"pid": os.getpid(), "calls": made, "errors": errors})


def run_processes(count: int, redis_url: str, prefix: str, sandbox_url: str, *, calls: int = 0,
                  run_for_s: float = 0.0) -> tuple[list[dict[str, Any]], float]:
    """Start ``count`` spawned processes, release them together; their results and the seconds from the
    release to the last result."""
    ctx = multiprocessing.get_context("spawn")
    ready, results, go = ctx.Queue(), ctx.Queue(), ctx.Event()
    procs = [ctx.Process(target=_share_worker, daemon=True,
                         args=(redis_url, prefix, sandbox_url, calls, run_for_s, ready, go, results))
             for _ in range(count)]
    for proc in procs:
        proc.start()
    try:
        pids = {ready.get(timeout=60) for _ in procs}
        released = time.monotonic()
        go.set()
        out = [results.get(timeout=60 + run_for_s) for _ in procs]
        elapsed = time.monotonic() - released
        for proc in procs:
            proc.join(timeout=30)
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.kill()
                proc.join(timeout=10)
    assert [proc.exitcode for proc in procs] == [0] * count
    assert len(pids) == count and os.getpid() not in pids
    assert {o["pid"] for o in out} == pids
    return out, elapsed


def bearer_of(entry: dict[str, Any]) -> str:
    scheme, _, token = entry["headers"]["authorization"].partition(" ")
    assert scheme == "Bearer"
    return token


def statuses(sb: Sandbox, path: str) -> list[int]:
    return [e["status"] for e in sb.requests(path, rejected=True)]


def raises_vendor_error(action: Callable[[], Any]) -> VendorError:
    with pytest.raises(VendorError) as info:
        action()
    return info.value


# --- fixtures ----------------------------------------------------------------------------------------------


@pytest.fixture
def sb(clean_sandbox: Any) -> Sandbox:
    return Sandbox(clean_sandbox.url)


@pytest.fixture
def prefix(run_id: str, state_redis: redis.Redis) -> Iterator[str]:
    key_prefix = f"t{run_id}cl{uuid.uuid4().hex[:6]}:"
    yield key_prefix
    for key in state_redis.scan_iter(f"{key_prefix}*", count=1000):
        state_redis.delete(key)


@pytest.fixture
def redis_url(state_redis: redis.Redis) -> str:
    kw = state_redis.connection_pool.connection_kwargs
    return f"redis://{kw.get('host', '127.0.0.1')}:{kw.get('port', 6379)}/{kw.get('db', 0)}"


@pytest.fixture
def genesys(sb: Sandbox, state_redis: redis.Redis, prefix: str) -> tuple[GenesysClient, TokenManager]:
    tokens = genesys_tokens(state_redis, prefix, sb.url)
    return GenesysClient(sb.url, tokens), tokens


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


# --- the token shared by processes -------------------------------------------------------------------------


def test_processes_share_one_token(sb: Sandbox, redis_url: str, prefix: str) -> None:
    out, _ = run_processes(3, redis_url, prefix, sb.url, calls=5)
    assert [o["errors"] for o in out] == [[], [], []]
    oauth = sb.oauth("genesys")
    assert oauth["token_requests"] == 1 and oauth["tokens_issued"] == 1
    entries = sb.requests(WORKITEMS, rejected=True)
    assert len(entries) == 15 and {e["status"] for e in entries} == {200}
    assert len({bearer_of(e) for e in entries}) == 1


def test_processes_refresh_a_short_lived_token_before_it_expires(sb: Sandbox, redis_url: str, prefix: str) -> None:
    sb.send("PUT", "/_sandbox/oauth/genesys", {"expires_in": 2})
    sb.send("POST", "/_sandbox/ratelimit/genesys", {"limit": 1_000_000, "window_s": 60})
    out, elapsed = run_processes(2, redis_url, prefix, sb.url, run_for_s=5.0)
    assert [o["errors"] for o in out] == [[], []]
    entries = sb.requests(WORKITEMS, rejected=True)
    assert len(entries) == sum(o["calls"] for o in out)
    assert [e for e in entries if e["status"] != 200] == []  # not one 401: refreshed ahead of expiry
    oauth = sb.oauth("genesys")
    # 5 s of calls with 2 s tokens and no 401 needs at least 3 tokens; refreshing at ~80% of the lifetime
    # (and by one process at a time) needs no more than one per 1.5 s, plus the first and some slack.
    assert 3 <= oauth["token_requests"] <= elapsed / (2 * 0.75) + 2, (oauth, elapsed)
    assert oauth["failed_requests"] == 0
    assert len({bearer_of(e) for e in entries}) == oauth["tokens_issued"]


# --- 401 and invalidation ----------------------------------------------------------------------------------


def test_revoked_token_costs_one_401_and_one_token_request(sb: Sandbox, genesys: tuple) -> None:
    client, tokens = genesys
    client.create_workitem(workitem())
    first = tokens.token()
    assert sb.send("POST", "/_sandbox/oauth/genesys/revoke")["revoked"] == 1

    assert client.create_workitem(workitem(name="after revocation"))["id"]
    oauth = sb.oauth("genesys")
    assert oauth["token_requests"] == 2 and oauth["tokens_issued"] == 2
    entries = sb.requests(WORKITEMS, rejected=True)
    assert [e["status"] for e in entries] == [200, 401, 200]
    assert bearer_of(entries[0]) == bearer_of(entries[1]) == first
    assert bearer_of(entries[2]) != first
    assert tokens.token() == bearer_of(entries[2])  # the new token is the cached one

    client.create_workitem(workitem(name="next one"))
    assert sb.oauth("genesys")["token_requests"] == 2


def test_401_with_a_fresh_token_is_permanent(sb: Sandbox, genesys: tuple) -> None:
    client, _ = genesys
    sb.faults("genesys", script=[{"status": 401, "count": 2}])
    exc = raises_vendor_error(lambda: client.create_workitem(workitem()))
    assert exc.status == 401 and exc.retryable is False and not isinstance(exc, CredentialError)
    assert "fresh token" in exc.message and json.loads(exc.body)["status"] == 401
    assert sb.oauth("genesys")["token_requests"] == 2  # one re-fetch, no loop
    assert statuses(sb, WORKITEMS) == [401, 401]


def test_invalidate_deletes_only_the_token_that_failed(sb: Sandbox, state_redis: redis.Redis, prefix: str) -> None:
    worker_1 = genesys_tokens(state_redis, prefix, sb.url)
    worker_2 = genesys_tokens(state_redis, prefix, sb.url)
    token_a = worker_1.token()
    assert worker_2.token() == token_a

    assert worker_1.invalidate(f"not-{token_a}") is False
    assert worker_2.token() == token_a and sb.oauth("genesys")["token_requests"] == 1

    assert worker_1.invalidate(token_a) is True
    assert state_redis.get(worker_1.key) is None
    token_b = worker_2.token()
    assert token_b != token_a and sb.oauth("genesys")["token_requests"] == 2

    # worker 1 reports its stale 401 late: worker 2's fresh token survives.
    assert worker_1.invalidate(token_a) is False
    assert worker_1.token() == token_b and sb.oauth("genesys")["token_requests"] == 2


# --- credential failures -----------------------------------------------------------------------------------


def test_genesys_credential_failure_raised_once(sb: Sandbox, state_redis: redis.Redis, genesys: tuple) -> None:
    client, tokens = genesys
    sb.send("PUT", "/_sandbox/oauth/genesys", {"fail": 1})
    with pytest.raises(CredentialError) as info:
        client.create_workitem(workitem())
    exc = info.value
    assert isinstance(exc, VendorError) and exc.retryable is False and exc.status == 401
    assert "invalid_client" in exc.body
    oauth = sb.oauth("genesys")
    assert (oauth["token_requests"], oauth["failed_requests"], oauth["tokens_issued"]) == (1, 1, 0)
    assert statuses(sb, WORKITEMS) == [] and state_redis.get(tokens.key) is None

    # Once the login service accepts us again, the next call works with one more token request.
    assert client.create_workitem(workitem())["id"]
    assert sb.oauth("genesys")["token_requests"] == 2


def test_genesys_wrong_secret_one_token_request_per_call(sb: Sandbox, state_redis: redis.Redis, prefix: str) -> None:
    client = GenesysClient(sb.url, genesys_tokens(state_redis, prefix, sb.url, secret="not-the-secret"))
    for expected in (1, 2, 3):
        with pytest.raises(CredentialError):
            client.create_workitem(workitem())
        assert sb.oauth("genesys")["failed_requests"] == expected
    assert sb.oauth("genesys")["token_requests"] == 3 and statuses(sb, WORKITEMS) == []


def test_cxone_wrong_access_key_secret_is_a_credential_error(sb: Sandbox, state_redis: redis.Redis,
                                                             prefix: str) -> None:
    sb.send("PUT", "/_sandbox/oauth/cxone", {"access_key_secret": "other"})
    client = CXoneClient(sb.url, cxone_tokens(state_redis, prefix, sb.url))
    with pytest.raises(CredentialError) as info:
        client.dial({"skill": 4711, "phoneNumber": "+15551234567"})
    exc = info.value
    assert isinstance(exc, VendorError) and exc.retryable is False and exc.status == 400
    assert "invalid_grant" in exc.body
    oauth = sb.oauth("cxone")
    assert (oauth["token_requests"], oauth["failed_requests"], oauth["tokens_issued"]) == (1, 1, 0)
    assert statuses(sb, CXONE_DIAL) == []


# --- token endpoint outage ---------------------------------------------------------------------------------


def test_credentials_rejected_at_refresh_alert_at_once_but_the_valid_token_keeps_working(
        sb: Sandbox, state_redis: redis.Redis, prefix: str) -> None:
    now = [time.time()]
    alerts: list[CredentialError] = []
    tokens = genesys_tokens(state_redis, prefix, sb.url, clock=lambda: now[0], on_credential_failure=alerts.append)
    client = GenesysClient(sb.url, tokens)
    client.create_workitem(workitem())
    original = tokens.token()
    now[0] = json.loads(state_redis.get(tokens.key))["refresh_at"] + 1  # due for refresh, still valid
    sb.send("PUT", "/_sandbox/oauth/genesys", {"fail": 1})  # e.g. the client secret was rotated away
    for i in range(2):
        assert client.create_workitem(workitem(name=f"still working {i}"))["id"]
    assert len(alerts) == 1 and isinstance(alerts[0], CredentialError) and alerts[0].status == 401
    assert {bearer_of(e) for e in sb.requests(WORKITEMS)} == {original}
    assert sb.oauth("genesys")["failed_requests"] == 1  # one refresh attempt, then the backoff


def test_token_endpoint_5xx_keeps_the_valid_token(sb: Sandbox, state_redis: redis.Redis, prefix: str) -> None:
    now = [time.time()]
    tokens = genesys_tokens(state_redis, prefix, sb.url, clock=lambda: now[0])
    client = GenesysClient(sb.url, tokens)
    client.create_workitem(workitem())
    original = tokens.token()
    record = json.loads(state_redis.get(tokens.key))
    now[0] = record["refresh_at"] + 1  # due for refresh, still valid for hours
    assert now[0] < record["expires_at"]

    sb.faults("genesys.token", script=[{"status": 503, "count": 1}])
    for i in range(3):
        assert client.create_workitem(workitem(name=f"during the outage {i}"))["id"]
    oauth = sb.oauth("genesys")
    # One failed refresh, then a backoff: the other calls do not hammer the token endpoint.
    assert (oauth["token_requests"], oauth["failed_requests"], oauth["tokens_issued"]) == (2, 1, 1)
    entries = sb.requests(WORKITEMS, rejected=True)
    assert [e["status"] for e in entries] == [200] * 4 and {bearer_of(e) for e in entries} == {original}
    assert state_redis.pttl(tokens.key + ":refresh-failed") > 0

    # The backoff ends and the token endpoint is back: the next call refreshes and uses the new token.
    state_redis.delete(tokens.key + ":refresh-failed")
    client.create_workitem(workitem(name="after the outage"))
    oauth = sb.oauth("genesys")
    assert (oauth["token_requests"], oauth["tokens_issued"]) == (3, 2)
    renewed = bearer_of(sb.requests(WORKITEMS)[-1])
    assert renewed != original and tokens.token() == renewed


def test_token_endpoint_malformed_2xx_keeps_the_valid_token(sb: Sandbox, state_redis: redis.Redis,
                                                            prefix: str) -> None:
    now = [time.time()]
    tokens = genesys_tokens(state_redis, prefix, sb.url, clock=lambda: now[0])
    client = GenesysClient(sb.url, tokens)
    client.create_workitem(workitem())
    now[0] = json.loads(state_redis.get(tokens.key))["refresh_at"] + 1
    sb.faults("genesys.token", script=[{"status": 200, "body": {"message": "down for maintenance"}}])
    assert client.create_workitem(workitem(name="during maintenance"))["id"]
    assert statuses(sb, WORKITEMS) == [200, 200]


def test_token_endpoint_5xx_without_a_valid_token_is_retryable(sb: Sandbox, state_redis: redis.Redis,
                                                               prefix: str) -> None:
    now = [time.time()]
    tokens = genesys_tokens(state_redis, prefix, sb.url, clock=lambda: now[0])
    client = GenesysClient(sb.url, tokens)
    client.create_workitem(workitem())
    now[0] = json.loads(state_redis.get(tokens.key))["expires_at"] + 1
    sb.faults("genesys.token", script=[{"status": 503, "retry_after": 3}])
    exc = raises_vendor_error(lambda: client.create_workitem(workitem()))
    assert not isinstance(exc, CredentialError)
    assert exc.status == 503 and exc.retryable is True and exc.retry_after_s == 3
    assert statuses(sb, WORKITEMS) == [200]


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


def resolution(**changes: Any) -> dict[str, Any]:
    return {"ztp_event_id": f"evt_{uuid.uuid4().hex[:20]}", "resolution_status": "resolved",
            "resolution_code": "FIRMWARE_ROLLBACK", "agent_id": "agent-1742", "resolved_at": "2024-05-01T12:00:00Z",
            "device_mac": "AA:BB:CC:DD:EE:01", "orchestrator_action": "retry_provisioning", **changes}


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


# --- the shared HTTP layer ---------------------------------------------------------------------------------


def test_classification_of_vendor_answers(sb: Sandbox) -> None:
    vendor_body = {"error": "invalid resolution", "errors": ["$.device_mac: 'zz' does not match"]}
    sb.faults("orchestrator", script=[{"status": 429, "retry_after": 2}, {"status": 503},
                                      {"status": 400, "body": vendor_body}, {"status": 408}])
    url = sb.url + RESOLUTIONS

    def post() -> VendorError:
        return raises_vendor_error(lambda: call("POST", url, timeout=(1.0, 5.0), json=resolution()))

    throttled = post()
    assert (throttled.status, throttled.retryable, throttled.retry_after_s) == (429, True, 2.0)
    unavailable = post()
    assert (unavailable.status, unavailable.retryable, unavailable.retry_after_s) == (503, True, None)
    rejected = post()
    assert (rejected.status, rejected.retryable) == (400, False)
    assert json.loads(rejected.body) == vendor_body and "invalid resolution" in str(rejected)
    timeout = post()
    assert (timeout.status, timeout.retryable) == (408, True)
    assert statuses(sb, RESOLUTIONS) == [429, 503, 400, 408]
    assert call("POST", url, timeout=(1.0, 5.0), json=resolution(),
                headers={"X-Api-Key": creds.ORCHESTRATOR_API_KEY}).status_code == 200


def test_vendor_rate_limit_reaches_the_caller_with_retry_after(sb: Sandbox, genesys: tuple) -> None:
    client, _ = genesys
    sb.send("POST", "/_sandbox/ratelimit/genesys", {"limit": 1, "window_s": 30})
    client.create_workitem(workitem())
    exc = raises_vendor_error(lambda: client.create_workitem(workitem()))
    assert exc.status == 429 and exc.retryable is True
    assert exc.retry_after_s is not None and 28 <= exc.retry_after_s <= 30
    assert json.loads(exc.body)["code"] == "too.many.requests.retry.after"
    assert statuses(sb, WORKITEMS) == [200, 429] and sb.oauth("genesys")["token_requests"] == 1


def test_connection_refused_is_retryable_network_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    exc = raises_vendor_error(lambda: call("GET", f"http://127.0.0.1:{port}/", timeout=(1.0, 1.0)))
    assert exc.status is None and exc.retryable is True and "network error" in exc.message


class DroppingServer:
    """A loopback TCP server that reads each whole HTTP request, counts it, and closes without answering
    (a vendor that received the request, maybe acted, and lost the connection)."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.received: list[bytes] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(5)
                data = chunk = b"-"
                while chunk and b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    data += chunk
                head, _, body = data[1:].partition(b"\r\n\r\n")
                length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)
                while chunk and len(body) < length:
                    chunk = conn.recv(65536)
                    body += chunk
                if head:
                    self.received.append(body)

    def __enter__(self) -> DroppingServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=5)
        self.sock.close()


def test_dropped_connection_is_retryable_network_error() -> None:
    with DroppingServer() as server:
        exc = raises_vendor_error(lambda: call("GET", server.url + "/x", timeout=(1.0, 2.0)))
    assert exc.status is None and exc.retryable is True
    assert 1 <= len(server.received) <= 2  # a GET may be resent in-process


def test_post_delivered_before_the_connection_dropped_is_not_resent_in_process() -> None:
    with DroppingServer() as server:
        exc = raises_vendor_error(lambda: call("POST", server.url + "/dial", timeout=(1.0, 2.0),
                                               json={"phoneNumber": "+15551234567"}))
    assert exc.status is None and exc.retryable is True
    assert [json.loads(body) for body in server.received] == [{"phoneNumber": "+15551234567"}]
