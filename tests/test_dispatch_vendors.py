"""Dispatch to Genesys (work items, callbacks), the CRM lookup, OAuth and the fallback notifier, end to
end: signed webhook in, a real Celery worker, the vendor sandbox's emulators out, on both brokers."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
import requests

from switchboard.config import load_config
from switchboard.dialing import plan_call
from switchboard.store import redis_client
from switchboard.waiting import wait_for
from tests.helpers import PAYLOAD_TOKEN, ROOT, WorkerProcess
from tests.posting import Sandbox, post, sample, unique_iot, unique_ztp, wait_outcome

TARGET = "genesys_workitem"
QUEUES = {"QUEUE_ZTP_L1_VERIFICATION": "6f1d2c3b-0000-4000-8000-000000000002",
          "QUEUE_ZTP_L2_FIRMWARE": "6f1d2c3b-0000-4000-8000-000000000003",
          "QUEUE_IOT_PROACTIVE": "6f1d2c3b-0000-4000-8000-000000000004",
          "QUEUE_IOT_FOLLOWUP": "6f1d2c3b-0000-4000-8000-000000000005"}
SKILLS = {"ZTP-L1": "9a8b7c6d-0000-4000-8000-000000000001", "Firmware-Rollback": "9a8b7c6d-0000-4000-8000-000000000002"}
WORKITEMS = "/api/v2/taskmanagement/workitems"
DIALING = load_config(ROOT / "config").windows["dialing"]


def tag(event_id: str, target: str = TARGET) -> str:
    return f"switchboard:{event_id}:{target}"


def forget_token(ctx: dict, vendor: str = "genesys") -> None:
    """Start from no cached token, so the emulator's token count is this test's alone."""
    redis_client(ctx["env"]["SWITCHBOARD_REDIS_URL"]).delete(f"{ctx['keys'].prefix}oauth:{vendor}")


@pytest.fixture(autouse=True)
def _fresh_tokens(pipeline: dict, clean_sandbox) -> None:
    # clean_sandbox made the emulators forget every token they issued; so must our shared cache.
    forget_token(pipeline, "genesys")
    forget_token(pipeline, "cxone")


def test_ztp_samples_become_work_items_in_the_right_queue_with_skills(pipeline: dict, clean_sandbox) -> None:
    sb = Sandbox(clean_sandbox.url)
    cases = {
        "ztp-validation-failed.json": ("QUEUE_ZTP_L2_FIRMWARE", ["ZTP-L1", "Firmware-Rollback"]),
        "ztp-firmware-rollback.json": ("QUEUE_ZTP_L2_FIRMWARE", ["Firmware-Rollback"]),
        "ztp-success-callback.json": ("QUEUE_ZTP_L1_VERIFICATION", []),
    }
    ids = {name: post(pipeline, "ztp", unique_ztp(name)) for name in cases}
    for name, event_id in ids.items():
        trace = wait_outcome(pipeline, event_id)
        assert trace["outcome"] == "dispatched", trace
        [item] = sb.workitems(externalTag=tag(event_id))
        queue, skills = cases[name]
        assert item["queueId"] == QUEUES[queue]
        assert item.get("skillIds", []) == [SKILLS[s] for s in skills]
        assert item["typeId"] == "ztp-provisioning-alert"
        assert item["customFields"]["event_id"] == event_id
        assert item["customFields"]["ztp_event_id"].startswith("evt_")
        assert "dateDue" in item and 3 <= len(item["name"]) <= 256
        assert trace["targets"][TARGET]["result"] == "dispatched"


def _zone_at_local_hour(hour: int) -> str:
    """A fixed-offset zone where it is now about ``hour`` o'clock (so the test does not depend on when it runs)."""
    now = datetime.now(UTC)
    offset = (hour - now.hour + 12) % 24 - 12
    return f"Etc/GMT{'-' if offset >= 0 else '+'}{abs(offset)}"  # POSIX names have the sign reversed


def test_iot_alert_inside_the_window_places_a_genesys_callback(pipeline: dict, clean_sandbox) -> None:
    sb = Sandbox(clean_sandbox.url)
    customer = f"CUST-{uuid.uuid4().hex[:8]}"
    sb.send("PUT", f"/_sandbox/crm/customers/{customer}",
            {"phone": "+15551230000", "timezone": _zone_at_local_hour(14), "doNotDisturb": False, "name": "Lab"})
    event_id = post(pipeline, "iot", unique_iot(customerId=customer))
    trace = wait_outcome(pipeline, event_id)
    assert trace["outcome"] == "dispatched", trace
    [callback] = [c for c in sb.get("/_sandbox/genesys/callbacks") if c["data"].get("event_id") == event_id]
    assert callback["callbackNumbers"] == ["+15551230000"]
    assert callback["queueId"] == QUEUES["QUEUE_IOT_PROACTIVE"]
    assert callback["callbackUserName"] == "Lab"
    assert "wrapup_codes" in callback["data"] and all(len(v) <= 255 for v in callback["data"].values())
    assert trace["targets"]["iot_call"]["detail"].startswith("callback")
    # the phone number is not in the ledger an operator reads
    assert "+15551230000" not in str(trace)


