"""Gate: whether an alert acts now, later, or only as context of another incident.

In order: a maintenance window holds it (``deferred`` until the window closes; the deferral store gives it
back to this stage); a firing ancestor in the dependency graph (trunk -> queues -> analytics) suppresses
it and attaches it to the ancestor's incident; a groupable alert of a business unit whose group is open
(grouping window, or a storm: this hour above factor x baseline) joins the group's incident; a state
change inside the flapping cooldown is held until the cooldown ends, when only the latest state is
delivered.
Dialing windows are applied at dispatch: they decide between a call and a work item, not whether to act.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from switchboard import grouping
from switchboard.maintenance import active_hold
from switchboard.stages import Alert, Outcome, StageContext

FLAP_HOLD = "_flap_hold"  # marks a held alert so its release is recognised as the end of its cooldown
_parents_cache: dict[int, dict[str, list[str]]] = {}


def gate(alert: Alert, ctx: StageContext) -> Alert | Outcome:
    now = datetime.fromtimestamp(ctx.now, UTC)
    hold = active_hold(alert, ctx.config.windows.get("maintenance", []), now)
    if hold is not None:
        until = hold.until.isoformat().replace("+00:00", "Z")
        return Outcome("deferred", f"maintenance window {hold.window} until {until}",
                       release_at=hold.until.timestamp())
    if ctx.incidents is None:
        return alert
    released = bool(alert.get(FLAP_HOLD))
    alert = {k: v for k, v in alert.items() if k != FLAP_HOLD}
    # grouping before flapping: an alert that only joins another incident never becomes a delivered state
    return _dependency(alert, ctx) or _group(alert, ctx) or _flap(alert, ctx, released) or _deliver(alert, ctx)


def _parents(ctx: StageContext) -> dict[str, list[str]]:
    deps = ctx.config.mappings.get("dependencies") or {}
    cached = _parents_cache.get(id(deps))
    if cached is None:
        cached = _parents_cache[id(deps)] = grouping.parents_of(deps)
    return cached


def _dependency(alert: Alert, ctx: StageContext) -> Outcome | None:
    root = grouping.firing_root(alert["entity_id"], _parents(ctx), ctx.incidents.firing)
    if root is None:
        return None
    parent, parent_key = root
    if alert["status"] == "resolved" and (ctx.incidents.get(alert["alert_key"]) or {}).get("state") == "detected":
        return None  # its own incident was paged before the parent failed: let its recovery close it
    reason = f"dependency: {parent} is firing; attached to its incident {parent_key}"
    return _attach(alert, ctx, parent_key, reason)


def _flap(alert: Alert, ctx: StageContext, released: bool) -> Outcome | None:
    if alert["kind"] not in ctx.config.alerting["flapping"]["kinds"]:
        return None
    cooldown = ctx.config.alerting["flapping"]["cooldown_s"]
    decision = ctx.incidents.flap(alert, cooldown, ctx.now, released)
    if decision.action == "hold":
        return Outcome("deferred", decision.reason, release_at=decision.release_at,
                       hold_data={**alert, FLAP_HOLD: True})
    if decision.action == "suppress":
        return Outcome("suppressed", decision.reason)
    return None


def _group(alert: Alert, ctx: StageContext) -> Outcome | None:
    cfg = ctx.config.alerting
    if not grouping.groupable(alert, cfg["grouping"]):
        return None
    unit = alert.get("business_impact") or "unmapped"
    this_hour, history = ctx.incidents.count_hour(unit, ctx.now, cfg["storm"]["history_hours"])
    storm = grouping.in_storm(this_hour, history, cfg["storm"])
    window = cfg["grouping"]["window_s"]
    if storm:  # grouped, not paged, for the rest of the storm's hour (and a window beyond, as it slides)
        window += 3600 - ctx.now % 3600
    lead = ctx.incidents.group_lead(unit, alert["alert_key"], window, sliding=storm, now=ctx.now)
    if lead is None:
        return None
    why = f"storm ({this_hour} alerts this hour)" if storm else f"grouping window {cfg['grouping']['window_s']} s"
    return _attach(alert, ctx, lead, f"{why}: {unit} alert joined incident {lead}")


def _attach(alert: Alert, ctx: StageContext, lead_key: str, reason: str) -> Outcome:
    update_after = ctx.config.alerting["grouping"]["update_after_s"]
    ctx.incidents.attach(lead_key, alert["entity_id"], ctx.now + update_after)
    ctx.incidents.mark_suppressed(alert, reason)
    return Outcome("suppressed", reason)


def _deliver(alert: Alert, ctx: StageContext) -> Alert:
    # in the task's batch: written with the stages, before the route's dispatch (fan_out) or its outcome
    ctx.incidents.mark_firing(alert["entity_id"], alert["alert_key"], alert["status"] == "firing", pipe=ctx.writes)
    return alert


__all__: list[Any] = ["gate", "FLAP_HOLD"]
