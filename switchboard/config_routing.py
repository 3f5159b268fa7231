"""Schemas of a routing rule's ``match`` and ``targets`` entries (``config/routing.yaml``), and the checks
of route options against the targets they name (run by ``load_config`` once every file has loaded).

Regular expressions are compiled at load, so a bad one is a config error naming file, key and reason
instead of a stage error on the first alert that reaches the rule.
"""

from __future__ import annotations

import re
from typing import Any

from marshmallow import ValidationError, fields, validate

from switchboard.config_base import PRIORITIES, SEVERITIES, SOURCE_NAMES, _Strict

GENESYS_PRIORITY = validate.Range(min=-25_000_000, max=25_000_000)  # Genesys work item priority range
SCALAR = (str, int, float, bool, type(None))


class CompilesAsRegex(validate.Validator):
    """A Python regular expression that compiles; the error says why not."""

    def __call__(self, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValidationError(f"not a valid regular expression: {exc}") from exc
        return value

    def __repr__(self) -> str:
        return "a valid Python regular expression"


class ScalarValues(validate.Validator):
    """Every value of a mapping is a string, number, boolean or null (compared with ``==``)."""

    def __call__(self, value: dict[str, Any]) -> dict[str, Any]:
        bad = sorted(k for k, v in value.items() if not isinstance(v, SCALAR))
        if bad:
            raise ValidationError(f"values must be strings, numbers, booleans or null: {', '.join(bad)}")
        return value

    def __repr__(self) -> str:
        return "values: strings, numbers, booleans or null"


class MatchSchema(_Strict):
    source = fields.List(fields.String(validate=validate.OneOf(SOURCE_NAMES)), load_default=None)
    kind = fields.List(fields.String(), load_default=None)
    metric_type = fields.List(fields.String(), load_default=None)
    severity = fields.List(fields.String(validate=validate.OneOf(SEVERITIES)), load_default=None)
    status = fields.List(fields.String(validate=validate.OneOf(["firing", "resolved"])), load_default=None)
    business_impact = fields.List(fields.String(), load_default=None)
    state = fields.List(fields.String(), load_default=None)  # the source's reported state, e.g. VALIDATION_FAILED
    attributes = fields.Dict(keys=fields.String(), values=fields.Raw(allow_none=True), load_default=None,
                             validate=ScalarValues())
    error_code_regex = fields.String(load_default=None, validate=CompilesAsRegex())


class OverflowSchema(_Strict):
    queue = fields.String(required=True)  # Genesys queue name (targets.yaml genesys.queues)
    when_occupancy_above = fields.Float(load_default=0.85, validate=validate.Range(min=0, max=100))
    priority_delta = fields.Integer(load_default=1, validate=GENESYS_PRIORITY)


class RouteTargetSchema(_Strict):
    target = fields.String(required=True)
    priority = fields.String(load_default="default", validate=validate.OneOf(PRIORITIES))
    queue = fields.String(load_default=None)  # Genesys queue name (targets.yaml genesys.queues)
    skills = fields.List(fields.String(), load_default=list)  # Genesys skill names (genesys.skills)
    workitem_priority = fields.Integer(load_default=None, validate=GENESYS_PRIORITY)
    priority_delta = fields.Integer(load_default=0, validate=GENESYS_PRIORITY)
    escalation_minutes = fields.Integer(load_default=None, validate=validate.Range(min=1, max=7 * 24 * 60))
    overflow = fields.Nested(OverflowSchema, load_default=None)


WORKITEM_ONLY = ("workitem_priority", "overflow")
ESCALATES = ("pagerduty", "genesys_workitem", "chat")  # kinds where escalation_minutes means something


def route_target_problems(rules: list[dict[str, Any]], targets: dict[str, dict[str, Any]],
                          queues: dict[str, str]) -> list[str]:
    """Route options that the named target cannot honour, and overflow queues that do not exist."""
    problems = []
    for i, rule in enumerate(rules):
        for j, entry in enumerate(rule["targets"]):
            where = f"routing.yaml: rules.{i}.targets.{j}"
            kind = targets.get(entry["target"], {}).get("kind")
            if kind is None:
                continue  # an unknown target is reported by the general cross-check
            if kind != "genesys_workitem":
                problems += [f"{where}.{key}: only for genesys_workitem targets ({entry['target']!r} is {kind})"
                             for key in WORKITEM_ONLY if entry.get(key) is not None]
                if entry.get("priority_delta"):
                    problems.append(f"{where}.priority_delta: only for genesys_workitem targets "
                                    f"({entry['target']!r} is {kind})")
            if entry.get("escalation_minutes") is not None and kind not in ESCALATES:
                problems.append(f"{where}.escalation_minutes: means nothing for kind {kind} "
                                f"(only {', '.join(ESCALATES)})")
            overflow = entry.get("overflow")
            if overflow is not None and kind == "genesys_workitem":
                primary = entry.get("queue") or targets[entry["target"]]["workitem"]["default_queue"]
                if overflow["queue"] not in queues:
                    problems.append(f"{where}.overflow.queue: unknown queue {overflow['queue']!r} "
                                    f"(not in genesys.queues)")
                elif overflow["queue"] == primary:
                    problems.append(f"{where}.overflow.queue: the same queue as the primary ({primary!r})")
    return problems