def test_iot_alert_with_dnd_files_a_next_business_day_work_item(pipeline: dict, clean_sandbox) -> None:
    sb = Sandbox(clean_sandbox.url)
    customer = f"CUST-{uuid.uuid4().hex[:8]}"
    record = {"phone": "+15551230001", "timezone": "America/New_York", "doNotDisturb": True, "name": "Clinic"}
    sb.send("PUT", f"/_sandbox/crm/customers/{customer}", record)
    event_id = post(pipeline, "iot", unique_iot(customerId=customer))
    trace = wait_outcome(pipeline, event_id)
    assert trace["outcome"] == "dispatched", trace
    [item] = sb.workitems(externalTag=tag(event_id, "iot_call"))
    assert item["queueId"] == QUEUES["QUEUE_IOT_FOLLOWUP"]
    expected = plan_call(record, datetime.now(UTC), DIALING)
    assert expected.rule == "dnd"
    due = datetime.fromisoformat(item["dateDue"])
    if expected.next_allowed > datetime.now(UTC):  # outside the window now: due at the next opening, 08:00 local
        assert due == expected.next_allowed
        assert due.astimezone(ZoneInfo("America/New_York")).strftime("%H:%M") == "08:00"
    else:  # inside the window: a follow-up due right away
        assert abs((due - expected.next_allowed).total_seconds()) < 30
    assert sb.get("/_sandbox/genesys/callbacks") == [] or all(
        c["data"].get("event_id") != event_id for c in sb.get("/_sandbox/genesys/callbacks"))


def test_two_worker_processes_share_one_token_and_refresh_before_expiry(pipeline: dict, clean_sandbox,
                                                                        tmp_path) -> None:
    sb = Sandbox(clean_sandbox.url)
    forget_token(pipeline)
    sb.send("PUT", "/_sandbox/oauth/genesys", {"expires_in": 3})
    with WorkerProcess(pipeline["env"], tmp_path, queues="dispatch.default", concurrency=2) as second:
        started = time.monotonic()
        ids = []
        # Keep events flowing for 7 s, about three token lifetimes, from both workers' four processes.
        while time.monotonic() - started < 7:
            batch = [post(pipeline, "ztp", unique_ztp()) for _ in range(4)]
            ids += batch
            for event_id in batch:
                assert wait_outcome(pipeline, event_id)["outcome"] == "dispatched"
        elapsed = time.monotonic() - started
        logs = [pipeline["worker"].log_path.read_text(), second.log_path.read_text()]
    assert all("Task switchboard.dispatch[" in log for log in logs), "both workers must have dispatched"
    oauth = sb.oauth("genesys")
    # One token per ~80% of the 3 s lifetime, shared by every process: not one per process or per call.
    assert 2 <= oauth["token_requests"] <= elapsed / (3 * 0.75) + 2, oauth
    rejected = [r for r in sb.requests(WORKITEMS, rejected=True) if r["status"] == 401]
    assert rejected == []  # refreshed before expiry: no call ever went out with an expired token
    assert len(sb.workitems()) >= len(ids)


def test_token_revoked_mid_stream_is_fetched_again_once(pipeline: dict, clean_sandbox) -> None:
    sb = Sandbox(clean_sandbox.url)
    forget_token(pipeline)
    first = post(pipeline, "ztp", unique_ztp())
    assert wait_outcome(pipeline, first)["outcome"] == "dispatched"
    assert sb.oauth("genesys")["token_requests"] == 1
    sb.send("POST", "/_sandbox/oauth/genesys/revoke")
    second = post(pipeline, "ztp", unique_ztp())
    trace = wait_outcome(pipeline, second)
    assert trace["outcome"] == "dispatched"
    assert sb.oauth("genesys")["token_requests"] == 2
    statuses = [r["status"] for r in sb.requests(WORKITEMS, rejected=True)]
    assert statuses == [200, 401, 200]
    assert len(sb.workitems(externalTag=tag(second))) == 1


