"""A target's result and the event's outcome in one script (``Ledger.finish``), and ``Ledger.settle`` on its
own (the stalled sweep's): the last target to finish sets the one outcome from every target's result."""

from __future__ import annotations

import uuid

import redis

from switchboard.ledger import Ledger
from switchboard.metrics import OUTCOMES
from switchboard.store import Keys


def _ledger(state_redis: redis.Redis, run_id: str) -> Ledger:
    return Ledger(state_redis, Keys(f"t{run_id}settle{uuid.uuid4().hex[:6]}:"), 100)


def _routed(ledger: Ledger, event_id: str, targets: list[str]) -> None:
    ledger.accept(event_id, "genesys", 1.0, [])
    ledger.expect_targets(event_id, targets)
    ledger.set_fields(event_id, routed={"event_id": event_id}, body="{}")


def test_the_last_target_sets_the_outcome_from_every_result(state_redis: redis.Redis, run_id: str) -> None:
    ledger = _ledger(state_redis, run_id)
    _routed(ledger, "e1", ["pagerduty", "genesys_workitem"])
    before = OUTCOMES.labels("dead_lettered", "undeliverable to pagerduty")._value.get()
    assert ledger.finish("e1", "pagerduty", "dead_lettered", "401") is None  # genesys still pending
    assert ledger.outcome("e1") is None
    assert ledger.finish("e1", "pagerduty", "dispatched", "a second copy") is None  # recorded once, not again
    assert ledger.finish("e1", "genesys_workitem", "dispatched", "created") == "dead_lettered"
    trace = ledger.trace("e1")
    assert (trace["outcome"], trace["reason"]) == ("dead_lettered", "undeliverable to pagerduty")
    assert trace["targets"]["pagerduty"]["detail"] == "401"
    assert ledger.counts()["dead_lettered"] == 1 and ledger.counts()["dispatched"] == 0
    assert state_redis.zscore(ledger.keys.inflight, "e1") is None
    assert state_redis.hget(ledger.keys.ledger("e1"), "routed") is not None  # kept: it may be replayed
    assert OUTCOMES.labels("dead_lettered", "undeliverable to pagerduty")._value.get() == before + 1


def test_every_target_dispatched_is_dispatched_and_drops_what_a_replay_would_need(
        state_redis: redis.Redis, run_id: str) -> None:
    ledger = _ledger(state_redis, run_id)
    _routed(ledger, "e2", ["pagerduty", "genesys_workitem"])
    assert ledger.finish("e2", "pagerduty", "dispatched") is None
    assert ledger.finish("e2", "genesys_workitem", "dispatched") == "dispatched"
    trace = ledger.trace("e2")
    assert trace["reason"] == "delivered to genesys_workitem, pagerduty"  # sorted
    assert state_redis.hmget(ledger.keys.ledger("e2"), "routed", "body") == [None, None]
    assert ledger.counts()["dispatched"] == 1
    assert ledger.settle("e2") is None  # it has its outcome: never set twice
    assert ledger.counts()["dispatched"] == 1


def test_settle_on_its_own_after_a_crash_between_result_and_outcome(state_redis: redis.Redis, run_id: str) -> None:
    ledger = _ledger(state_redis, run_id)
    _routed(ledger, "e3", ["pagerduty"])
    assert ledger.finish_target("e3", "pagerduty", "dispatched") == 0  # the result alone, as before a crash
    assert ledger.outcome("e3") is None
    assert ledger.settle("e3") == "dispatched"
    assert ledger.trace("e3")["reason"] == "delivered to pagerduty"
