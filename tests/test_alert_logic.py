"""Alert intelligence's pure decisions (flapping, dependency graph, storms, grouping) and the incident store
that applies them atomically in a real Redis."""

from __future__ import annotations

import random
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import redis
from hypothesis import given, settings
from hypothesis import strategies as st

from switchboard import grouping
from switchboard.config import ConfigError, load_config
from switchboard.flapping import decide
from switchboard.incidents import IncidentStore
from tests.helpers import ROOT

COOLDOWN = 300.0


def _apply(record: dict, decision) -> None:
    record.update({k: v for k, v in decision.updates.items()})


# --- flapping ----------------------------------------------------------------------------------------------

def test_first_firing_alert_is_delivered_and_starts_the_cooldown() -> None:
    d = decide({}, event_id="e1", status="firing", ts=10, now=100, cooldown_s=COOLDOWN, released=False)
    assert d.action == "deliver" and d.updates["status"] == "firing" and d.updates["changed_at"] == 100


def test_a_change_inside_the_cooldown_is_held_until_it_ends() -> None:
    record = {"status": "firing", "changed_at": 100, "delivered_ts": 10}
    d = decide(record, event_id="e2", status="resolved", ts=11, now=130, cooldown_s=COOLDOWN, released=False)
    assert d.action == "hold" and d.release_at == 400 and d.updates["pending"] == "e2"


def test_at_the_end_of_the_cooldown_only_the_latest_held_state_is_delivered() -> None:
    record = {"status": "firing", "changed_at": 100, "delivered_ts": 10, "pending": "e3", "pending_ts": 12}
    older = decide(record, event_id="e2", status="resolved", ts=11, now=401, cooldown_s=COOLDOWN, released=True)
    assert older.action == "suppress" and "superseded" in older.reason
    latest = decide(record, event_id="e3", status="resolved", ts=12, now=401, cooldown_s=COOLDOWN, released=True)
    assert latest.action == "deliver" and latest.updates["status"] == "resolved" and latest.updates["changed_at"] == 401


def test_a_flap_that_settles_back_to_the_delivered_state_sends_nothing() -> None:
    record = {"status": "firing", "changed_at": 100, "delivered_ts": 10, "pending": "e3", "pending_ts": 12}
    d = decide(record, event_id="e3", status="firing", ts=12, now=401, cooldown_s=COOLDOWN, released=True)
    assert d.action == "suppress" and "settled back to firing" in d.reason


def test_an_older_report_arriving_late_never_wins() -> None:
    record = {"status": "firing", "changed_at": 100, "delivered_ts": 50}
    d = decide(record, event_id="e0", status="resolved", ts=40, now=500, cooldown_s=COOLDOWN, released=False)
    assert d.action == "suppress" and "out of order" in d.reason
    held = {"status": "firing", "changed_at": 100, "delivered_ts": 50, "pending": "e9", "pending_ts": 60}
    d = decide(held, event_id="e5", status="resolved", ts=55, now=150, cooldown_s=COOLDOWN, released=False)
    assert d.action == "suppress" and "superseded" in d.reason


def test_a_recovery_with_nothing_open_is_not_sent_but_everything_passes_when_the_feature_is_off() -> None:
    d = decide({}, event_id="e1", status="resolved", ts=1, now=2, cooldown_s=COOLDOWN, released=False)
    assert d.action == "suppress" and "nothing to resolve" in d.reason
    off = decide({"status": "firing", "changed_at": 1}, event_id="e2", status="resolved", ts=2, now=2,
                 cooldown_s=0, released=False)
    assert off.action == "deliver"


@settings(max_examples=200, deadline=None)
@given(statuses=st.lists(st.sampled_from(["firing", "resolved"]), min_size=1, max_size=30),
       seed=st.integers(0, 2**32 - 1))
def test_any_flap_in_any_processing_order_delivers_the_latest_state_at_most_once(statuses: list[str],
                                                                                  seed: int) -> None:
    """The trunk fired at t=0 (delivered); then ``statuses`` are reported at ts 1..n but processed in a
    random order inside the cooldown; then every hold is released in a random order. The vendor ends in
    the latest reported state, and got at most one more delivery."""
    rng = random.Random(seed)
    record = {"status": "firing", "changed_at": 0.0, "delivered_ts": 0.0}
    events = [(f"e{i}", status, float(i + 1)) for i, status in enumerate(statuses)]
    order = events[:]
    rng.shuffle(order)
    delivered, held = [], []
    for n, (eid, status, ts) in enumerate(order):
        d = decide(record, event_id=eid, status=status, ts=ts, now=1 + n, cooldown_s=COOLDOWN, released=False)
        _apply(record, d)
        assert d.action in ("hold", "suppress", "deliver")
        if d.action == "hold":
            held.append((eid, status, ts))
        elif d.action == "deliver":
            delivered.append(status)
    assert delivered == []  # nothing is delivered inside the cooldown
    rng.shuffle(held)
    after = []
    for eid, status, ts in held:
        d = decide(record, event_id=eid, status=status, ts=ts, now=COOLDOWN + 1, cooldown_s=COOLDOWN, released=True)
        _apply(record, d)
        if d.action == "deliver":
            after.append(status)
    latest = events[-1][1]
    assert len([s for s in after if s != "firing"]) <= 1
    assert record["status"] == latest