def test_429_retry_after_is_honoured(pipeline: dict, clean_sandbox) -> None:
    sb = Sandbox(clean_sandbox.url)
    sb.faults("genesys", script=[{"status": 429, "count": 1, "retry_after": 2}])
    event_id = post(pipeline, "ztp", unique_ztp())
    trace = wait_outcome(pipeline, event_id)
    assert trace["outcome"] == "dispatched"
    calls = sb.requests(WORKITEMS, rejected=True)
    assert [c["status"] for c in calls] == [429, 200]
    assert calls[1]["at"] - calls[0]["at"] >= 2.0  # the retry did not come sooner than Retry-After
    assert len(sb.workitems(externalTag=tag(event_id))) == 1


def test_503_storm_dead_letters_after_max_attempts_and_tells_a_human(pipeline: dict, clean_sandbox) -> None:
    sb = Sandbox(clean_sandbox.url)
    customer = f"CUST-{uuid.uuid4().hex[:8]}"
    sb.send("PUT", f"/_sandbox/crm/customers/{customer}",
            {"phone": "+15551230002", "timezone": "Europe/London", "doNotDisturb": True, "name": "Depot"})
    sb.faults("genesys", failure_rate=1.0, failure_status=503)
    event_id = post(pipeline, "iot", unique_iot(customerId=customer))  # critical route: fallback applies
    trace = wait_outcome(pipeline, event_id)
    assert trace["outcome"] == "dead_lettered"
    assert [c["status"] for c in sb.requests(WORKITEMS, rejected=True)] == [503] * 4  # max_attempts 4
    assert [s["result"] for s in trace["stages"] if s["stage"] == "dispatch:iot_call"] == ["retry"] * 3 + [
        "dead_lettered"]
    slack = wait_for(lambda: [r for r in sb.requests() if r["vendor"] == "slack"], 20, 0.1, "fallback on Slack")
    assert event_id in slack[0]["json"]["text"]
    sms = wait_for(lambda: [r for r in sb.requests() if r["vendor"] == "twilio"], 20, 0.1, "fallback SMS")
    assert event_id in sms[0]["form"]["Body"]


def test_400_dead_letters_at_once_with_the_vendor_body(pipeline: dict, clean_sandbox) -> None:
    sb = Sandbox(clean_sandbox.url)
    sb.faults("genesys", script=[{"status": 400, "count": 1,
                                  "body": {"message": "typeId not found", "code": "bad.request", "status": 400}}])
    event_id = post(pipeline, "ztp", unique_ztp())
    trace = wait_outcome(pipeline, event_id)
    assert trace["outcome"] == "dead_lettered"
    assert len(sb.requests(WORKITEMS, rejected=True)) == 1
    dead = pipeline["server"].state  # the receiver shares the state Redis
    from switchboard.dead_letters import DeadLetters

    [entry] = [e for e in DeadLetters(dead.redis, dead.keys).list(100_000) if e["event_id"] == event_id]
    assert "typeId not found" in entry["error"] and entry["attempts"] == 1
    assert entry["route"]["target"] == TARGET and entry["request"]["externalTag"] == tag(event_id)


def test_rejected_credentials_raise_a_credential_alert_not_a_retry_loop(pipeline: dict, clean_sandbox) -> None:
    sb = Sandbox(clean_sandbox.url)
    forget_token(pipeline)
    r = redis_client(pipeline["env"]["SWITCHBOARD_REDIS_URL"])
    r.delete(f"{pipeline['keys'].prefix}credential-alerted:genesys")
    before = int(r.get(pipeline["keys"].counter("credential_failure:genesys")) or 0)
    sb.send("PUT", "/_sandbox/oauth/genesys", {"fail": 1})
    event_id = post(pipeline, "ztp", unique_ztp())
    trace = wait_outcome(pipeline, event_id)
    assert trace["outcome"] == "dead_lettered"
    assert [s["result"] for s in trace["stages"] if s["stage"] == f"dispatch:{TARGET}"] == ["dead_lettered"]
    assert sb.oauth("genesys")["failed_requests"] == 1  # asked once, not in a loop
    assert int(r.get(pipeline["keys"].counter("credential_failure:genesys"))) == before + 1
    slack = wait_for(lambda: [m for m in sb.requests() if m["vendor"] == "slack"
                              and "credentials" in m["json"]["text"]], 20, 0.1, "credential alert")
    assert "genesys" in slack[0]["json"]["text"]
    assert "sandbox-genesys-secret" not in str(slack)
    log = pipeline["worker"].log_path.read_text()
    assert "CREDENTIAL FAILURE: genesys" in log and "sandbox-genesys-secret" not in log


