"""Maintenance windows (pure, injected clock) and the deferral store (real Redis): recurrence across DST,
scopes, config errors, atomic claims, leases that bring back what a crashed releaser took."""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
import redis

from switchboard.config import ConfigError, load_config
from switchboard.deferrals import Deferrals
from switchboard.maintenance import active_hold, window_end
from switchboard.stages import StageContext
from switchboard.stages.gate import gate
from tests.helpers import ROOT

WEEKLY = {"name": "weekly", "scope": {"business_unit": ["voice-network"]},
          "recurrence": {"rrule": "FREQ=WEEKLY;BYDAY=SU", "timezone": "America/New_York", "duration_minutes": 60,
                         "dtstart": datetime.fromisoformat("2026-01-04T02:00:00-05:00")}}
ONE_OFF = {"name": "sfo", "scope": {"site": ["SITE_SFO_02"]}, "recurrence": None,
           "start": datetime.fromisoformat("2026-12-06T22:00:00-08:00"),
           "end": datetime.fromisoformat("2026-12-07T02:00:00-08:00")}
VOICE = {"business_impact": "voice-network", "attributes": {}, "entity_id": "t1", "source": "genesys"}


def at(iso: str) -> datetime:
    return datetime.fromisoformat(iso)


@pytest.mark.parametrize("now,end", [
    ("2026-03-01T07:30:00+00:00", "2026-03-01T08:00:00+00:00"),   # EST: 02:00-03:00 local = 07:00-08:00 UTC
    ("2026-03-15T06:30:00+00:00", "2026-03-15T07:00:00+00:00"),   # EDT after spring-forward: 06:00-07:00 UTC
    ("2026-11-08T07:10:00+00:00", "2026-11-08T08:00:00+00:00"),   # EST again after fall-back
    ("2026-03-15T07:30:00+00:00", None),                          # the EST hour, but it is EDT now
    ("2026-03-16T06:30:00+00:00", None),                          # a Monday
])
def test_recurring_window_keeps_its_local_time_across_dst(now: str, end: str | None) -> None:
    assert window_end(WEEKLY, at(now)) == (at(end) if end else None)


def test_one_off_window_is_half_open_and_absolute() -> None:
    assert window_end(ONE_OFF, at("2026-12-07T06:00:00+00:00")) == at("2026-12-07T10:00:00+00:00")
    assert window_end(ONE_OFF, at("2026-12-07T10:00:00+00:00")) is None
    assert window_end(ONE_OFF, at("2026-12-07T05:59:59+00:00")) is None


def test_scope_decides_who_is_held_and_overlaps_hold_until_the_last_end() -> None:
    now = at("2026-12-07T07:30:00+00:00")  # Sunday 02:30 New York and inside the SFO window
    ztp = {"business_impact": "unmapped", "attributes": {"site_id": "SITE_SFO_02"}, "entity_id": "m",
           "source": "ztp"}
    assert active_hold(ztp, [WEEKLY, ONE_OFF], now).window == "sfo"
    assert active_hold({**ztp, "attributes": {"site_id": "SITE_NYC_04"}}, [WEEKLY, ONE_OFF], now) is None
    both = {**VOICE, "attributes": {"site_id": "SITE_SFO_02"}}
    hold = active_hold(both, [WEEKLY, ONE_OFF], now)
    assert hold.window == "sfo" and hold.until == at("2026-12-07T10:00:00+00:00")


def test_gate_defers_with_the_release_time_and_passes_everything_else() -> None:
    config = load_config(ROOT / "config")
    config.windows["maintenance"] = [WEEKLY]
    inside = gate(VOICE, StageContext(config=config, now=at("2026-03-01T07:30:00+00:00").timestamp()))
    assert inside.kind == "deferred" and "weekly" in inside.reason
    assert inside.release_at == at("2026-03-01T08:00:00+00:00").timestamp()
    outside = gate(VOICE, StageContext(config=config, now=at("2026-03-01T08:00:00+00:00").timestamp()))
    assert outside is VOICE


