"""Schemas of ``config/windows.yaml``: maintenance windows (one-off or RRULE), the deferral store's
bounds and the dialing policy (windows, federal bound, state rules, caps)."""

from __future__ import annotations

from typing import Any

from marshmallow import ValidationError, fields, validate, validates_schema

from switchboard.config_base import CLOCK, SOURCE_NAMES, _defaults_of, _Strict


class ClockWindowSchema(_Strict):
    start = fields.String(required=True, validate=validate.Regexp(CLOCK, error="must be HH:MM"))
    end = fields.String(required=True, validate=validate.Regexp(CLOCK, error="must be HH:MM"))

    @validates_schema
    def _ordered(self, data: dict[str, Any], **_: Any) -> None:
        if data["start"] >= data["end"]:
            raise ValidationError({"end": ["must be later than start (windows do not cross midnight)"]})


class StateRuleSchema(_Strict):
    start = fields.String(load_default=None, validate=validate.Regexp(CLOCK, error="must be HH:MM"))
    end = fields.String(load_default=None, validate=validate.Regexp(CLOCK, error="must be HH:MM"))
    max_calls_per_24h = fields.Integer(load_default=None, validate=validate.Range(min=0))
    no_sundays = fields.Boolean(load_default=False)
    no_holidays = fields.Boolean(load_default=False)

    @validates_schema
    def _ordered(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("start") and data.get("end") and data["start"] >= data["end"]:
            raise ValidationError({"end": ["must be later than start"]})


class DialingSchema(_Strict):
    default_window = fields.Nested(ClockWindowSchema, load_default=lambda: {"start": "08:00", "end": "20:00"})
    federal_bound = fields.Nested(ClockWindowSchema, load_default=lambda: {"start": "08:00", "end": "21:00"})
    max_calls_per_24h = fields.Integer(load_default=None, allow_none=True, validate=validate.Range(min=0))
    business_units = fields.Dict(keys=fields.String(), values=fields.Nested(ClockWindowSchema), load_default=dict)
    states = fields.Dict(keys=fields.String(validate=validate.Regexp(r"^[A-Z]{2}$", error="a US state code")),
                         values=fields.Nested(StateRuleSchema), load_default=dict)


class RecurrenceSchema(_Strict):
    rrule = fields.String(required=True)
    dtstart = fields.AwareDateTime(required=True)
    timezone = fields.String(required=True)
    duration_minutes = fields.Integer(required=True, validate=validate.Range(min=1, max=7 * 24 * 60))

    @validates_schema
    def _parses(self, data: dict[str, Any], **_: Any) -> None:
        from switchboard.maintenance import recurrence_problem

        problem = recurrence_problem(data)
        if problem:
            raise ValidationError({"rrule": [problem]})


class ScopeSchema(_Strict):
    site = fields.List(fields.String(), load_default=None)
    entity = fields.List(fields.String(), load_default=None)
    business_unit = fields.List(fields.String(), load_default=None)
    source = fields.List(fields.String(validate=validate.OneOf(SOURCE_NAMES)), load_default=None)

    @validates_schema
    def _not_empty(self, data: dict[str, Any], **_: Any) -> None:
        if not any(data.get(k) for k in ("site", "entity", "business_unit", "source")):
            raise ValidationError(["name at least one site, entity, business_unit or source (an empty scope "
                                   "would hold every alert)"])


class MaintenanceSchema(_Strict):
    name = fields.String(required=True)
    start = fields.AwareDateTime(load_default=None)
    end = fields.AwareDateTime(load_default=None)
    recurrence = fields.Nested(RecurrenceSchema, load_default=None)
    scope = fields.Nested(ScopeSchema, required=True)

    @validates_schema
    def _one_kind(self, data: dict[str, Any], **_: Any) -> None:
        one_off = data.get("start") is not None or data.get("end") is not None
        if one_off == (data.get("recurrence") is not None):
            raise ValidationError(["give either start and end, or recurrence"])
        if one_off and (data.get("start") is None or data.get("end") is None or data["end"] <= data["start"]):
            raise ValidationError({"end": ["start and end are both required, end after start"]})


class DeferralSchema(_Strict):
    max_hold_s = fields.Integer(load_default=7 * 86400, validate=validate.Range(min=1))


class WindowsFileSchema(_Strict):
    maintenance = fields.List(fields.Nested(MaintenanceSchema), load_default=list)
    deferral = fields.Nested(DeferralSchema, load_default=_defaults_of(DeferralSchema))
    dialing = fields.Nested(DialingSchema, load_default=_defaults_of(DialingSchema))
