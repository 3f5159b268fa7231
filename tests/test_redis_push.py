"""The receiver's gate pushing the ingest message itself when the broker is the state store's Redis database
(tasks/redis_push.py, switchboard/admission.py): the entry is what kombu would push, it is pushed only for an
accepted event, nothing is written when it cannot be pushed, and a real worker runs what was pushed.

Each test has a redis-server of its own (tests/reliability/stack.RedisServer): broker and store share its
database 0, as with ``make up``'s defaults."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from kombu.transport import redis as kombu_redis

from switchboard.admission import Gate, PushEntry
from switchboard.broker import same_redis_database
from switchboard.idempotency import IdempotencyKey
from switchboard.settings import load_settings
from switchboard.store import Keys
from switchboard.waiting import wait_for
from tasks.app import INGEST_QUEUE, make_celery
from tasks.kept_publisher import KeptPublisher
from tasks.pipeline import ingest_signature
from tasks.redis_push import RedisPushBuilder
from tests.helpers import ReceiverServer, WorkerProcess, config_copy, queued_event_ids, service_env
from tests.posting import send, unique_ztp
from tests.reliability.stack import RedisServer
from vendor_sandbox.server import SandboxServer
from webhook_app import create_app


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    with RedisServer(tmp_path / "redis") as server:
        yield server


@pytest.mark.parametrize(("broker", "state", "same"), [
    ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0", True),
    ("redis://:pw@127.0.0.1:6379/3", "redis://:pw@127.0.0.1:6379/3", True),
    ("redis://127.0.0.1:6379/9", "redis://127.0.0.1:6379/1", False),       # another database
    ("redis://127.0.0.1:6380/0", "redis://127.0.0.1:6379/0", False),       # another server
    ("redis://:a@127.0.0.1:6379/0", "redis://:b@127.0.0.1:6379/0", False),  # other credentials
    ("rediss://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0", False),      # TLS on one side only
    ("amqp://guest:guest@127.0.0.1:5672//", "redis://127.0.0.1:6379/0", False),
    ("redis://127.0.0.1:6379/0;redis://127.0.0.1:6380/0", "redis://127.0.0.1:6379/0", False),  # failover list
    ("redis://127.0.0.1:6379/0", "not a url", False),
])
def test_the_gate_pushes_only_when_broker_and_store_are_one_database(broker: str, state: str, same: bool) -> None:
    assert same_redis_database(broker, state) is same


ENVELOPE = {"event_id": "e1", "source": "ztp", "received_at": 12.5, "payload": {"deviceMac": "AA"}}


def _celery(url: str) -> Any:
    """The app with ``url`` as both broker and store."""
    return make_celery(load_settings({"SWITCHBOARD_BROKER_URL": url, "SWITCHBOARD_REDIS_URL": url}))


def _without_ids(message: dict[str, Any]) -> dict[str, Any]:
    """The message less what differs between two publishes of one signature (task id, tag, publish time)."""
    headers = {k: v for k, v in message["headers"].items() if k not in ("id", "root_id", "published_at")}
    properties = {k: v for k, v in message["properties"].items() if k not in ("delivery_tag", "correlation_id")}
    return {**message, "headers": headers, "properties": properties}


@pytest.mark.parametrize("key_prefix", ["", "sbx:"])
def test_the_entry_is_what_a_publish_pushes(own_redis: RedisServer, key_prefix: str) -> None:
    url = f"{own_redis.url}/0"
    celery = _celery(url)
    if key_prefix:  # kombu's global_keyprefix: the list's name carries it
        celery.conf.broker_transport_options = {**celery.conf.broker_transport_options,
                                                "global_keyprefix": key_prefix}
    envelope = ENVELOPE
    options = {"headers": {"event_id": "e1"}, "argsrepr": "({'event_id': 'e1'},)"}
    builder = RedisPushBuilder(celery, [INGEST_QUEUE])
    entry = builder.build(ingest_signature(celery, envelope, "fused"), **options)
    client = redis.Redis.from_url(url, decode_responses=True)
    assert entry.key == f"{key_prefix}{INGEST_QUEUE}" and client.llen(entry.key) == 0  # built, not pushed
    with pytest.raises(TypeError):
        builder.publish(ingest_signature(celery, envelope, "fused"), **options)

    KeptPublisher(celery, [INGEST_QUEUE]).publish(ingest_signature(celery, envelope, "fused"), retry=False,
                                                  **options)
    [published] = client.lrange(entry.key, 0, -1)
    ours = json.loads(entry.payload)
    assert _without_ids(ours) == _without_ids(json.loads(published))
    assert entry.payload == kombu_redis.dumps(ours)  # serialized as the transport does (orjson: tasks/json_codec.py)
    assert ours["headers"]["task"] == "switchboard.ingest" and ours["properties"]["delivery_info"]["routing_key"]
    builder.close()


def test_a_chain_is_refused_before_anything_is_sent(own_redis: RedisServer) -> None:
    """Celery publishes a chain's first message through a producer of its own, not the recording one: building
    it would publish it for real."""
    url = f"{own_redis.url}/0"
    celery = _celery(url)
    with pytest.raises(ValueError, match="chain"):
        RedisPushBuilder(celery, [INGEST_QUEUE]).build(ingest_signature(celery, ENVELOPE, "chain"), headers={},
                                                       argsrepr="")
    assert redis.Redis.from_url(url).llen(INGEST_QUEUE) == 0


def _gate(client: redis.Redis) -> tuple[Gate, Keys]:
    keys = Keys("tpush:")
    return Gate(client, keys, "tpush:", 100), keys


def test_the_gate_pushes_for_an_accepted_event_only(own_redis: RedisServer) -> None:
    client = redis.Redis.from_url(f"{own_redis.url}/0", decode_responses=True)
    gate, keys = _gate(client)
    idem = [IdempotencyKey(keys.idem("ztp", "body", "b1"), 60)]

    def push(n: int) -> PushEntry:
        return PushEntry("ingest", f"message {n}")

    assert gate.check("ztp", 2, 60, admit=True, event_id="e1", idempotency=idem, push=push(1)).kind == "accepted"
    assert gate.check("ztp", 2, 60, admit=True, event_id="e2", idempotency=idem, push=push(2)).kind == "duplicate"
    assert gate.check("ztp", 2, 60, admit=True, event_id="e3", push=push(3)).kind == "limited"
    assert gate.check("iot", 2, 60, admit=False, event_id="e4", push=push(4)).kind == "passed"  # e.g. a 422
    assert gate.check("iot", 2, 60, admit=True, event_id="e5").kind == "accepted"  # no entry: nothing pushed
    assert client.lrange("ingest", 0, -1) == ["message 1"]
    assert client.hget(keys.ledger("e1"), "event_id") == "e1" and client.exists(keys.ledger("e5"))


def test_a_queue_that_is_not_a_list_writes_nothing(own_redis: RedisServer) -> None:
    """A script's writes stay when a later command fails: the queue's type is checked before any write, so the
    event is neither claimed nor recorded and the sender's retry is accepted once the queue is fixed."""
    client = redis.Redis.from_url(f"{own_redis.url}/0", decode_responses=True)
    gate, keys = _gate(client)
    idem = [IdempotencyKey(keys.idem("ztp", "body", "b1"), 60)]
    client.set("ingest", "not a list")
    with pytest.raises(redis.ResponseError, match="not a list"):
        gate.check("ztp", 2, 60, admit=True, event_id="e1", idempotency=idem, push=PushEntry("ingest", "m1"))
    assert client.keys("tpush:*") == []  # no rate slot, claim, ledger record, counter or in-flight entry
    client.delete("ingest")
    assert gate.check("ztp", 2, 60, admit=True, event_id="e2", idempotency=idem,
                      push=PushEntry("ingest", "m2")).kind == "accepted"
    assert client.lrange("ingest", 0, -1) == ["m2"]


