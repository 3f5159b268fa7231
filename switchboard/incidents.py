"""Incident state per ``alert_key`` in Redis: the state machine, dedupe window, flap record, groups,
dependency firing marks, attachments and rule suppression windows.

State machine: ``detected`` (a firing alert was handed to dispatch) -> ``acknowledged`` (reconciliation
saw a human acknowledge it at the vendor) -> ``resolved`` (a recovery was delivered, or the vendor says
resolved); ``suppressed`` when its alerts were only ever attached to another incident. Decisions are pure
(``switchboard.flapping``, ``switchboard.grouping``); here they are applied atomically: a decision is written
only if the hash fields it was decided on are unchanged (else read and decided again), so two workers racing
on one alert_key cannot both deliver.

Layout (prefix from settings): hash ``incident:<alert_key>`` (state, status, changed_at, pending,
event_id, alert JSON, updated_at, count, last_seen_*), sorted set ``incidents`` (alert_key by updated_at),
``firing:<entity>`` -> alert_key, ``group:<business_unit>`` -> lead alert_key, ``storm:<bu>:<hour>``
counters, hash ``incident:<alert_key>:attached`` (entity -> count), sorted set ``incident-updates``
(lead alert_key by due time), ``suppress:<rule>:<entity>`` -> event id.
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from typing import Any

import redis

from switchboard import fast_json
from switchboard.flapping import FlapDecision, decide

STATES = ("detected", "acknowledged", "resolved", "suppressed")

# Lua: read the group's lead and end, extend it in a storm, or start a new group, in one atomic step.
_GROUP_LEAD = """
local now, window = tonumber(ARGV[2]), tonumber(ARGV[3])
local value = redis.call('GET', KEYS[1])
if value then
  local sep = string.find(value, '|', 1, true)
  local lead, ends = string.sub(value, 1, sep - 1), tonumber(string.sub(value, sep + 1))
  if ends > now then
    if ARGV[4] == '1' then
      redis.call('SET', KEYS[1], lead .. '|' .. (now + window), 'EX', math.ceil(window) + 3600)
    end
    if lead == ARGV[1] then return false end
    return lead
  end
end
redis.call('SET', KEYS[1], ARGV[1] .. '|' .. (now + window), 'EX', math.ceil(window) + 3600)
return false
"""
# Lua: a delivery's whole record in one round trip (it was three: the read of the state, the writes, and the
# entity's firing mark): an acknowledged incident stays acknowledged on a new trigger; the firing mark is set
# on a trigger and cleared on a resolve only by the incident that set it.
_RECORD_DELIVERY = """
local state = ARGV[1]
if state == 'detected' and redis.call('HGET', KEYS[1], 'state') == 'acknowledged' then state = 'acknowledged' end
redis.call('HSET', KEYS[1], 'state', state, 'event_id', ARGV[2], 'alert', ARGV[3], 'updated_at', ARGV[4],
           'entity_id', ARGV[5])
redis.call('HSETNX', KEYS[1], 'opened_at', ARGV[4])
redis.call('EXPIRE', KEYS[1], ARGV[6])
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[7])
if ARGV[8] == '1' then
  redis.call('SET', KEYS[3], ARGV[7], 'EX', ARGV[6])
elseif redis.call('GET', KEYS[3]) == ARGV[7] then
  redis.call('DEL', KEYS[3])
end
return state
"""
_HOUR = 3600

# A decision's write, applied only if the fields it was decided on still hold what was read: optimistic
# concurrency on exactly those fields, one round trip (WATCH/MULTI took three: WATCH, the read, EXEC; and it
# retried on any write to the hash, such as a delivery's, that the decision never read).
# ARGV: n, n field names, n expected values ('=' .. value, or '!' if absent), ttl, a field to add 1 to (or ''),
# then field/value pairs to set.
_RACES = 100  # reads and decisions in a row that lost to another worker's write before giving up (a bug, not load)
_UPDATE_IF_UNCHANGED = """
local n = tonumber(ARGV[1])
local values = redis.call('HMGET', KEYS[1], unpack(ARGV, 2, 1 + n))
for i = 1, n do
  local value = values[i]
  local want = ARGV[1 + n + i]
  if value then
    if want ~= '=' .. value then return 0 end
  elseif want ~= '!' then
    return 0
  end