# --- dependency graph, storms, grouping ---------------------------------------------------------------------

GRAPH = {"trunk-1": ["queue-a", "queue-b"], "queue-a": ["analytics-a"]}


def test_ancestors_nearest_first_and_the_farthest_firing_one_is_the_root() -> None:
    parents = grouping.parents_of(GRAPH)
    assert grouping.ancestors("analytics-a", parents) == ["queue-a", "trunk-1"]
    both = {"queue-a": "kq", "trunk-1": "kt"}
    assert grouping.firing_root("analytics-a", parents, lambda es: {e: both[e] for e in es if e in both}) == \
        ("trunk-1", "kt")
    assert grouping.firing_root("analytics-a", parents, lambda es: {"queue-a": "kq"}) == ("queue-a", "kq")
    assert grouping.firing_root("trunk-1", parents, lambda es: both) is None


def test_a_cycle_in_the_dependency_graph_is_a_config_error(tmp_path: Path) -> None:
    assert grouping.cycles({"a": ["b"], "b": ["a"]}) == ["a", "b"]
    assert grouping.ancestors("a", grouping.parents_of({"a": ["b"], "b": ["a"]})) == ["b"]  # no endless loop
    config = tmp_path / "config"
    shutil.copytree(ROOT / "config", config)
    path = config / "mappings.yaml"
    path.write_text(path.read_text() + "dependencies:\n  trunk-x: [queue-y]\n  queue-y: [trunk-x]\n")
    with pytest.raises(ConfigError, match=r"mappings.yaml: dependencies: cycle through queue-y, trunk-x"):
        load_config(config)


def test_storm_is_factor_times_a_floored_baseline() -> None:
    storm = {"factor": 3.0, "min_baseline_per_hour": 20, "history_hours": 24}
    assert grouping.baseline([], 20) == 20 and grouping.baseline([100, 50], 20) == 75
    assert not grouping.in_storm(60, [0] * 24, storm) and grouping.in_storm(61, [0] * 24, storm)
    assert not grouping.in_storm(300, [100] * 24, storm) and grouping.in_storm(301, [100] * 24, storm)


def test_only_non_critical_firing_health_alerts_group() -> None:
    cfg = {"window_s": 60, "kinds": ["health"], "severities": ["high", "medium", "low", "info"]}
    alert = {"status": "firing", "kind": "health", "severity": "medium"}
    assert grouping.groupable(alert, cfg)
    assert not grouping.groupable({**alert, "severity": "critical"}, cfg)
    assert not grouping.groupable({**alert, "kind": "ztp"}, cfg)
    assert not grouping.groupable({**alert, "status": "resolved"}, cfg)
    assert not grouping.groupable(alert, {**cfg, "window_s": 0})


def test_the_update_lists_every_attached_entity() -> None:
    out = grouping.with_attachments({"attributes": {"site_id": "s"}, "entity_id": "t"}, {"q2": 3, "q1": 1})
    assert out["attributes"] == {"site_id": "s", "attached_entities": ["q1", "q2"], "attached_alerts": 4}
    assert out["attached"] == 2


def test_shipped_alerting_config_has_the_issue_defaults() -> None:
    alerting = load_config(ROOT / "config").alerting
    assert alerting["flapping"]["cooldown_s"] == 300 and alerting["grouping"]["window_s"] == 60
    assert alerting["storm"]["factor"] == 3


# --- the incident store on a real Redis ---------------------------------------------------------------------

@pytest.fixture
def store(state_redis: redis.Redis, run_id: str) -> Iterator[IncidentStore]:
    prefix = f"t{run_id}inc{uuid.uuid4().hex[:6]}:"
    yield IncidentStore(state_redis, prefix)
    for key in state_redis.scan_iter(f"{prefix}*", count=1000):
        state_redis.delete(key)


def _alert(event_id: str, status: str = "firing", ts: str = "2026-01-01T00:00:00Z", key: str = "k1") -> dict:
    return {"event_id": event_id, "alert_key": key, "status": status, "timestamp": ts, "current_value": 1,
            "entity_id": "trunk-1"}