def test_the_receiver_accepts_and_enqueues_in_one_step_and_a_worker_runs_it(
        own_redis: RedisServer, sandbox: SandboxServer, run_id: str, tmp_path: Path) -> None:
    url = f"{own_redis.url}/0"
    env = service_env(url, url, sandbox.url, f"t{run_id}push:")
    client = redis.Redis.from_url(url, decode_responses=True)
    other_db = create_app(load_settings({**env, "SWITCHBOARD_BROKER_URL": f"{own_redis.url}/1"}))
    assert other_db.extensions["switchboard"].push_builder is None

    with ReceiverServer(env) as receiver:
        assert receiver.state.push_builder is not None
        ctx = {"env": env, "url": receiver.url}
        body = json.dumps(unique_ztp()).encode()
        first = send(ctx, "ztp", body, request_id="push1")
        assert first.status_code == 202, first.text
        event_id = first.json()["event_id"]
        assert queued_event_ids(client) == [event_id]
        assert receiver.state.ledger.trace(event_id)["source"] == "ztp"
        again = send(ctx, "ztp", body, request_id="push1")  # the sender's retry
        assert again.status_code == 200 and again.json()["event_id"] == event_id
        invalid = send(ctx, "ztp", {"not": "a ztp event"}, request_id="push2")
        assert invalid.status_code == 422
        assert queued_event_ids(client) == [event_id]  # neither the duplicate nor the invalid one is queued

        own_redis.stop()  # store and broker away: 503, nothing held for later
        down = send(ctx, "ztp", unique_ztp(), request_id="push3")
        assert down.status_code == 503 and down.headers["Retry-After"]
        assert receiver.state.late.pending() == 0
        own_redis.start()
        back = send(ctx, "ztp", unique_ztp(), request_id="push3")  # the retry is a new, accepted event
        assert back.status_code == 202, back.text
        queued = queued_event_ids(client)
        assert queued == [back.json()["event_id"], event_id]

        with WorkerProcess(env, tmp_path):
            ledger = receiver.state.ledger
            wait_for(lambda: all(ledger.outcome(e) for e in queued), 60, 0.1, "both events to reach an outcome")
        assert [ledger.outcome(e) for e in queued] == ["dispatched", "dispatched"]
        assert client.llen(INGEST_QUEUE) == 0


