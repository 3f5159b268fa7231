"""The dispatch lease (switchboard/dispatch_lease.py): the pure decision, and the compare-and-set on real
Redis that lets only one of two copies of a dispatch call the vendor."""

from __future__ import annotations

import uuid

import pytest
import redis

from switchboard.dispatch_lease import DONE, DispatchLease, decide, ended, held, lease_seconds
from switchboard.ledger import Ledger
from switchboard.store import Keys


@pytest.mark.parametrize(("state", "kind", "wait"), [
    (None, "send", 0.0),
    (DONE, "done", 0.0),
    ("inflight:1", "uncertain", 0.0),              # a state written before leases: its call has ended
    ("inflight:2:1012.500:abc", "wait", 12.5),     # another run is calling until t=1012.5
    ("inflight:2:999.000:abc", "uncertain", 0.0),  # that run died: its lease is over
    ("inflight:3:0:abc", "uncertain", 0.0),        # that run timed out and said so
    ("something-else", "uncertain", 0.0),          # never assume that nobody called
])
def test_decide(state: str | None, kind: str, wait: float) -> None:
    turn = decide(state, now=1000.0)
    assert turn.kind == kind
    assert turn.wait_s == pytest.approx(wait)


def test_a_lease_covers_a_token_fetch_and_the_call() -> None:
    assert lease_seconds({"connect_s": 3.05, "read_s": 10}) == pytest.approx(27.1)


def test_an_ended_lease_is_uncertain_at_once() -> None:
    value = held(2, until=5000.0)
    assert decide(value, now=1000.0).kind == "wait"
    assert decide(ended(value), now=1000.0).kind == "uncertain"
    assert ended(value).split(":")[3] == value.split(":")[3]  # the same run's token


@pytest.fixture
def store(state_redis: redis.Redis) -> redis.Redis:
    prefix = f"tlease{uuid.uuid4().hex[:8]}:"
    yield state_redis, prefix
    for key in state_redis.scan_iter(f"{prefix}*"):
        state_redis.delete(key)


def test_only_one_of_two_copies_takes_the_lease(store) -> None:
    client, prefix = store
    lease, key = DispatchLease(client), f"{prefix}state"
    first, second = held(1, 2e9), held(1, 2e9)
    assert lease.take(key, None, first, 60)
    assert not lease.take(key, None, second, 60)  # both saw "absent": only the first calls
    assert client.get(key) == first
    # after the holder's call ended without an answer, two copies that saw the ended lease: one takes it
    lease.release_uncertain(key, first, 60)
    seen = client.get(key)
    assert decide(seen, 1000.0).kind == "uncertain"
    assert lease.take(key, seen, second, 60)
    assert not lease.take(key, seen, held(2, 2e9), 60)
    assert 0 < client.ttl(key) <= 60


def test_a_target_recorded_twice_counts_once(store) -> None:
    client, prefix = store
    ledger = Ledger(client, Keys(prefix), 60)
    ledger.expect_targets("e1", ["pagerduty", "genesys_workitem"])
    assert ledger.finish_target("e1", "pagerduty", "dispatched", "first copy") == 1
    assert ledger.finish_target("e1", "pagerduty", "dispatched", "second copy") == -1  # not 0: genesys is pending
    assert ledger.target_results("e1")["pagerduty"]["detail"] == "first copy"
    assert ledger.finish_target("e1", "genesys_workitem", "dispatched") == 0
