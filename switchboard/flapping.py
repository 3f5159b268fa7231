"""Flapping and cooldown, as pure decisions over one incident's record (no Redis here).

The record is what ``switchboard.incidents`` keeps per ``alert_key``: the last delivered status, when it
changed (``changed_at``) and the source time of the alert that delivered it (``delivered_ts``), and the
event holding the latest undelivered state (``pending``, ``pending_ts``). A change within ``cooldown_s``
of the last delivered one is held until the cooldown ends; then only the latest held state is delivered,
and only if it differs from what the vendor already has. So a trunk flapping DOWN/UP twenty times
produces one trigger and, after the cooldown, one resolve if it ended UP.

"Latest" is by the source's timestamp, not by arrival: several workers process one trunk's events in
parallel, so an older event can reach this decision after a newer one; it must not win.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class FlapDecision:
    action: str                      # "deliver" | "hold" | "suppress"
    reason: str = ""
    release_at: float | None = None  # for "hold"
    updates: dict[str, Any] = field(default_factory=dict)  # fields to write to the incident record


def decide(record: dict[str, Any], *, event_id: str, status: str, ts: float, now: float, cooldown_s: float,
           released: bool) -> FlapDecision:
    """What to do with an alert of ``status`` stamped ``ts`` by its source; ``released`` is true when a
    hold of this event just ended."""
    delivered = record.get("status") or None
    changed_at = float(record.get("changed_at") or 0)
    delivered_ts = float(record.get("delivered_ts") or 0)
    pending = record.get("pending") or None
    pending_ts = float(record.get("pending_ts") or 0)
    if cooldown_s <= 0:
        return _deliver(status, delivered, ts, now)  # the feature is off: every state goes through
    if delivered is None:
        if status == "resolved":
            # Nothing was ever delivered for this alert: a recovery has nothing to close (and, arriving
            # first, is usually the second half of a flap whose first half a parallel worker still holds).
            return FlapDecision("suppress", "recovery with no open incident: nothing to resolve")
        return _deliver(status, delivered, ts, now)
    if ts < delivered_ts:
        return FlapDecision("suppress", "out of order: older than the state already delivered")
    cooldown_end = changed_at + cooldown_s
    if now < cooldown_end:
        if pending and pending != event_id and ts < pending_ts:
            return FlapDecision("suppress", f"flapping: superseded by a later state (event {pending})")
        # Inside the cooldown every newer event becomes the candidate and earlier candidates lose; even a
        # repeat of the delivered state waits, since a change processed by another worker may sit between.
        return FlapDecision("hold", f"flapping: state change within the {cooldown_s:g} s cooldown",
                            release_at=cooldown_end, updates={"pending": event_id, "pending_ts": ts})
    if released and pending != event_id:
        # Whatever happened since this hold (a later held state, or a delivery after the cooldown) is newer.
        return FlapDecision("suppress", f"flapping: superseded by a later state (event {pending or 'delivered'})")
    if released and status == delivered:
        return FlapDecision("suppress", f"flapping settled back to {status} (already delivered)",
                            updates={"pending": "", "pending_ts": 0})
    return _deliver(status, delivered, ts, now)


def _deliver(status: str, delivered: str | None, ts: float, now: float) -> FlapDecision:
    updates: dict[str, Any] = {"status": status, "pending": "", "pending_ts": 0, "delivered_ts": ts}
    if status != delivered:
        updates["changed_at"] = now
    return FlapDecision("deliver", updates=updates)
