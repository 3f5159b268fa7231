"""Ledger batching (a stage task's writes in one round trip): nothing is lost, order is kept, and an outcome
is never visible before the stages that led to it."""

from __future__ import annotations

import json
from typing import Any

import pytest
import redis
from redis.connection import AbstractConnection

from switchboard.ledger import Ledger
from switchboard.store import Keys
from tests.conftest import REDIS_STATE_URL, made_prefix


def _ledger() -> tuple[Ledger, redis.Redis]:
    client = redis.Redis.from_url(REDIS_STATE_URL, decode_responses=True)
    return Ledger(client, Keys(made_prefix("tlb")), 100), client


def test_batched_writes_wait_for_the_block_end_or_an_outcome() -> None:
    ledger, client = _ledger()
    ledger.accept("e1", "genesys", 1.0, [])
    with ledger.batched():
        ledger.set_fields("e1", alert_key="k1")
        ledger.stage("e1", "normalize", 1.0, 0.5, result="ok")
        ledger.stage("e1", "dedupe", 1.1, 0.5, result="ok")
        assert ledger.trace("e1")["stages"] == []  # held in the batch
        ledger.stage("e1", "gate", 1.2, 0.5, result="suppressed")
        ledger.set_outcome("e1", "suppressed", "test")  # flushes first
        trace = ledger.trace("e1")
        assert [s["stage"] for s in trace["stages"]] == ["normalize", "dedupe", "gate"]
        assert trace["outcome"] == "suppressed" and client.hget(ledger.keys.ledger("e1"), "alert_key") == "k1"
    assert 0 < client.ttl(ledger.keys.ledger_stages("e1")) <= 100


def test_a_failing_block_still_records_the_stages_that_ran() -> None:
    ledger, _ = _ledger()
    ledger.accept("e2", "genesys", 1.0, [])
    with pytest.raises(RuntimeError), ledger.batched():
        ledger.stage("e2", "normalize", 1.0, 0.5, result="ok")
        raise RuntimeError("a stage blew up")
    assert [s["stage"] for s in ledger.trace("e2")["stages"]] == ["normalize"]
    ledger.stage("e2", "dedupe", 1.1, 0.5, result="ok")  # outside a batch: written at once
    assert len(ledger.trace("e2")["stages"]) == 2


def test_a_batch_touches_each_event_in_flight_once_and_only_those_in_flight() -> None:
    ledger, client = _ledger()
    ledger.accept("e3", "genesys", 1.0, [])  # in the in-flight index, scored by its last step (1.0)
    with ledger.batched() as pipe:
        ledger.stage("e3", "normalize", 1.0, 0.5, result="ok")
        ledger.stage("e4", "normalize", 1.0, 0.5, result="ok")  # not accepted here: never added to the index
        ledger.stage("e3", "dedupe", 1.1, 0.5, result="ok")
        pipe.set(ledger.keys.counter("mine"), "1")  # a caller's own write rides the same round trip
        assert client.zscore(ledger.keys.inflight, "e3") == 1.0 and client.get(ledger.keys.counter("mine")) is None
    assert client.zscore(ledger.keys.inflight, "e3") > 1.0
    assert client.zscore(ledger.keys.inflight, "e4") is None
    assert [s["stage"] for s in ledger.trace("e3")["stages"]] == ["normalize", "dedupe"]
    assert client.lrange(ledger.keys.ledger_stages("e4"), 0, -1) != []
    assert 0 < client.ttl(ledger.keys.ledger_stages("e4")) <= 100
    assert client.get(ledger.keys.counter("mine")) == "1"


@pytest.mark.parametrize("batched", [False, True], ids=["own-round-trip", "in-the-batch"])
def test_a_route_is_recorded_once_and_a_redelivered_route_keeps_the_first(batched: bool) -> None:
    ledger, client = _ledger()
    key = ledger.keys.ledger("e5")
    ledger.accept("e5", "genesys", 1.0, [])
    first = {"event_id": "e5", "routes": [{"target": "pagerduty", "priority": "critical"}]}

    def route(targets: list[str], routed: dict) -> None:
        if not batched:
            ledger.route_once("e5", targets, routed)
            return
        before = client.hmget(key, "pending", "targets", "routed")
        with ledger.batched():  # as fan_out runs inside the ingest task's batch
            ledger.route_once("e5", targets, routed)
            assert client.hmget(key, "pending", "targets", "routed") == before  # it rides the batch's round trip

    route(["pagerduty"], first)
    assert client.hmget(key, "pending", "targets") == ["1", '["pagerduty"]']
    assert json.loads(client.hget(key, "routed")) == first
    client.hincrby(key, "pending", -1)  # its dispatch finished
    # the route's message delivered again (a worker died before acking), routed differently by a newer config
    route(["pagerduty", "genesys_workitem"], {**first, "routes": [{"target": "genesys_workitem"}]})
    assert client.hmget(key, "pending", "targets") == ["0", '["pagerduty"]']
    assert json.loads(client.hget(key, "routed")) == first
    for k in client.scan_iter(f"{ledger.keys.prefix}*"):
        client.delete(k)


def test_finish_inside_a_batch_is_one_round_trip_with_the_stages_before_the_outcome(
        monkeypatch: pytest.MonkeyPatch) -> None:
    ledger, client = _ledger()
    ledger.accept("e6", "genesys", 1.0, [])
    ledger.route_once("e6", ["pagerduty"], {"event_id": "e6"})
    sent: list[bytes] = []
    original = AbstractConnection.send_packed_command

    def counted(conn: AbstractConnection, command: Any, check_health: bool = True) -> None:
        sent.append(command)
        original(conn, command, check_health)

    monkeypatch.setattr(AbstractConnection, "send_packed_command", counted)
    with ledger.batched() as pipe:  # as a dispatch ends: its done mark, its stage, its target's result
        pipe.set(ledger.keys.counter("done-mark"), "1")
        ledger.stage("e6", "dispatch:pagerduty", 2.0, 1.0, result="dispatched")
        assert ledger.finish("e6", "pagerduty", "dispatched", "ok") == "dispatched"  # the last target: settled
    monkeypatch.undo()
    assert len(sent) == 1
    trace = ledger.trace("e6")
    assert trace["outcome"] == "dispatched" and [s["stage"] for s in trace["stages"]] == ["dispatch:pagerduty"]
    assert client.get(ledger.keys.counter("done-mark")) == "1"
    with ledger.batched():  # the same dispatch again (a redelivery): already recorded, nothing settles twice
        assert ledger.finish("e6", "pagerduty", "dispatched", "again") is None
    assert ledger.counts()["dispatched"] == 1
    for k in client.scan_iter(f"{ledger.keys.prefix}*"):
        client.delete(k)
