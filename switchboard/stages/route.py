"""Route: the first matching rule of ``config/routing.yaml`` names the targets and their options.

Pure: the rule decides the primary queue, skills, priorities, escalation and the overflow option; whether
a work item actually overflows depends on the queue's occupancy at dispatch time (``switchboard.overflow``).
"""

from __future__ import annotations

import re
from typing import Any

from switchboard.stages import Alert, Outcome, StageContext

LIST_FIELDS = ("source", "kind", "metric_type", "severity", "status", "business_impact")
# Route options carried to the dispatch when a rule sets them (absent otherwise, so routes stay small).
OPTIONS = ("queue", "workitem_priority", "escalation_minutes")


def reported_state(alert: Alert) -> Any:
    """The source's reported state (ZTP provisioning_status, trunk status). The canonical alert carries it
    as ``current_value``; a ``state`` field, when an alert has one, is the more specific answer."""
    return alert["state"] if "state" in alert else alert.get("current_value")


def rule_matches(match: dict[str, Any], alert: Alert) -> bool:
    """Every condition of ``match`` holds for ``alert`` (an omitted or null condition always holds)."""
    for field in LIST_FIELDS:
        allowed = match.get(field)
        if allowed is not None and alert.get(field) not in allowed:
            return False
    states = match.get("state")
    if states is not None and str(reported_state(alert)) not in states:
        return False
    attributes = alert.get("attributes") or {}
    for key, wanted in (match.get("attributes") or {}).items():
        # bool is an int in Python: `requires_callback: true` must not match an attribute equal to 1
        value = attributes.get(key)
        if value != wanted or isinstance(value, bool) != isinstance(wanted, bool):
            return False
    pattern = match.get("error_code_regex")
    if pattern is not None:
        code = attributes.get("error_code") or ""
        if not re.search(pattern, code):
            return False
    return True


def route(alert: Alert, ctx: StageContext) -> Alert | Outcome:
    """The alert with ``routes: [{target, priority, rule, ...options}]``, or an Outcome if nothing matched."""
    for rule in ctx.config.rules:
        if rule_matches(rule["match"], alert):
            held = _suppression_window(rule, alert, ctx)
            if held is not None:
                return held
            out = dict(alert)
            out["routes"] = [_route(t, rule["name"]) for t in rule["targets"]]
            return out
    return Outcome("suppressed", "no routing rule matched")


def _suppression_window(rule: dict[str, Any], alert: Alert, ctx: StageContext) -> Outcome | None:
    """A rule's ``suppress_for_s``: one firing alert per entity acts in the window, whatever the count."""
    window = rule.get("suppress_for_s") or 0
    if window <= 0 or alert["status"] != "firing" or ctx.incidents is None:
        return None
    holder = ctx.incidents.suppress_once(rule["name"], alert["entity_id"], window, alert["event_id"])
    if holder is None:
        return None
    return Outcome("suppressed", f"rule {rule['name']}: {alert['entity_id']} already acted on within its "
                                 f"{window} s suppression window (event {holder})")


def _route(target: dict[str, Any], rule: str) -> dict[str, Any]:
    out = {"target": target["target"], "priority": target["priority"], "rule": rule}
    for key in OPTIONS:
        if target.get(key) is not None:
            out[key] = target[key]
    if target.get("skills"):
        out["skills"] = list(target["skills"])
    if target.get("priority_delta"):
        out["priority_delta"] = target["priority_delta"]
    if target.get("overflow"):
        out["overflow"] = dict(target["overflow"])
    return out
