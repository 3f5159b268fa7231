"""Every row of the receiver's answer table (DESIGN.md), over real HTTP, on both brokers, with the
broker's queue depth checked: accepted events are enqueued, everything else is not."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid

import pytest
import requests
from celery import Celery
from standardwebhooks import Webhook

from switchboard.broker import queue_depths
from switchboard.sender import signed_headers
from switchboard.signatures import sign_hmac
from switchboard.waiting import wait_for
from tests.helpers import ROOT, ReceiverServer
from tests.posting import post as post_sample
from tests.posting import sample

SAMPLES = ROOT / "samples"
TRUNK_DOWN = (SAMPLES / "genesys-trunk-down.json").read_bytes()
IOT = (SAMPLES / "iot-temp-critical.json").read_bytes()
ZTP = (SAMPLES / "ztp-validation-failed.json").read_bytes()


def ingest_depth(ctx: dict) -> int:
    celery = Celery(broker=ctx["env"]["SWITCHBOARD_BROKER_URL"], set_as_current=False)
    return queue_depths(celery, ["ingest"])["ingest"]


def post(ctx: dict, source: str, body: bytes, headers: dict[str, str]) -> requests.Response:
    return requests.post(f"{ctx['url']}/webhooks/{source}", data=body, headers=headers, timeout=10)


def genesys_headers(body: bytes, secret: str = "genesys-test-secret", request_id: str | None = None) -> dict:
    return {"Content-Type": "application/json", "X-Genesys-Signature": sign_hmac(body, secret),
            "X-Request-Id": request_id or uuid.uuid4().hex}


def sw_headers(body: bytes, secret: str, msg_id: str | None = None, ts: int | None = None) -> dict:
    from datetime import UTC, datetime

    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    ts = int(time.time()) if ts is None else ts
    # Signed by the Standard Webhooks reference library, so interoperability is what is tested.
    signature = Webhook(secret).sign(msg_id, datetime.fromtimestamp(ts, UTC), body.decode())
    return {"Content-Type": "application/json", "webhook-id": msg_id, "webhook-timestamp": str(ts),
            "webhook-signature": signature}


IOT_SECRET = "whsec_dGVzdC1pb3Qtc2VjcmV0LWtleQ=="
ZTP_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def assert_not_enqueued(ctx: dict, before: int) -> None:
    assert ingest_depth(ctx) == before


def test_202_accepted_is_enqueued_and_in_the_ledger(receiver_only: dict) -> None:
    before = ingest_depth(receiver_only)
    r = post(receiver_only, "genesys", TRUNK_DOWN, genesys_headers(TRUNK_DOWN))
    assert r.status_code == 202
    assert r.json()["status"] == "accepted" and len(r.json()["event_id"]) == 32
    assert ingest_depth(receiver_only) == before + 1
    trace = receiver_only["server"].state.ledger.trace(r.json()["event_id"])
    assert trace["source"] == "genesys" and trace["outcome"] is None


@pytest.mark.parametrize("source,body,secret", [("iot", IOT, IOT_SECRET), ("ztp", ZTP, ZTP_SECRET)])
def test_202_standard_webhooks_signed_by_reference_library(receiver_only: dict, source: str, body: bytes,
                                                           secret: str) -> None:
    before = ingest_depth(receiver_only)
    data = json.loads(body)
    # fresh payload keys so earlier tests' idempotency keys do not interfere
    for field in ("idempotencyKey", "ztp_event_id"):
        if field in data:
            data[field] = uuid.uuid4().hex
    body = json.dumps(data).encode()
    r = post(receiver_only, source, body, sw_headers(body, secret))
    assert r.status_code == 202, r.text
    assert ingest_depth(receiver_only) == before + 1


def test_200_duplicate_request_id(receiver_only: dict) -> None:
    rid = uuid.uuid4().hex
    first = post(receiver_only, "genesys", TRUNK_DOWN, genesys_headers(TRUNK_DOWN, request_id=rid))
    before = ingest_depth(receiver_only)
    again = post(receiver_only, "genesys", TRUNK_DOWN, genesys_headers(TRUNK_DOWN, request_id=rid))
    assert first.status_code == 202
    assert again.status_code == 200
    assert again.json() == {"status": "duplicate", "event_id": first.json()["event_id"]}
    assert_not_enqueued(receiver_only, before)


def test_200_duplicate_webhook_id_and_payload_key(receiver_only: dict) -> None:
    data = json.loads(IOT)
    data["idempotencyKey"] = uuid.uuid4().hex
    body = json.dumps(data).encode()
    msg_id = f"msg_{uuid.uuid4().hex}"
    first = post(receiver_only, "iot", body, sw_headers(body, IOT_SECRET, msg_id=msg_id))
    before = ingest_depth(receiver_only)
    same_msg = post(receiver_only, "iot", body, sw_headers(body, IOT_SECRET, msg_id=msg_id))
    # a new webhook-id (the platform re-sent the alert) but the same idempotencyKey in the payload
    same_key = post(receiver_only, "iot", body, sw_headers(body, IOT_SECRET))
    assert first.status_code == 202
    assert (same_msg.status_code, same_key.status_code) == (200, 200)
    assert same_key.json()["event_id"] == first.json()["event_id"]
    assert_not_enqueued(receiver_only, before)


def test_genesys_without_request_id_dedupes_on_body(receiver_only: dict) -> None:
    body = json.dumps({**json.loads(TRUNK_DOWN), "nonce": uuid.uuid4().hex}).encode()
    headers = genesys_headers(body)
    del headers["X-Request-Id"]
    assert post(receiver_only, "genesys", body, headers).status_code == 202
    assert post(receiver_only, "genesys", body, headers).status_code == 200


def test_404_unknown_source(receiver_only: dict) -> None:
    before = ingest_depth(receiver_only)
    r = post(receiver_only, "salesforce", TRUNK_DOWN, genesys_headers(TRUNK_DOWN))
    assert r.status_code == 404
    assert r.json()["error"] == "unknown source" and "genesys" in r.json()["sources"]
    assert_not_enqueued(receiver_only, before)


def test_413_body_over_limit(receiver_only: dict) -> None:
    before = ingest_depth(receiver_only)
    body = json.dumps({**json.loads(TRUNK_DOWN), "pad": "x" * 70000}).encode()
    r = post(receiver_only, "genesys", body, genesys_headers(body))
    assert r.status_code == 413
    assert r.json() == {"error": "body too large", "limit_bytes": 65536}
    assert_not_enqueued(receiver_only, before)


def test_415_wrong_content_type(receiver_only: dict) -> None:
    before = ingest_depth(receiver_only)
    headers = {**genesys_headers(TRUNK_DOWN), "Content-Type": "text/plain"}
    r = post(receiver_only, "genesys", TRUNK_DOWN, headers)
    assert r.status_code == 415
    assert "application/json" in r.json()["error"]
    assert_not_enqueued(receiver_only, before)


@pytest.mark.parametrize("body,error", [
    (b"{not json", "body is not valid JSON"),
    (b'{"a": 1, "a": 2}', "body is not valid JSON"),
    (b'{"value": NaN}', "body is not valid JSON"),
    (b'{"x": "\xff\xfe"}', "body is not valid UTF-8"),
])
def test_400_not_json(receiver_only: dict, body: bytes, error: str) -> None:
    before = ingest_depth(receiver_only)
    r = post(receiver_only, "genesys", body, genesys_headers(body))
    assert r.status_code == 400
    assert r.json()["error"] == error
    assert_not_enqueued(receiver_only, before)


@pytest.mark.parametrize("mutate,detail", [
    (lambda h, b: h.update({"X-Genesys-Signature": sign_hmac(b, "wrong-secret")}), "signature does not match"),
    (lambda h, b: h.pop("X-Genesys-Signature"), "signature header missing"),
    (lambda h, b: h.update({"X-Genesys-Signature": sign_hmac(b + b" ", "genesys-test-secret")}),
     "signature does not match"),
    (lambda h, b: h.update({"X-Genesys-Signature": sign_hmac(b, "genesys-test-secret")[:40]}),
     "signature has the wrong length"),
    (lambda h, b: h.update({"X-Genesys-Signature": "zz" * 32}), "signature is not valid hex"),
])
def test_401_bad_hmac_signature(receiver_only: dict, mutate, detail: str) -> None:
    before = ingest_depth(receiver_only)
    headers = genesys_headers(TRUNK_DOWN)
    mutate(headers, TRUNK_DOWN)
    r = post(receiver_only, "genesys", TRUNK_DOWN, headers)
    assert r.status_code == 401
    assert r.json() == {"error": "invalid signature", "detail": detail}
    assert_not_enqueued(receiver_only, before)


def test_rotated_secret_accepted_while_listed(receiver_only: dict) -> None:
    r = post(receiver_only, "genesys", TRUNK_DOWN, genesys_headers(TRUNK_DOWN, secret="genesys-old-secret"))
    assert r.status_code == 202


@pytest.mark.parametrize("case,detail", [
    ("stale", "webhook-timestamp outside the tolerance"),
    ("future", "webhook-timestamp outside the tolerance"),
    ("wrong-secret", "no matching v1 signature"),
    ("no-headers", "webhook-id, webhook-timestamp and webhook-signature are required"),
    ("unicode-digit", "webhook-timestamp must be Unix seconds"),   # "²".isdigit() is True; int() fails
    ("huge", "webhook-timestamp must be Unix seconds"),            # would overflow the tolerance maths
])
def test_401_standard_webhooks(receiver_only: dict, case: str, detail: str) -> None:
    before = ingest_depth(receiver_only)
    now = int(time.time())
    headers = {
        "stale": lambda: sw_headers(IOT, IOT_SECRET, ts=now - 301),
        "future": lambda: sw_headers(IOT, IOT_SECRET, ts=now + 301),
        "wrong-secret": lambda: sw_headers(IOT, ZTP_SECRET),
        "no-headers": lambda: {"Content-Type": "application/json"},
        "unicode-digit": lambda: {**sw_headers(IOT, IOT_SECRET), "webhook-timestamp": "\u00b2"},
        "huge": lambda: {**sw_headers(IOT, IOT_SECRET), "webhook-timestamp": "9" * 400},
    }[case]()
    r = post(receiver_only, "iot", IOT, headers)
    assert r.status_code == 401
    assert r.json() == {"error": "invalid signature", "detail": detail}
    assert_not_enqueued(receiver_only, before)


def test_422_lists_every_field_error(receiver_only: dict) -> None:
    before = ingest_depth(receiver_only)
    body = json.dumps({"eventType": "telephony.trunk.status.changed",
                       "event": {"trunkId": "", "status": "SIDEWAYS", "timestamp": "2024-05-15T14:32:00"}}).encode()
    r = post(receiver_only, "genesys", body, genesys_headers(body))
    assert r.status_code == 422
    fields = r.json()["fields"]["event"]
    assert set(fields) == {"trunkId", "status", "timestamp"}
    assert "aware" in fields["timestamp"][0]  # naive timestamps are rejected
    assert_not_enqueued(receiver_only, before)


def test_429_over_ingress_rate(receiver_only: dict) -> None:
    env = {**receiver_only["env"], "SWITCHBOARD_KEY_PREFIX": receiver_only["keys"].prefix + "rate:"}
    from switchboard.config import load_config
    from switchboard.settings import load_settings

    config = load_config(load_settings(env).config_dir)  # a fresh copy: safe to change
    config.sources["genesys"]["ingress_rate"] = {"limit": 2, "per_seconds": 60}
    with ReceiverServer(env, config) as server:
        ctx = {**receiver_only, "url": server.url}
        codes = [post(ctx, "genesys", TRUNK_DOWN, genesys_headers(TRUNK_DOWN)).status_code for _ in range(2)]
        before = ingest_depth(ctx)
        r = post(ctx, "genesys", TRUNK_DOWN, genesys_headers(TRUNK_DOWN))
    assert codes == [202, 202]
    assert r.status_code == 429
    assert 1 <= int(r.headers["Retry-After"]) <= 60
    assert_not_enqueued(ctx, before)


def test_503_broker_down_releases_the_idempotency_key(receiver_only: dict) -> None:
    down = {**receiver_only["env"], "SWITCHBOARD_BROKER_URL": "redis://127.0.0.1:1/0"}
    if receiver_only["broker"] == "rabbitmq":
        down["SWITCHBOARD_BROKER_URL"] = "amqp://guest:guest@127.0.0.1:1//"
    rid = uuid.uuid4().hex
    with ReceiverServer(down) as server:
        r = requests.post(f"{server.url}/webhooks/genesys", data=TRUNK_DOWN,
                          headers=genesys_headers(TRUNK_DOWN, request_id=rid), timeout=30)
        ready = requests.get(f"{server.url}/readyz", timeout=30)
    assert r.status_code == 503
    assert r.headers["Retry-After"] == "5"
    assert r.json()["error"] == "broker unavailable, retry later"
    assert ready.status_code == 503 and ready.json()["checks"]["broker"].startswith("down")
    # the sender's retry, once the broker is back, is accepted, not answered "duplicate"
    before = ingest_depth(receiver_only)
    retry = post(receiver_only, "genesys", TRUNK_DOWN, genesys_headers(TRUNK_DOWN, request_id=rid))
    assert retry.status_code == 202
    assert ingest_depth(receiver_only) == before + 1


def test_503_redis_down(receiver_only: dict) -> None:
    down = {**receiver_only["env"], "SWITCHBOARD_REDIS_URL": "redis://127.0.0.1:1/0"}
    before = ingest_depth(receiver_only)
    with ReceiverServer(down) as server:
        r = requests.post(f"{server.url}/webhooks/genesys", data=TRUNK_DOWN, headers=genesys_headers(TRUNK_DOWN),
                          timeout=30)
    assert r.status_code == 503 and "Retry-After" in r.headers
    assert r.json()["error"] == "state store unavailable, retry later"
    assert_not_enqueued(receiver_only, before)


def test_healthz_and_readyz(receiver_only: dict) -> None:
    assert requests.get(f"{receiver_only['url']}/healthz", timeout=5).json() == {"status": "ok"}
    ready = requests.get(f"{receiver_only['url']}/readyz", timeout=5)
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"redis": "ok", "broker": "ok"}


def test_send_helper_signs_like_the_platforms(receiver_only: dict) -> None:
    from switchboard.config import load_config
    from switchboard.settings import load_settings

    cfg = load_config(load_settings(receiver_only["env"]).config_dir).sources["cxone"]
    body = (SAMPLES / "cxone-trunk-health.json").read_bytes()
    r = post(receiver_only, "cxone", body, signed_headers(cfg, body, "cxone-test-secret", request_id=uuid.uuid4().hex))
    assert r.status_code == 202


def test_status_json_reflects_a_queue_backlog(receiver_only: dict) -> None:
    """Nobody consumes this broker: accepted events pile up in "ingest", and status says so."""
    def status() -> dict:
        out = subprocess.run([sys.executable, "-m", "switchboard.cli", "status", "--json"], env=receiver_only["env"],
                             capture_output=True, text=True, timeout=60, check=True).stdout
        return json.loads(out)

    before = status()
    for _ in range(3):
        body = sample("genesys-trunk-down.json")
        body["event"]["trunkId"] = f"trunk-{uuid.uuid4().hex[:8]}"
        post_sample(receiver_only, "genesys", body)
    after = status()
    assert after["queues"]["ingest"] == before["queues"]["ingest"] + 3, (before, after)
    assert after["events"]["accepted"] == before["events"]["accepted"] + 3
    assert after["workers"] == {} and after["dead_letters"] is not None and "state_error" not in after


def test_503_when_the_ingest_backlog_is_over_its_bound(receiver_only: dict) -> None:
    """Nobody consumes this broker: once "ingest" holds the configured bound, senders are pushed back."""
    from switchboard.config import load_config
    from switchboard.settings import load_settings

    config = load_config(load_settings(receiver_only["env"]).config_dir)  # a fresh copy: safe to change
    config.service["ingest_max_depth"] = ingest_depth(receiver_only) + 2
    config.service["depth_check_every_s"] = 0.05
    with ReceiverServer(receiver_only["env"], config) as server:
        ctx = {**receiver_only, "url": server.url}
        answers = []
        for _ in range(2):
            body = sample("genesys-trunk-down.json")
            body["event"]["trunkId"] = f"trunk-{uuid.uuid4().hex[:8]}"
            answers.append(post_sample(ctx, "genesys", body))
        body = json.dumps(sample("genesys-trunk-down.json")).encode()
        # (a list: a 503 Response is falsy)
        wait_for(lambda: (a := post(ctx, "genesys", body, genesys_headers(body))).status_code == 503 and [a],
                 5, 0.06, "the depth guard")
        before = ingest_depth(ctx)
        r = post(ctx, "genesys", body, genesys_headers(body))
    assert r.status_code == 503 and r.json()["error"] == "ingest backlog over its bound, retry later"
    assert int(r.headers["Retry-After"]) >= 1
    assert_not_enqueued(ctx, before)