def test_dedupe_window_merges_repeats_and_slides(store: IncidentStore) -> None:
    assert store.observe(_alert("e1"), 300, now=1000) is None
    assert store.observe(_alert("e2", ts="2026-01-01T00:00:01Z"), 300, now=1200) == ("duplicate", "e1")
    assert store.observe(_alert("e3", ts="2026-01-01T00:00:02Z"), 300, now=1450) == ("duplicate", "e1")  # slid
    assert store.observe(_alert("e4", ts="2026-01-01T00:00:03Z"), 300, now=1800) is None  # window passed
    assert store.observe(_alert("e4", ts="2026-01-01T00:00:03Z"), 300, now=1801) is None  # redelivery: same event
    assert store.observe(_alert("e5", "resolved", ts="2026-01-01T00:00:04Z"), 300, now=1802) is None  # a change
    assert store.observe(_alert("e0", ts="2025-12-31T23:00:00Z"), 300, now=1803) == ("stale", "e5")
    assert int(store.r.hget(store.key("k1"), "count")) == 1


def test_flap_decisions_are_applied_atomically(store: IncidentStore) -> None:
    assert store.flap(_alert("e1"), 300, now=1000, released=False).action == "deliver"
    held = store.flap(_alert("e2", "resolved", ts="2026-01-01T00:00:01Z"), 300, now=1010, released=False)
    assert held.action == "hold" and held.release_at == 1300
    assert store.get("k1")["pending"] == "e2"


def _race(workers: int, call: Callable[[int], Any]) -> list[Any]:
    """``call(i)`` for each worker at once (released together by a barrier), each on its own thread."""
    barrier = threading.Barrier(workers)

    def run(i: int) -> Any:
        barrier.wait(timeout=10)
        return call(i)

    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(run, range(workers)))


def test_workers_racing_on_one_alert_key_deliver_it_once(store: IncidentStore) -> None:
    for n in range(10):  # ten fresh alert keys, eight workers each reading the same empty record at once
        key = f"race{n}"
        actions = _race(8, lambda i, key=key: store.flap(_alert(f"{key}-e{i}", key=key), 300, now=1000.0,
                                                          released=False).action)
        # the first write wins; every other worker saw its write (the state, inside the cooldown): held
        assert actions.count("deliver") == 1 and actions.count("hold") == 7, actions
        assert store.get(key)["status"] == "firing"


def test_workers_racing_on_one_alert_key_see_it_first_once_and_count_every_repeat(store: IncidentStore) -> None:
    for n in range(10):
        key = f"dup{n}"
        seen = _race(8, lambda i, key=key: store.observe(_alert(f"{key}-e{i}", key=key), 300, now=1000.0))
        firsts = [i for i, answer in enumerate(seen) if answer is None]
        assert len(firsts) == 1, seen  # one report is the first; the others are its duplicates
        assert all(answer == ("duplicate", f"{key}-e{firsts[0]}") for answer in seen if answer is not None)
        assert int(store.r.hget(store.key(key), "count")) == 8


def test_group_lead_window_and_attachments(store: IncidentStore) -> None:
    assert store.group_lead("bu", "lead", 60, sliding=False) is None
    assert store.group_lead("bu", "lead", 60, sliding=False) is None  # the lead again
    assert store.group_lead("bu", "other", 60, sliding=False) == "lead"
    store.attach("lead", "queue-a", due_at=time.time() - 1)
    store.attach("lead", "queue-a", due_at=time.time() - 1)
    store.attach("lead", "queue-b", due_at=time.time() + 100)  # same batch: the first due time stands
    assert store.attachments("lead") == {"queue-a": 2, "queue-b": 1}
    assert store.claim_due_updates(time.time()) == ["lead"]
    assert store.claim_due_updates(time.time()) == []  # claimed once


def test_hourly_counts_and_rule_suppression_window(store: IncidentStore) -> None:
    now = 3600 * 1000 + 5
    for _ in range(3):
        current, history = store.count_hour("bu", now, 24)
    assert current == 3 and history == [0] * 24
    current, history = store.count_hour("bu", now + 3600, 24)
    assert current == 1 and history[0] == 3
    assert store.suppress_once("iot", "sensor-1", 60, "e1") is None
    assert store.suppress_once("iot", "sensor-1", 60, "e1") is None  # the holder itself (a redelivery)
    assert store.suppress_once("iot", "sensor-1", 60, "e2") == "e1"


