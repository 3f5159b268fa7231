"""The ingress floor app (bench/floor_app.py): the bench's third ingress baseline does its four duties for real
(signature, JSON, idempotency claim, a publish the broker holds) on both brokers, and cleans up after itself."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest
import redis
from kombu import Connection

from bench.floor_app import QUEUE, clean_up, create_app, idempotency_prefix
from bench.scenario import trunk_down_webhooks
from tests.conftest import REDIS_STATE_URL
from tests.helpers import ROOT, service_env


@pytest.fixture
def floor(publish_broker: tuple[str, str], run_id: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict]:
    kind, broker_url = publish_broker
    prefix = f"t{run_id}floor{uuid.uuid4().hex[:6]}:"
    env = service_env(broker_url, REDIS_STATE_URL, "http://127.0.0.1:9", prefix,
                      SWITCHBOARD_CONFIG_DIR=str(ROOT / "config"))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    yield {"kind": kind, "env": env, "client": create_app().test_client()}
    clean_up(broker_url, REDIS_STATE_URL, prefix)


def _enqueued(kind: str, broker_url: str) -> list[dict]:
    """What the floor app enqueued, oldest first (read and removed)."""
    if kind == "redis":
        client = redis.Redis.from_url(broker_url)
        return [json.loads(raw) for raw in reversed(client.lrange(QUEUE, 0, -1))]
    out = []
    with Connection(broker_url) as conn:
        channel = conn.default_channel
        while (message := channel.basic_get(QUEUE, no_ack=True)) is not None:
            assert message.properties["delivery_mode"] == 2  # persistent, as the receiver publishes
            out.append(json.loads(message.body))
    return out


def _keys(kind: str, broker_url: str, prefix: str) -> list[str]:
    store = redis.Redis.from_url(broker_url if kind == "redis" else REDIS_STATE_URL)
    return list(store.scan_iter(match=idempotency_prefix(prefix) + "*"))


def test_the_floor_accepts_once_refuses_a_bad_signature_and_cleans_up(floor: dict) -> None:
    kind, env, client = floor["kind"], floor["env"], floor["client"]
    (body, headers), (other, other_headers) = trunk_down_webhooks(env, 2)
    first = client.post("/webhooks/genesys", data=body, headers=headers)
    assert first.status_code == 202 and first.json["status"] == "accepted"
    again = client.post("/webhooks/genesys", data=body, headers=headers)  # the sender's retry: same request id
    assert again.status_code == 200 and again.json == {"status": "duplicate"}
    forged = client.post("/webhooks/genesys", data=other, headers={**other_headers, "X-Genesys-Signature": "0" * 64})
    assert forged.status_code == 401
    assert client.post("/webhooks/genesys", data=other, headers=other_headers).status_code == 202
    enqueued = _enqueued(kind, env["SWITCHBOARD_BROKER_URL"])
    assert [m["payload"] for m in enqueued] == [json.loads(body), json.loads(other)]
    assert enqueued[0]["event_id"] == first.json["event_id"] and enqueued[0]["source"] == "genesys"
    prefix = env["SWITCHBOARD_KEY_PREFIX"]
    assert len(_keys(kind, env["SWITCHBOARD_BROKER_URL"], prefix)) == 2
    clean_up(env["SWITCHBOARD_BROKER_URL"], REDIS_STATE_URL, prefix)
    assert _keys(kind, env["SWITCHBOARD_BROKER_URL"], prefix) == []
    if kind == "redis":
        assert not redis.Redis.from_url(env["SWITCHBOARD_BROKER_URL"]).exists(QUEUE)
    else:
        with Connection(env["SWITCHBOARD_BROKER_URL"]) as conn, pytest.raises(Exception, match="NOT_FOUND"):
            conn.default_channel.queue_declare(QUEUE, passive=True)