def test_with_the_per_stage_grain_the_receiver_publishes_after_the_gate(
        own_redis: RedisServer, sandbox: SandboxServer, run_id: str, tmp_path: Path) -> None:
    url = f"{own_redis.url}/0"
    grain = [("pipeline_grain: fused", "pipeline_grain: chain")]
    config_dir = config_copy(tmp_path / "config", {"service.yaml": grain})
    env = service_env(url, url, sandbox.url, f"t{run_id}pushc:", SWITCHBOARD_CONFIG_DIR=str(config_dir))
    with ReceiverServer(env) as receiver:
        assert receiver.state.push_builder is not None
        answer = send({"env": env, "url": receiver.url}, "ztp", unique_ztp(), request_id="chain1")
        assert answer.status_code == 202, answer.text
        client = redis.Redis.from_url(url, decode_responses=True)
        assert queued_event_ids(client) == [answer.json()["event_id"]]  # once: published, not also pushed


def test_a_store_away_before_the_first_webhook_is_a_503_and_nothing_is_claimed(
        own_redis: RedisServer, sandbox: SandboxServer, run_id: str) -> None:
    """The first build on a connection connects and declares the queue: with Redis away that fails before
    the gate, so the retry is a new event."""
    url = f"{own_redis.url}/0"
    env = service_env(url, url, sandbox.url, f"t{run_id}pushd:")
    with ReceiverServer(env) as receiver:
        ctx = {"env": env, "url": receiver.url}
        body = json.dumps(unique_ztp()).encode()
        own_redis.stop()
        down = send(ctx, "ztp", body, request_id="down1")
        assert down.status_code == 503 and down.json()["error"] == "state store unavailable, retry later"
        own_redis.start()
        back = send(ctx, "ztp", body, request_id="down1")
        assert back.status_code == 202, back.text
        assert queued_event_ids(redis.Redis.from_url(url)) == [back.json()["event_id"]]
