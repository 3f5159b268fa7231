"""Time windows end to end on both brokers: dialing windows at the customer's local time (no call at
03:00, a call at 10:00, never with DND, a daily cap) and maintenance holds released when the window
closes, through real workers (with beat), the receiver and the vendor sandbox."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis

from switchboard.config import load_config
from switchboard.dialing import plan_call
from switchboard.store import Keys
from switchboard.waiting import wait_for
from tests.conftest import REDIS_STATE_URL, own_broker
from tests.helpers import ROOT, ReceiverServer, WorkerProcess, config_copy, service_env
from tests.posting import Sandbox, post, sample, unique_iot, unique_ztp, wait_outcome

MAINT_SITE = "SITE_MAINT_TEST"
DIALING = load_config(ROOT / "config").windows["dialing"]
HOLD_S = 12


def _zone_at_local_hour(hour: int) -> str:
    now = datetime.now(UTC)
    offset = (hour - now.hour + 12) % 24 - 12
    return f"Etc/GMT{'-' if offset >= 0 else '+'}{abs(offset)}"  # POSIX names have the sign reversed


@pytest.fixture
def stack(broker_kind: str, run_id: str, sandbox, state_redis: redis.Redis, tmp_path: Path) -> Iterator[dict]:
    """Receiver + one worker with beat, on its own broker and prefix, with a maintenance window that
    opened a minute ago and closes HOLD_S seconds from now (the clock really moves: no sleeps, waits)."""
    cleanups: list = []
    broker = own_broker(broker_kind, 15, f"windows-{uuid.uuid4().hex[:6]}", run_id, cleanups)
    prefix = f"t{run_id}w{uuid.uuid4().hex[:4]}:"
    now = datetime.now(UTC)
    closes = now + timedelta(seconds=HOLD_S)
    window = (f'maintenance:\n  - name: test-window\n    start: "{(now - timedelta(minutes=1)).isoformat()}"\n'
              f'    end: "{closes.isoformat()}"\n    scope: {{site: [{MAINT_SITE}]}}\n')
    config_dir = config_copy(tmp_path / "config", {"windows.yaml": [("maintenance: []\n", window)]})
    env = service_env(broker, REDIS_STATE_URL, sandbox.url, prefix, SWITCHBOARD_CONFIG_DIR=str(config_dir))
    with WorkerProcess(env, tmp_path, beat=True) as worker, ReceiverServer(env) as server:
        yield {"env": env, "server": server, "url": server.url, "keys": Keys(prefix), "worker": worker,
               "closes": closes, "config": load_config(config_dir)}
    for cleanup in reversed(cleanups):
        cleanup()


def _customer(sb: Sandbox, **record: object) -> str:
    customer = f"CUST-{uuid.uuid4().hex[:8]}"
    sb.send("PUT", f"/_sandbox/crm/customers/{customer}",
            {"phone": "+15551239999", "doNotDisturb": False, "name": "Test", **record})
    return customer


def test_iot_alert_at_3am_local_files_a_scheduled_work_item_and_no_call(pipeline: dict, clean_sandbox) -> None:
    sb = Sandbox(clean_sandbox.url)
    zone = _zone_at_local_hour(3)
    customer = _customer(sb, timezone=zone)
    event_id = post(pipeline, "iot", unique_iot(customerId=customer))
    trace = wait_outcome(pipeline, event_id)
    assert trace["outcome"] == "dispatched", trace
    assert sb.get("/_sandbox/genesys/callbacks") == []
    [item] = sb.workitems(externalTag=f"switchboard:{event_id}:iot_call")
    expected = plan_call({"phone": "+15551239999", "timezone": zone, "doNotDisturb": False},
                         datetime.fromtimestamp(trace["finished_at"], UTC), DIALING)
    assert not expected.call and expected.rule == "window"
    due = datetime.fromisoformat(item["dateDue"])
    assert due == expected.next_allowed  # scheduled for the next allowed time: 08:00 local
    assert item["priority"] == 25  # non-urgent (the "low" priority of targets.yaml)
    assert due.astimezone(expected.next_allowed.tzinfo) > datetime.now(UTC)
    assert "[window]" in trace["targets"]["iot_call"]["detail"]


def test_the_same_alert_at_10am_local_places_one_call(pipeline: dict, clean_sandbox) -> None:
    sb = Sandbox(clean_sandbox.url)
    customer = _customer(sb, timezone=_zone_at_local_hour(10))
    event_id = post(pipeline, "iot", unique_iot(customerId=customer))
    trace = wait_outcome(pipeline, event_id)
    assert trace["outcome"] == "dispatched", trace
    calls = [c for c in sb.get("/_sandbox/genesys/callbacks") if c["data"].get("event_id") == event_id]
    assert len(calls) == 1 and sb.workitems(externalTag=f"switchboard:{event_id}:iot_call") == []
    assert "[allowed]" in trace["targets"]["iot_call"]["detail"]


def test_dnd_customer_is_never_called(pipeline: dict, clean_sandbox) -> None:
    sb = Sandbox(clean_sandbox.url)
    ids = [post(pipeline, "iot", unique_iot(customerId=_customer(sb, timezone=_zone_at_local_hour(h),
                                                              doNotDisturb=True)))
           for h in (3, 10, 15)]
    for event_id in ids:
        trace = wait_outcome(pipeline, event_id)
        assert trace["outcome"] == "dispatched" and "[dnd]" in trace["targets"]["iot_call"]["detail"]
        assert len(sb.workitems(externalTag=f"switchboard:{event_id}:iot_call")) == 1
    assert sb.get("/_sandbox/genesys/callbacks") == []


def test_daily_call_cap_turns_the_fourth_call_into_a_work_item(pipeline: dict, clean_sandbox) -> None:
    sb = Sandbox(clean_sandbox.url)
    customer = _customer(sb, timezone=_zone_at_local_hour(11))
    details = []
    for _ in range(4):
        event_id = post(pipeline, "iot", unique_iot(customerId=customer))
        details.append(wait_outcome(pipeline, event_id)["targets"]["iot_call"]["detail"])
    assert [d.split(" ")[0] for d in details] == ["callback"] * 3 + ["workitem"]
    assert "[cap]" in details[3]
    assert len(sb.get("/_sandbox/genesys/callbacks")) == 3


def test_alert_in_a_maintenance_window_is_held_then_released_once(stack: dict, clean_sandbox) -> None:
    sb = Sandbox(clean_sandbox.url)
    event_id = post(stack, "ztp", unique_ztp(site_id=MAINT_SITE))
    held = wait_outcome(stack, event_id)
    assert held["outcome"] == "deferred" and "test-window" in held["reason"]
    gate = next(s for s in held["stages"] if s["stage"] == "gate")
    assert abs(gate["release_at"] - stack["closes"].timestamp()) < 1
    listed = subprocess.run([sys.executable, "-m", "switchboard.cli", "deferred", "list", "--json"],
                            env=stack["env"], capture_output=True, text=True, timeout=60, check=True).stdout
    assert event_id in [json.loads(line)["event_id"] for line in listed.splitlines()]
    tag = f"switchboard:{event_id}:genesys_workitem"
    assert sb.workitems(externalTag=tag) == []  # nothing reaches the vendor while held
    ledger = stack["server"].state.ledger
    assert ledger.counts()["deferred"] >= 1

    released = wait_for(lambda: (t := ledger.trace(event_id))["outcome"] not in (None, "deferred") and t,
                        HOLD_S + 30, 0.2, "the release after the window closes")
    assert released["outcome"] == "dispatched" and released["releases"] == 1
    assert time.time() >= stack["closes"].timestamp()  # not before the window closed
    assert len(sb.workitems(externalTag=tag)) == 1  # reached the vendor once
    counts = ledger.counts()
    assert counts["accepted"] == sum(v for k, v in counts.items() if k != "accepted")
    assert counts["deferred"] == 0


def test_alert_resolved_during_the_window_is_suppressed(stack: dict, clean_sandbox) -> None:
    sb = Sandbox(clean_sandbox.url)
    trunk = f"trunk-{uuid.uuid4().hex[:8]}"
    down, up = sample("genesys-trunk-down.json"), sample("genesys-trunk-up.json")
    for body in (down, up):
        body["event"].update(trunkId=trunk, siteId=MAINT_SITE)
    down_id = post(stack, "genesys", down)
    assert wait_outcome(stack, down_id)["outcome"] == "deferred"
    up_id = post(stack, "genesys", up)
    assert wait_outcome(stack, up_id)["outcome"] == "deferred"
    ledger = stack["server"].state.ledger
    for event_id in (down_id, up_id):
        wait_for(lambda e=event_id: ledger.trace(e)["outcome"] not in (None, "deferred"), HOLD_S + 30, 0.2,
                 "release of " + event_id)
    down_trace = ledger.trace(down_id)
    assert down_trace["outcome"] == "suppressed" and "resolved while held" in down_trace["reason"]
    triggers = [r for r in sb.requests("/v2/enqueue") if r["json"].get("event_action") == "trigger"
                and r["json"].get("dedup_key") == down_trace["alert_key"]]
    assert triggers == []  # nobody was paged for a trunk that came back during maintenance
    assert ledger.trace(up_id)["outcome"] == "dispatched"
