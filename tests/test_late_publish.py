"""The receiver's late publish (webhook_app/late_publish.py). Redis is both store and broker and goes away
between the gate (idempotency claim + ``accepted``) and the publish: the publish fails, and so does undoing
the claim. The event must still reach the broker once it is back, because the sender's retry is answered
"duplicate" of that very event; before, that event was lost (1 in 12 Redis restarts, tests/reliability).

The store here is the machine's Redis and the broker a dedicated redis-server that the test stops and
starts; the store's failure at that one moment is injected (the release raises a connection error), as the
two cannot be made to fail between two calls of one request otherwise."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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
from tests.helpers import SECRETS, ReceiverServer, queued_event_ids, service_env
from tests.posting import unique_ztp
from tests.reliability.stack import RedisServer
from vendor_sandbox.server import SandboxServer
from webhook_app import late_publish


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
            wait_for(lambda: queued_event_ids(broker), 20, 0.05, "the held event to reach the broker")
            [event_id] = queued_event_ids(broker)
            assert state.ledger.trace(event_id)["source"] == "ztp"  # the event the gate accepted

            retry = send()  # the sender's retry: a duplicate of the event that is now queued
            assert retry.status_code == 200, retry.text
            assert retry.json() == {"status": "duplicate", "event_id": event_id}
            assert queued_event_ids(broker) == [event_id]  # queued once
            wait_for(lambda: state.late.pending() == 0, 5, 0.05, "the late publisher to finish")
            assert LATE_PUBLISHES.labels("published")._value.get() == published_before + 1



def _gate_lost_to_outage(monkeypatch: pytest.MonkeyPatch, state: object, server: RedisServer, *,
                         script_runs: bool) -> None:
    """The store (here also the broker) goes away during the gate's call: after its script ran (its reply lost
    with the connection, as a SIGTERM'd Redis does not flush it) or before it could run."""
    real_check = state.gate.check  # type: ignore[attr-defined]

    def check(*args: object, **kwargs: object) -> object:
        monkeypatch.setattr(state.gate, "check", real_check)  # type: ignore[attr-defined] - only this request
        if script_runs:
            real_check(*args, **kwargs)
            server.stop()
            raise redis.ConnectionError("injected: Connection closed by server (the reply was lost)")
        server.stop()
        return real_check(*args, **kwargs)  # a real connection error

    monkeypatch.setattr(state.gate, "check", check)


@contextmanager
def _receiver_on_one_redis(sandbox: SandboxServer, run_id: str, tmp_path: Path,
                           label: str) -> Iterator[tuple[RedisServer, ReceiverServer, Callable[[], requests.Response]]]:
    """A receiver whose store and broker are one dedicated redis-server, and the same delivery to send."""
    with RedisServer(tmp_path / "store") as server:
        env = service_env(f"{server.url}/0", f"{server.url}/1", sandbox.url, f"t{run_id}{label}:")
        config = load_config(load_settings(env).config_dir)
        body = json.dumps(unique_ztp()).encode()
        secret = SECRETS["SWITCHBOARD_SECRET_ZTP"].split(",")[0]
        with ReceiverServer(env) as receiver:
            yield server, receiver, lambda: post_signed(receiver.url, "ztp", config.sources["ztp"], body, secret,
                                                        request_id="r1", msg_id=f"msg_{label}1")


def _told_503_and_held(monkeypatch: pytest.MonkeyPatch, receiver: ReceiverServer, server: RedisServer,
                       send: Callable[[], requests.Response], *, script_runs: bool) -> None:
    _gate_lost_to_outage(monkeypatch, receiver.state, server, script_runs=script_runs)
    first = send()
    assert first.status_code == 503, first.text
    assert receiver.state.late.pending() == 1  # held: the store cannot say yet whether it accepted the event


def test_an_event_whose_gate_reply_was_lost_is_published_once_the_store_shows_it_accepted(
        sandbox: SandboxServer, run_id: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The loss seen in tests/reliability (Redis restart, RabbitMQ broker): the sender was told 503, its retry
    "duplicate" of an event that was accepted but never published."""
    with _receiver_on_one_redis(sandbox, run_id, tmp_path, "lost") as (server, receiver, send):
        state = receiver.state
        published_before = LATE_PUBLISHES.labels("published")._value.get()
        _told_503_and_held(monkeypatch, receiver, server, send, script_runs=True)

        server.start()
        broker = redis.Redis.from_url(f"{server.url}/0", decode_responses=True)
        wait_for(lambda: queued_event_ids(broker), 20, 0.05, "the event the gate accepted to reach the broker")
        [event_id] = queued_event_ids(broker)
        assert state.ledger.trace(event_id)["source"] == "ztp"

        retry = send()
        assert retry.status_code == 200, retry.text
        assert retry.json() == {"status": "duplicate", "event_id": event_id}
        wait_for(lambda: state.late.pending() == 0, 5, 0.05, "the late publisher to finish")
        assert queued_event_ids(broker) == [event_id]  # queued once
        assert LATE_PUBLISHES.labels("published")._value.get() == published_before + 1


def test_an_event_the_gate_never_admitted_is_not_published(
        sandbox: SandboxServer, run_id: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with _receiver_on_one_redis(sandbox, run_id, tmp_path, "never") as (server, receiver, send):
        state = receiver.state
        not_accepted_before = LATE_PUBLISHES.labels("not_accepted")._value.get()
        _told_503_and_held(monkeypatch, receiver, server, send, script_runs=False)

        server.start()
        wait_for(lambda: state.late.pending() == 0, 20, 0.05, "the late publisher to resolve the event")
        assert LATE_PUBLISHES.labels("not_accepted")._value.get() == not_accepted_before + 1
        broker = redis.Redis.from_url(f"{server.url}/0", decode_responses=True)
        assert queued_event_ids(broker) == []  # nothing claimed, nothing published

        retry = send()
        assert retry.status_code == 202, retry.text  # a new event: the first one never existed
        assert queued_event_ids(broker) == [retry.json()["event_id"]]


def test_events_of_unknown_admission_are_held_up_to_a_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    """During a long outage every request fails at the gate; only the first few (in flight when the store went
    away) can have been accepted, so the held ones are bounded and the rest are counted as not held."""
    monkeypatch.setattr(late_publish, "MAX_UNCERTAIN", 2)
    late = late_publish.LatePublisher(every_s=0.01)
    store_up = threading.Event()
    published: list[str] = []

    def accepted(event_id: str) -> bool:
        if not store_up.is_set():
            raise redis.ConnectionError("injected: store down")
        return event_id != "e2"  # e2's gate never ran

    not_held_before = LATE_PUBLISHES.labels("not_held")._value.get()
    for event_id in ("e1", "e2", "e3"):
        late.add_uncertain(event_id, lambda e=event_id: published.append(e), lambda e=event_id: accepted(e))
    assert late.pending() == 2
    assert LATE_PUBLISHES.labels("not_held")._value.get() == not_held_before + 1
    store_up.set()
    wait_for(lambda: late.pending() == 0, 5, 0.01, "the held events to be resolved")
    assert published == ["e1"]
    late.add_uncertain("e4", lambda: published.append("e4"), lambda: True)  # room again once resolved
    wait_for(lambda: late.pending() == 0, 5, 0.01, "e4 to be resolved")
    assert published == ["e1", "e4"]