def test_oversized_context_travels_by_payload_ref(pipeline: dict, clean_sandbox) -> None:
    sb = Sandbox(clean_sandbox.url)
    detail = "certificate chain: " + "MIIB" * 400  # far over Genesys' 255-character attribute limit
    event_id = post(pipeline, "ztp", unique_ztp(error_detail=detail))
    assert wait_outcome(pipeline, event_id)["outcome"] == "dispatched"
    [item] = sb.workitems(externalTag=tag(event_id))
    fields = item["customFields"]
    assert fields["payload_ref"] == event_id and "error_detail" not in fields
    assert all(len(v) <= 255 for v in fields.values())
    url = f"{pipeline['url']}/payloads/{fields['payload_ref']}"
    assert requests.get(url, timeout=5).status_code == 401
    assert requests.get(url, headers={"Authorization": "Bearer wrong"}, timeout=5).status_code == 401
    got = requests.get(url, headers={"Authorization": f"Bearer {PAYLOAD_TOKEN}"}, timeout=5)
    assert got.status_code == 200
    assert got.json()["payload"]["attributes"]["error_detail"] == detail  # whole, not truncated
    missing = requests.get(f"{pipeline['url']}/payloads/nope", headers={"Authorization": f"Bearer {PAYLOAD_TOKEN}"},
                           timeout=5)
    assert missing.status_code == 404


def test_sample_iot_customer_follows_the_dialing_window_now(pipeline: dict, clean_sandbox) -> None:
    """The shipped sample (CUST-9981, New York, DND off): a call inside 08:00-20:00 local, else a work item."""
    sb = Sandbox(clean_sandbox.url)
    event_id = post(pipeline, "iot", unique_iot())
    trace = wait_outcome(pipeline, event_id)
    assert trace["outcome"] == "dispatched"
    customer = sample("crm-customers.json")["CUST-9981"]
    finished = datetime.fromtimestamp(trace["finished_at"], UTC)
    plan = plan_call(customer, finished, DIALING)
    callbacks = [c for c in sb.get("/_sandbox/genesys/callbacks") if c["data"].get("event_id") == event_id]
    items = sb.workitems(externalTag=tag(event_id, "iot_call"))
    assert (len(callbacks), len(items)) == ((1, 0) if plan.call else (0, 1))


def test_resolved_work_item_calls_the_orchestrator_back_once(pipeline: dict, clean_sandbox) -> None:
    sb = Sandbox(clean_sandbox.url)
    body = sample("genesys-workitem-resolved.json")
    ztp_event_id = f"evt_{uuid.uuid4().hex[:20]}"
    body["event"]["customFields"]["ztp_event_id"] = ztp_event_id
    # Genesys retries the webhook with a new request id: two events, one resolution at the orchestrator.
    ids = [post(pipeline, "genesys", body) for _ in range(2)]
    for event_id in ids:
        trace = wait_outcome(pipeline, event_id)
        assert trace["outcome"] == "dispatched", trace
        assert list(trace["targets"]) == ["orchestrator"]
    stored = sb.get("/_sandbox/orchestrator/resolutions")
    mine = [r for r in stored["resolutions"] if r["ztp_event_id"] == ztp_event_id]
    assert len(mine) == 1
    assert mine[0] == {**mine[0], "resolution_status": "RESOLVED", "resolution_code": "CERT_REISSUED",
                       "orchestrator_action": "RETRY_PROVISIONING", "agent_id": "agent-4711",
                       "device_mac": "00:1A:2B:3C:4D:5E", "resolved_at": "2024-06-15T14:05:00Z"}
    posts = [r for r in sb.requests("/api/v1/events/resolutions") if r["json"]["ztp_event_id"] == ztp_event_id]
    assert len(posts) == 2 and all(r["headers"]["x-api-key"] == "sandbox-orchestrator-key" for r in posts)


def test_routing_can_send_the_call_through_cxone(pipeline: dict, clean_sandbox) -> None:
    sb = Sandbox(clean_sandbox.url)
    customer = f"CUST-{uuid.uuid4().hex[:8]}"
    sb.send("PUT", f"/_sandbox/crm/customers/{customer}",
            {"phone": "+15551230003", "timezone": _zone_at_local_hour(11), "doNotDisturb": False, "name": "Farm"})
    event_id = post(pipeline, "iot", unique_iot(customerId=customer, alertType="test_cxone_dial"))
    trace = wait_outcome(pipeline, event_id)
    assert trace["outcome"] == "dispatched", trace
    assert trace["targets"]["iot_call_cxone"]["detail"].startswith("dial")
    dials = [d for d in sb.get("/_sandbox/cxone/dials") if d["phoneNumber"] == "+15551230003"]
    assert len(dials) == 1 and dials[0]["skill"] == 4242 and dials[0]["callDelay"] == 0
    assert sb.oauth("cxone")["token_requests"] == 1
    assert sb.get("/_sandbox/genesys/callbacks") == []
