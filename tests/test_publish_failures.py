"""A publish the broker took but the receiver saw fail (a publisher confirm lost with its connection, a reply
that came too late): the 503 the sender gets must be true, or the 202 it gets instead.

``Ledger.unaccept`` un-accepts the event only if no worker has taken it; a worker takes only an event that is
still accepted (``Ledger.take``). Real receiver, real Redis broker, real worker; the failure is injected
after the message reached the broker."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from switchboard.admission import Gate
from switchboard.idempotency import IdempotencyKey
from switchboard.ledger import Ledger
from switchboard.store import Keys
from switchboard.waiting import wait_for
from tasks.kept_publisher import KeptPublisher
from tests.conftest import redis_broker_env
from tests.helpers import ReceiverServer, WorkerProcess, config_copy
from tests.posting import Sandbox, unique_ztp, wait_outcome


def test_unaccept_and_take_exclude_each_other(state_redis: redis.Redis, run_id: str) -> None:
    keys = Keys(f"t{run_id}unacc{uuid.uuid4().hex[:6]}:")
    ledger, gate = Ledger(state_redis, keys, 600), Gate(state_redis, keys, keys.prefix, 600)
    idem = [IdempotencyKey(f"{keys.prefix}idem:a", 600)]

    def accept(event_id: str) -> None:
        assert gate.check("ztp", 100, 1, admit=True, event_id=event_id, received_at=1.0, idempotency=idem,
                          body=b"{}").kind == "accepted"

    accept("e1")
    assert ledger.unaccept("e1", [idem[0].key])  # nobody took it: gone, and its key is free again
    assert ledger.counts()["accepted"] == 0
    assert state_redis.get(idem[0].key) is None
    assert state_redis.zscore(keys.inflight, "e1") is None
    assert not ledger.take("e1")  # its message, should it arrive, is dropped

    accept("e2")
    assert ledger.take("e2")
    assert not ledger.unaccept("e2", [idem[0].key])  # a worker has it: it stays accepted
    assert ledger.counts()["accepted"] == 1
    assert state_redis.get(idem[0].key) == "e2"
    assert ledger.take("e2")  # a redelivered copy still runs


@pytest.fixture
def stack(run_id: str, sandbox, state_redis: redis.Redis, tmp_path: Path) -> Iterator[dict]:
    cleanups: list = []
    env, broker_url = redis_broker_env(run_id, 10, "pf", sandbox.url, config_copy(tmp_path / "config"), cleanups)
    sb = Sandbox(sandbox.url)
    with ReceiverServer(env) as server:
        yield {"env": env, "server": server, "url": server.url, "logs": tmp_path, "sandbox": sb,
               "broker": redis.Redis.from_url(broker_url)}
    for cleanup in reversed(cleanups):
        cleanup()


def _published_then_failed(monkeypatch: pytest.MonkeyPatch, before_failing=lambda event_id: None) -> list[str]:
    """Every publish reaches the broker, then reports a lost connection (after ``before_failing``)."""
    published: list[str] = []
    original = KeptPublisher.publish

    def publish(self: KeptPublisher, *args: object, **options: object) -> None:
        original(self, *args, **options)
        event_id = (options.get("headers") or {}).get("event_id")
        published.append(event_id)
        before_failing(event_id)
        raise ConnectionResetError(104, "injected: the connection closed before the confirm arrived")

    monkeypatch.setattr(KeptPublisher, "publish", publish)
    return published


def _post(ctx: dict, body: bytes, request_id: str):  # noqa: ANN202
    from switchboard.config import load_config
    from switchboard.sender import post_signed
    from tests.helpers import SECRETS

    config = load_config(Path(ctx["env"]["SWITCHBOARD_CONFIG_DIR"]))
    secret = SECRETS["SWITCHBOARD_SECRET_ZTP"].split(",")[0]
    return post_signed(ctx["url"], "ztp", config.sources["ztp"], body, secret, request_id=request_id,
                       msg_id=f"msg_{request_id}")


def test_a_503_after_the_broker_took_the_message_means_it_never_runs(stack: dict,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    body = json.dumps(unique_ztp()).encode()
    published = _published_then_failed(monkeypatch)
    first = _post(stack, body, "r1")
    assert first.status_code == 503, first.text
    assert stack["broker"].llen("ingest") == 1  # the broker has it all the same
    monkeypatch.undo()
    retry = _post(stack, body, "r1")  # the same delivery again: a new event, not "duplicate"
    assert retry.status_code == 202, retry.text
    event_id = retry.json()["event_id"]
    assert event_id != published[0]
    ledger = stack["server"].state.ledger
    with WorkerProcess(stack["env"], stack["logs"], concurrency=1) as worker:
        assert wait_outcome(stack, event_id)["outcome"] == "dispatched"
        wait_for(lambda: "was not accepted" in worker.log_path.read_text(), 10, 0.05, "the dropped copy")
    assert ledger.trace(published[0]) is None  # the first copy ran nothing and recorded nothing
    assert ledger.counts()["accepted"] == 1 == ledger.counts()["dispatched"]
    sb = stack["sandbox"]
    assert len(sb.workitems(externalTag=f"switchboard:{event_id}:genesys_workitem")) == 1
    assert sb.workitems(externalTag=f"switchboard:{published[0]}:genesys_workitem") == []


def test_a_failed_publish_that_a_worker_already_took_is_answered_202(stack: dict,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    ledger = stack["server"].state.ledger
    with WorkerProcess(stack["env"], stack["logs"], concurrency=1):
        def taken(event_id: str) -> None:
            wait_for(lambda: ledger.r.hget(ledger.keys.ledger(event_id), "taken"), 30, 0.02, "a worker taking it")

        _published_then_failed(monkeypatch, taken)
        answer = _post(stack, json.dumps(unique_ztp()).encode(), "r2")
        assert answer.status_code == 202, answer.text
        event_id = answer.json()["event_id"]
        assert wait_outcome(stack, event_id)["outcome"] == "dispatched"
    assert ledger.counts()["accepted"] == 1 == ledger.counts()["dispatched"]
