"""Fault: clock jumps. libfaketime is not installed here and moving this machine's clock would disturb
every other process, so what is covered is exactly:

1. Under steady load, the SOURCES' clocks jump: event timestamps cycle through now, 10 years back, one
   day ahead and one hour back (the signing timestamp of Standard Webhooks stays true: a sender whose
   clock is off by more than 5 minutes is answered 401 by design). Every event must still be accepted,
   dispatched once, and carry its own source timestamp to PagerDuty.
2. The deferral store (maintenance holds) under a RELEASER clock that jumps: a hold due in the past is
   released at once, one 10 years ahead is capped at max_hold_s, a clock jumped back releases nothing
   early and loses nothing, a clock jumped forward past the release time releases it (once), and an
   entry claimed by a releaser that died comes back after its lease whatever the clock did meanwhile.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import redis

from switchboard.deferrals import Deferrals
from tests.conftest import REDIS_STATE_URL
from tests.helpers import ReceiverServer
from tests.reliability.accounting import assert_holds, settle_and_check
from tests.reliability.scenario import load, worker
from tests.reliability.stack import build_stack
from vendor_sandbox.server import SandboxServer

JUMPS = (timedelta(0), timedelta(days=-3652), timedelta(days=1), timedelta(hours=-1))


def _jumped(kind: str, n: int, payload: dict[str, Any]) -> None:
    at = (datetime.now(UTC) + JUMPS[n % len(JUMPS)]).strftime("%Y-%m-%dT%H:%M:%SZ")
    if kind == "pd":
        payload["event"]["timestamp"] = at
    else:
        payload["orchestrator_timestamp"] = at


def test_source_clock_jumps_under_load(fault_sandbox: SandboxServer, tmp_path: Path) -> None:
    stack = build_stack(tmp_path, "redis", fault_sandbox.url)
    try:
        with ReceiverServer(stack.env) as receiver:
            current = worker(stack)
            try:
                gen = load(receiver.url, stack, mutate=_jumped).run()
                report = settle_and_check(stack, gen, "clock jumps at the sources (timestamps -10y..+1d)")
            finally:
                current.__exit__(None, None, None)
        gen.assert_only_allowed_answers()
        assert_holds(report)
        assert report.outcomes == {"dispatched": report.accepted}
        sent = {e.event_id: e for e in gen.events}
        triggers = [r["json"] for r in stack.sandbox.requests("/v2/enqueue") if r["json"]["event_action"] == "trigger"]
        for body in triggers:
            event = sent[body["payload"]["custom_details"]["event_id"]]
            source_ts = json.loads(event.body)["event"]["timestamp"]
            assert datetime.fromisoformat(body["payload"]["timestamp"]) == datetime.fromisoformat(source_ts)
    finally:
        stack.close()


def test_deferral_release_under_a_jumping_releaser_clock() -> None:
    client = redis.Redis.from_url(REDIS_STATE_URL, decode_responses=True)
    prefix = f"trelclock{uuid.uuid4().hex[:8]}:"
    store = Deferrals(client, prefix, max_hold_s=3600)
    now = time.time()
    data = {"alert_key": "k", "timestamp": "2024-01-01T00:00:00Z", "status": "firing"}
    try:
        store.hold("past", stage="gate", data=data, release_at=now - 86400 * 365, reason="window")
        assert store.hold("future", stage="gate", data=data, release_at=now + 86400 * 3650, reason="window") \
            <= now + 3600 + 1  # capped at max_hold_s
        store.hold("soon", stage="gate", data=data, release_at=now + 600, reason="window")
        # the releaser's clock jumped back a day: only what was already due in the past comes out
        assert [e["event_id"] for e in store.claim_due(now - 86400)] == ["past"]
        store.done("past")
        assert store.claim_due(now) == []  # nothing early, nothing lost
        assert {e["event_id"] for e in store.list()} == {"future", "soon"}
        # jumped forward 20 minutes: "soon" is due by that clock and comes out once; "future" stays
        claimed = store.claim_due(now + 1200, lease_s=60)
        assert [e["event_id"] for e in claimed] == ["soon"]
        assert store.claim_due(now + 1200, lease_s=60) == []  # leased: a second releaser does not get it
        # that releaser died without done(); once its lease is over (by any releaser's clock) it comes back
        assert [e["event_id"] for e in store.claim_due(now + 1200 + 61)] == ["soon"]
        store.done("soon")
        assert [e["event_id"] for e in store.list()] == ["future"]
    finally:
        for key in client.scan_iter(f"{prefix}*"):
            client.delete(key)