@pytest.mark.parametrize("window,problem", [
    ('{name: w, start: "2026-12-06T22:00:00", end: "2026-12-07T02:00:00-08:00", scope: {site: [S]}}',
     "maintenance.0.start: Not a valid aware datetime."),
    ('{name: w, start: "2026-12-06T22:00:00-08:00", end: "2026-12-07T02:00:00-08:00", scope: {}}',
     "name at least one site, entity, business_unit or source"),
    ('{name: w, recurrence: {rrule: "FREQ=SOMETIMES", dtstart: "2026-01-04T02:00:00-05:00", '
     'timezone: America/New_York, duration_minutes: 60}, scope: {source: [iot]}}', "not a valid RRULE"),
    ('{name: w, recurrence: {rrule: "FREQ=DAILY", dtstart: "2026-01-04T02:00:00-05:00", '
     'timezone: Mars/Olympus, duration_minutes: 60}, scope: {source: [iot]}}', "unknown time zone"),
    ('{name: w, start: "2026-12-07T02:00:00-08:00", end: "2026-12-06T22:00:00-08:00", scope: {site: [S]}}',
     "end after start"),
])
def test_maintenance_config_errors_name_file_key_and_problem(tmp_path: Path, window: str, problem: str) -> None:
    shutil.copytree(ROOT / "config", tmp_path / "config")
    path = tmp_path / "config" / "windows.yaml"
    path.write_text(path.read_text().replace("maintenance: []", f"maintenance:\n  - {window}", 1))
    with pytest.raises(ConfigError) as exc:
        load_config(tmp_path / "config")
    assert "config/windows.yaml: maintenance.0" in str(exc.value) and problem in str(exc.value)


@pytest.fixture
def store(state_redis: redis.Redis, run_id: str) -> Iterator[Deferrals]:
    prefix = f"t{run_id}d{uuid.uuid4().hex[:6]}:"
    yield Deferrals(state_redis, prefix, max_hold_s=3600)
    for key in state_redis.scan_iter(f"{prefix}*"):
        state_redis.delete(key)


def _alert(status: str = "firing", ts: str = "2026-11-23T10:00:00Z") -> dict:
    return {"alert_key": "k1", "status": status, "timestamp": ts}


def test_due_entries_are_claimed_once(store: Deferrals) -> None:
    now = time.time()
    store.hold("e1", stage="gate", data=_alert(), release_at=now - 1, reason="w")
    store.hold("e2", stage="gate", data=_alert(), release_at=now + 3600, reason="w")
    first = store.claim_due(now)
    assert [e["event_id"] for e in first] == ["e1"] and first[0]["data"] == _alert()
    assert store.claim_due(now) == []  # a second drainer gets nothing: released twice acts once
    store.done("e1")
    assert [e["event_id"] for e in store.list()] == ["e2"] and store.depth() == 1


def test_a_crashed_releasers_lease_expires_and_the_entry_comes_back(store: Deferrals) -> None:
    now = time.time()
    store.hold("e1", stage="gate", data=_alert(), release_at=now - 1, reason="w")
    assert len(store.claim_due(now, lease_s=30)) == 1  # ... and the releaser dies before done()
    assert store.claim_due(now + 10) == []
    assert [e["event_id"] for e in store.claim_due(now + 31)] == ["e1"]  # nothing held is forgotten


def test_done_keeps_an_entry_held_again_meanwhile(store: Deferrals) -> None:
    now = time.time()
    store.hold("e1", stage="gate", data=_alert(), release_at=now - 1, reason="w")
    store.claim_due(now)
    store.hold("e1", stage="gate", data=_alert(), release_at=now + 600, reason="window extended")
    store.done("e1")
    [entry] = store.list()
    assert entry["reason"] == "window extended" and store.depth() == 1


def test_holds_are_capped_and_resolves_are_remembered(store: Deferrals) -> None:
    released = store.hold("e1", stage="gate", data=_alert(), release_at=time.time() + 10 ** 7, reason="w")
    assert released <= time.time() + 3600
    assert not store.resolved_after("k1", "2026-11-23T10:00:00Z")
    store.hold("e2", stage="gate", data=_alert("resolved", "2026-11-23T10:05:00Z"), release_at=0, reason="w")
    assert store.resolved_after("k1", "2026-11-23T10:00:00Z")
    assert not store.resolved_after("k1", "2026-11-23T10:06:00Z")
    store.hold("e3", stage="gate", data=_alert("firing", "2026-11-23T10:01:00Z"), release_at=0, reason="w")
    assert store.resolved_after("k1", "2026-11-23T10:00:00Z")  # an older event does not overwrite the newest