@pytest.mark.parametrize("in_pipeline", [False, True], ids=["own-round-trip", "in-callers-pipeline"])
def test_delivery_drives_the_state_machine(store: IncidentStore, in_pipeline: bool) -> None:
    def record_delivery(alert: dict) -> None:
        if not in_pipeline:
            store.record_delivery(alert)
            return
        pipe = store.r.pipeline(transaction=False)  # as fan_out does inside the ingest task's ledger batch
        store.record_delivery(alert, pipe=pipe)
        assert (store.get(alert["alert_key"]) or {}).get("event_id") != alert["event_id"]  # waits for the send
        pipe.execute()

    record_delivery({**_alert("e1"), "routes": []})
    assert store.get("k1")["state"] == "detected" and store.firing(["trunk-1"]) == {"trunk-1": "k1"}
    store.set_state("k1", "acknowledged", "acknowledged in PagerDuty")
    record_delivery({**_alert("e2"), "routes": []})
    assert store.get("k1")["state"] == "acknowledged"  # a repeat does not un-acknowledge
    record_delivery({**_alert("e3", "resolved"), "routes": []})
    assert store.get("k1")["state"] == "resolved" and store.firing(["trunk-1"]) == {}
    assert "k1" in store.recent(time.time() - 60)
    assert float(store.get("k1")["opened_at"]) <= float(store.get("k1")["updated_at"])
    # the entity's firing mark belongs to the incident that set it: another metric's resolve leaves it
    record_delivery({**_alert("e4"), "routes": []})
    record_delivery({**_alert("e5", "resolved"), "alert_key": "k-other", "routes": []})
    assert store.firing(["trunk-1"]) == {"trunk-1": "k1"} and store.get("k-other")["state"] == "resolved"
    with pytest.raises(ValueError):
        store.set_state("k1", "bogus", "")


# --- the gate stage on a real Redis: storms keep a unit's group open ---------------------------------------

def _health(i: int, unit: str) -> dict:
    return {"event_id": f"e{i}", "alert_key": f"k{i}", "entity_id": f"queue-{i}", "status": "firing",
            "kind": "health", "severity": "medium", "business_impact": unit, "source": "cxone",
            "timestamp": "2026-01-01T00:00:00Z", "attributes": {}}


def test_a_storm_keeps_the_business_units_group_open_beyond_its_window(store: IncidentStore) -> None:
    from dataclasses import replace

    from switchboard.stages import Outcome, StageContext
    from switchboard.stages.gate import gate

    base = load_config(ROOT / "config")
    alerting = {**base.alerting, "grouping": {**base.alerting["grouping"], "window_s": 1},
                "storm": {"factor": 3.0, "min_baseline_per_hour": 2, "history_hours": 24}}
    config = replace(base, alerting=alerting)
    start = 3600.0 * 500_000  # a fixed hour: counters are per clock hour
    # calm: 6 alerts 2 s apart (beyond the 1 s window): each leads its own group, so each pages
    calm = [gate(_health(i, "calm"), StageContext(config, now=start + 2 * i, incidents=store)) for i in range(6)]
    assert not [r for r in calm if isinstance(r, Outcome)]
    # the same spacing once the hour's count passes 3 x 2: the group stays open, later alerts join it
    storm = [gate(_health(100 + i, "stormy"), StageContext(config, now=start + 2 * i, incidents=store))
             for i in range(12)]
    joined = [r for r in storm if isinstance(r, Outcome)]
    assert len(storm) - len(joined) <= 7 and len(joined) >= 5
    assert all(r.kind == "suppressed" and r.reason.startswith("storm (") for r in joined)


def test_the_gates_firing_mark_rides_the_tasks_batch_when_it_has_one(store: IncidentStore) -> None:
    from dataclasses import replace

    from switchboard.stages import StageContext
    from switchboard.stages.gate import gate

    base = load_config(ROOT / "config")
    config = replace(base, alerting={**base.alerting, "flapping": {**base.alerting["flapping"], "cooldown_s": 0}})
    alert = {**_alert("e1"), "kind": "health", "severity": "critical", "source": "genesys",
             "business_impact": "voice-network", "attributes": {}}

    def gate_in_batch(alert: dict) -> dict[str, str]:
        """The gate with a batch (as the ingest task's ledger batch); the mark as seen before it is sent."""
        batch = store.r.pipeline(transaction=False)
        assert gate(alert, StageContext(config, now=time.time(), incidents=store, writes=batch)) == alert
        before = store.firing(["trunk-1"])
        batch.execute()  # the task sends its batch (with its stages) before any dispatch or outcome
        return before

    # without a batch (a tool, a test) the mark is written at once
    assert gate(alert, StageContext(config, now=time.time(), incidents=store)) == alert
    assert store.firing(["trunk-1"]) == {"trunk-1": "k1"}
    resolved = {**alert, "event_id": "e2", "status": "resolved", "timestamp": "2026-01-01T00:10:00Z"}
    assert gate_in_batch(resolved) == {"trunk-1": "k1"} and store.firing(["trunk-1"]) == {}
    firing = {**alert, "event_id": "e3", "timestamp": "2026-01-01T00:20:00Z"}
    assert gate_in_batch(firing) == {} and store.firing(["trunk-1"]) == {"trunk-1": "k1"}