end
local at = 2 + 2 * n
if ARGV[at + 1] ~= '' then redis.call('HINCRBY', KEYS[1], ARGV[at + 1], 1) end
if #ARGV > at + 1 then redis.call('HSET', KEYS[1], unpack(ARGV, at + 2)) end
redis.call('EXPIRE', KEYS[1], ARGV[at])
return 1
"""


class IncidentStore:
    def __init__(self, client: redis.Redis, prefix: str, ttl_s: int = 7 * 86400) -> None:
        self.r = client
        self.prefix = prefix
        self.ttl_s = ttl_s
        self._group_lead = client.register_script(_GROUP_LEAD)
        self._record_delivery = client.register_script(_RECORD_DELIVERY)
        self._update_if_unchanged = client.register_script(_UPDATE_IF_UNCHANGED)

    def key(self, alert_key: str) -> str:
        return f"{self.prefix}incident:{alert_key}"

    # --- reading (also the reconciler's contract) -------------------------------------------------------
    def get(self, alert_key: str) -> dict[str, Any] | None:
        record = self.r.hgetall(self.key(alert_key))
        if not record:
            return None
        if record.get("alert"):
            record["alert"] = json.loads(record["alert"])
        return record

    def recent(self, since: float) -> list[str]:
        return list(self.r.zrangebyscore(f"{self.prefix}incidents", since, "+inf"))

    def set_state(self, alert_key: str, state: str, reason: str) -> None:
        if state not in STATES:
            raise ValueError(f"unknown incident state {state!r}")
        now = time.time()
        pipe = self.r.pipeline()
        pipe.hset(self.key(alert_key), mapping={"state": state, "state_reason": reason, "updated_at": now})
        pipe.expire(self.key(alert_key), self.ttl_s)
        pipe.zadd(f"{self.prefix}incidents", {alert_key: now})
        pipe.execute()

    # --- dedupe: a sliding window on alert_key ---------------------------------------------------------
    def observe(self, alert: dict[str, Any], window_s: float, now: float) -> tuple[str, str] | None:
        """``("duplicate", first_event)`` if ``alert`` repeats the latest report's status within the window
        (sliding: the repeat extends it; the incident's count and last value are updated), ``("stale",
        newer_event)`` if a newer report (by the source's timestamp) was already seen, else None."""
        key = self.key(alert["alert_key"])
        ts = datetime.fromisoformat(alert["timestamp"]).timestamp()
        names = ("last_seen_status", "last_seen_at", "last_seen_ts", "last_seen_event", "first_event_id")
        value = fast_json.dumps(alert.get("current_value"))
        for _ in range(_RACES):
            read = self.r.hmget(key, *names)
            status, at, seen_ts, last_event, first = read
            if last_event == alert["event_id"]:
                return None  # this event again (a redelivered task): it already counted
            if seen_ts is not None and ts < float(seen_ts):
                # Workers run one alert_key's events in parallel: an older report arriving late must not
                # win over the newer one, which already carries the current state.
                return "stale", last_event
            if window_s > 0 and status == alert["status"] and at is not None and now - float(at) < window_s:
                if self._write_if_unchanged(key, names, read, {"last_seen_at": now, "last_seen_ts": ts,
                                                               "last_value": value}, incr="count"):
                    return "duplicate", first or last_event
                continue
            if self._write_if_unchanged(key, names, read, {
                    "last_seen_status": alert["status"], "last_seen_at": now, "last_seen_ts": ts,
                    "last_seen_event": alert["event_id"], "first_event_id": alert["event_id"], "count": 1,
                    "last_value": value}):
                return None
        raise RuntimeError(f"{key}: changed by other workers {_RACES} times in a row while deduplicating")

    # --- flapping ----------------------------------------------------------------------------------------
    def flap(self, alert: dict[str, Any], cooldown_s: float, now: float, released: bool) -> FlapDecision:
        key = self.key(alert["alert_key"])
        names = ("status", "changed_at", "delivered_ts", "pending", "pending_ts")
        ts = datetime.fromisoformat(alert["timestamp"]).timestamp()
        for _ in range(_RACES):
            read = self.r.hmget(key, *names)
            decision = decide(dict(zip(names, read, strict=True)), event_id=alert["event_id"],
                              status=alert["status"], ts=ts, now=now, cooldown_s=cooldown_s, released=released)
            if not decision.updates or self._write_if_unchanged(key, names, read, decision.updates):
                return decision
        raise RuntimeError(f"{key}: changed by other workers {_RACES} times in a row while deciding a flap")

    def _write_if_unchanged(self, key: str, names: tuple[str, ...], read: list[Any], updates: dict[str, Any],
                            incr: str = "") -> bool:
        """Write ``updates`` (and add 1 to ``incr``) if the fields ``names`` still hold what was ``read``; False
        if another worker changed one of them since (the caller reads and decides again)."""
        expected = ["!" if value is None else "=" + (value.decode() if isinstance(value, bytes) else value)
                    for value in read]
        pairs = [part for item in updates.items() for part in item]  # encoded by redis-py, as HSET would
        return bool(self._update_if_unchanged(keys=[key], args=[len(names), *names, *expected, self.ttl_s, incr,
                                                                *pairs]))

    # --- dependency graph --------------------------------------------------------------------------------
    def firing(self, entities: list[str]) -> dict[str, str]:
        """entity -> alert_key of its firing incident, for those of ``entities`` that are firing."""
        if not entities:
            return {}
        values = self.r.mget([f"{self.prefix}firing:{e}" for e in entities])
        return {e: v for e, v in zip(entities, values, strict=True) if v}

    def mark_firing(self, entity: str, alert_key: str, firing: bool, pipe: Any = None) -> None:
        """Mark ``entity`` firing by ``alert_key`` (or clear the mark that incident set). With ``pipe``, the
        write joins the round trip the caller sends (the ingest task's ledger batch)."""
        key = f"{self.prefix}firing:{entity}"
        client = self.r if pipe is None else pipe
        if firing:
            client.set(key, alert_key, ex=self.ttl_s)
        else:
            # only the incident that set the mark clears it (another metric of the entity may still fire)
            client.eval("if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end "
                        "return 0", 1, key, alert_key)

    # --- grouping and storms -----------------------------------------------------------------------------
    def group_lead(self, business_unit: str, alert_key: str, window_s: float, sliding: bool,
                   now: float | None = None) -> str | None:
        """The alert_key leading the unit's open group if it is not ``alert_key``; else this one leads.
        The group's end travels in the value (not a Redis TTL) so it follows the caller's clock."""
        now = time.time() if now is None else now
        lead = self._group_lead(keys=[f"{self.prefix}group:{business_unit}"],
                                args=[alert_key, now, window_s, 1 if sliding else 0])
        return lead or None

    def count_hour(self, business_unit: str, now: float, history_hours: int) -> tuple[int, list[int]]:
        """This hour's alert count for the unit (after counting this one) and the previous hours' counts."""
        hour = int(now // _HOUR)
        keys = [f"{self.prefix}storm:{business_unit}:{hour - i}" for i in range(history_hours + 1)]
        pipe = self.r.pipeline()
        pipe.incr(keys[0])
        pipe.expire(keys[0], (history_hours + 2) * _HOUR)
        pipe.mget(keys[1:])
        current, _, past = pipe.execute()
        return int(current), [int(v or 0) for v in past]

    def attach(self, lead_key: str, entity: str, due_at: float) -> None:
        """Attach ``entity`` to the lead incident; its update is sent at ``due_at`` (once per batch)."""
        pipe = self.r.pipeline()
        pipe.hincrby(f"{self.key(lead_key)}:attached", entity, 1)
        pipe.expire(f"{self.key(lead_key)}:attached", self.ttl_s)
        pipe.zadd(f"{self.prefix}incident-updates", {lead_key: due_at}, nx=True)
        pipe.execute()

    def attachments(self, lead_key: str) -> dict[str, int]:
        return {k: int(v) for k, v in self.r.hgetall(f"{self.key(lead_key)}:attached").items()}

    def claim_due_updates(self, now: float) -> list[str]:
        """Lead alert_keys whose update is due; each is claimed by exactly one caller (ZREM wins)."""
        due = self.r.zrangebyscore(f"{self.prefix}incident-updates", "-inf", now, start=0, num=100)
        return [k for k in due if self.r.zrem(f"{self.prefix}incident-updates", k)]

    def reschedule_update(self, lead_key: str, due_at: float) -> None:
        self.r.zadd(f"{self.prefix}incident-updates", {lead_key: due_at}, nx=True)

    def next_update_seq(self, lead_key: str) -> int:
        return int(self.r.hincrby(self.key(lead_key), "updates", 1))

    # --- rule suppression windows ------------------------------------------------------------------------
    def suppress_once(self, rule: str, entity: str, window_s: float, event_id: str) -> str | None:
        """None if ``event_id`` may act (and now owns the window); else the event that acted within it."""
        key = f"{self.prefix}suppress:{rule}:{entity}"
        if self.r.set(key, event_id, nx=True, ex=max(1, int(window_s))):
            return None
        holder = self.r.get(key)
        return None if holder in (None, event_id) else holder

    # --- delivery ----------------------------------------------------------------------------------------
    def record_delivery(self, alert: dict[str, Any], pipe: Any = None) -> None:
        """A routed alert was handed to dispatch: the incident's state follows its status. With ``pipe`` (a
        pipeline the caller sends), the write joins that round trip: as EVAL with the script's text, since a
        pipeline holding a registered script first asks Redis whether it has it, a round trip more."""
        state = "resolved" if alert["status"] == "resolved" else "detected"
        keys = [self.key(alert["alert_key"]), f"{self.prefix}incidents", f"{self.prefix}firing:{alert['entity_id']}"]
        args = [state, alert["event_id"], fast_json.dumps(alert), time.time(), alert["entity_id"], self.ttl_s,
                alert["alert_key"], 1 if alert["status"] == "firing" else 0]
        if pipe is None:
            self._record_delivery(keys=keys, args=args)
        else:
            pipe.eval(_RECORD_DELIVERY, len(keys), *keys, *args)

    def mark_suppressed(self, alert: dict[str, Any], reason: str) -> None:
        """An alert attached elsewhere: its own incident, if it never delivered anything, is suppressed."""
        key = self.key(alert["alert_key"])
        if self.r.hget(key, "state") in (None, "suppressed"):
            self.set_state(alert["alert_key"], "suppressed", reason)
