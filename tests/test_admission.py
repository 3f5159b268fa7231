"""The receiver's gate (switchboard.admission): rate first, then claim + ledger record, in one script."""

from __future__ import annotations

import redis

from switchboard.admission import Gate
from switchboard.idempotency import IdempotencyKey
from switchboard.store import Keys
from tests.conftest import REDIS_STATE_URL, made_prefix


def _gate() -> tuple[Gate, Keys, redis.Redis]:
    client = redis.Redis.from_url(REDIS_STATE_URL, decode_responses=True)
    prefix = made_prefix("tadm")
    keys = Keys(prefix)
    return Gate(client, keys, prefix, 100), keys, client


def test_an_admitted_request_claims_its_keys_and_is_recorded_once() -> None:
    gate, keys, client = _gate()
    idem = [IdempotencyKey(keys.idem("genesys", "request-id", "r1"), 50),
            IdempotencyKey(keys.idem("genesys", "body", "b1"), 60)]
    first = gate.check("genesys", 100, 1, admit=True, event_id="e1", received_at=12.5, idempotency=idem)
    again = gate.check("genesys", 100, 1, admit=True, event_id="e2", received_at=13.0, idempotency=idem[1:])
    assert (first.kind, again.kind, again.earlier) == ("accepted", "duplicate", "e1")
    record = client.hgetall(keys.ledger("e1"))
    assert record["source"] == "genesys" and float(record["received_at"]) == 12.5
    assert 0 < client.ttl(keys.ledger("e1")) <= 100 and 50 < client.ttl(idem[1].key) <= 60
    assert client.get(keys.counter("accepted")) == "1" and not client.exists(keys.ledger("e2"))


def test_the_rate_is_decided_first_and_a_request_not_admitted_claims_nothing() -> None:
    gate, keys, client = _gate()
    idem = [IdempotencyKey(keys.idem("iot", "request-id", "x"), 50)]
    passed = gate.check("iot", 2, 60, admit=False, event_id="e1", idempotency=idem)  # e.g. a 422: a slot taken
    assert passed.kind == "passed" and not client.exists(idem[0].key) and not client.exists(keys.ledger("e1"))
    assert gate.check("iot", 2, 60, admit=True, event_id="e2", idempotency=idem).kind == "accepted"
    limited = gate.check("iot", 2, 60, admit=True, event_id="e3", idempotency=[])
    assert limited.kind == "limited" and 1 <= limited.retry_after_s <= 30
    assert not client.exists(keys.ledger("e3")) and client.get(keys.counter("accepted")) == "1"
    assert gate.check("genesys", 2, 60, admit=True, event_id="e4").kind == "accepted"  # per source
