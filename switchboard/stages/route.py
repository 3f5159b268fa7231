"""Route: the first matching rule of ``config/routing.yaml`` names the targets and their priority."""

from __future__ import annotations

import re
from typing import Any

from switchboard.stages import Alert, Outcome, StageContext


def rule_matches(match: dict[str, Any], alert: Alert) -> bool:
    for field in ("source", "kind", "metric_type", "severity", "status", "business_impact"):
        allowed = match.get(field)
        if allowed is not None and alert.get(field) not in allowed:
            return False
    pattern = match.get("error_code_regex")
    if pattern is not None:
        code = (alert.get("attributes") or {}).get("error_code") or ""
        if not re.search(pattern, code):
            return False
    return True


def route(alert: Alert, ctx: StageContext) -> Alert | Outcome:
    """The alert with ``routes: [{target, priority, rule, queue?, skills?}]``, or an Outcome if nothing matched."""
    for rule in ctx.config.rules:
        if rule_matches(rule["match"], alert):
            out = dict(alert)
            out["routes"] = [_route(t, rule["name"]) for t in rule["targets"]]
            return out
    return Outcome("suppressed", "no routing rule matched")


def _route(target: dict[str, Any], rule: str) -> dict[str, Any]:
    out = {"target": target["target"], "priority": target["priority"], "rule": rule}
    if target.get("queue"):
        out["queue"] = target["queue"]
    if target.get("skills"):
        out["skills"] = list(target["skills"])
    return out
