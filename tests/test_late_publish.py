"""The receiver's late publish (webhook_app/late_publish.py). Redis is both store and broker and goes away
between the gate (idempotency claim + ``accepted``) and the publish: the publish fails, and so does undoing
the claim. The event must still reach the broker once it is back, because the sender's retry is answered
"duplicate" of that very event; before, that event was lost (1 in 12 Redis restarts, tests/reliability).

The store here is the machine's Redis and the broker a dedicated redis-server that the test stops and
starts; the store's failure at that one moment is injected (the release raises a connection error), as the
two cannot be made to fail between two calls of one request otherwise."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import redis
import requests

from switchboard.config import load_config
from switchboard.metrics import LATE_PUBLISHES
from switchboard.sender import post_signed
from switchboard.settings import load_settings
from switchboard.waiting import wait_for
from tests.conftest import REDIS_STATE_URL
from tests.helpers import SECRETS, ReceiverServer, service_env
from tests.posting import unique_ztp
from tests.reliability.stack import RedisServer
from vendor_sandbox.server import SandboxServer


def _queued_event_ids(broker: redis.Redis) -> list[str]:
    return [json.loads(m)["headers"]["event_id"] for m in broker.lrange("ingest", 0, -1)]


def test_an_event_neither_enqueued_nor_released_is_published_when_the_broker_is_back(
        sandbox: SandboxServer, run_id: str, state_redis: redis.Redis, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    with RedisServer(tmp_path / "broker") as server:
        env = service_env(f"{server.url}/0", REDIS_STATE_URL, sandbox.url, f"t{run_id}late:")
        config = load_config(load_settings(env).config_dir)
        body = json.dumps(unique_ztp()).encode()
        secret = SECRETS["SWITCHBOARD_SECRET_ZTP"].split(",")[0]

        def send() -> requests.Response:  # the same delivery each time: one webhook id
            return post_signed(url, "ztp", config.sources["ztp"], body, secret, request_id="r1", msg_id="msg_late1")

        with ReceiverServer(env) as receiver:
            url, state = receiver.url, receiver.state
            published_before = LATE_PUBLISHES.labels("published")._value.get()

            def store_down_too(*_: object) -> None:
                raise redis.ConnectionError("injected: the store went away with the broker")

            monkeypatch.setattr(state.ledger, "unaccept", store_down_too)
            server.stop()
            first = send()
            assert first.status_code == 503, first.text
            assert state.late.pending() == 1
            assert requests.get(f"{url}/readyz", timeout=10).json()["late_publishes_pending"] == 1

            server.start()  # same port, same data
            broker = redis.Redis.from_url(f"{server.url}/0", decode_responses=True)
            wait_for(lambda: _queued_event_ids(broker), 20, 0.05, "the held event to reach the broker")
            [event_id] = _queued_event_ids(broker)
            assert state.ledger.trace(event_id)["source"] == "ztp"  # the event the gate accepted

            retry = send()  # the sender's retry: a duplicate of the event that is now queued
            assert retry.status_code == 200, retry.text
            assert retry.json() == {"status": "duplicate", "event_id": event_id}
            assert _queued_event_ids(broker) == [event_id]  # queued once
            wait_for(lambda: state.late.pending() == 0, 5, 0.05, "the late publisher to finish")
            assert LATE_PUBLISHES.labels("published")._value.get() == published_before + 1

