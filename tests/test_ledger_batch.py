"""Ledger batching (a stage task's writes in one round trip): nothing is lost, order is kept, and an outcome
is never visible before the stages that led to it."""

from __future__ import annotations

import uuid

import pytest
import redis

from switchboard.ledger import Ledger
from switchboard.store import Keys
from tests.conftest import REDIS_STATE_URL


def _ledger() -> tuple[Ledger, redis.Redis]:
    client = redis.Redis.from_url(REDIS_STATE_URL, decode_responses=True)
    return Ledger(client, Keys(f"tlb{uuid.uuid4().hex[:8]}:"), 100), client


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
