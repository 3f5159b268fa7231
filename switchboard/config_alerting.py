"""Schema of ``config/alerting.yaml``: the alert-intelligence knobs (dedupe window, flapping cooldown,
grouping and storm control). Every feature turns off with a 0 window, which the tests' plain configs use.
"""

from __future__ import annotations

from marshmallow import fields, validate

from switchboard.config_base import SEVERITIES, _defaults_of, _Strict


class DedupeSchema(_Strict):
    window_s = fields.Integer(load_default=300, validate=validate.Range(min=0, max=7 * 86400))


class FlappingSchema(_Strict):
    cooldown_s = fields.Integer(load_default=300, validate=validate.Range(min=0, max=86400))
    kinds = fields.List(fields.String(), load_default=lambda: ["health"])


class GroupingSchema(_Strict):
    window_s = fields.Integer(load_default=60, validate=validate.Range(min=0, max=86400))
    kinds = fields.List(fields.String(), load_default=lambda: ["health"])
    severities = fields.List(fields.String(validate=validate.OneOf(SEVERITIES)),
                             load_default=lambda: ["high", "medium", "low", "info"])
    update_after_s = fields.Integer(load_default=60, validate=validate.Range(min=1, max=3600))


class StormSchema(_Strict):
    factor = fields.Float(load_default=3.0, validate=validate.Range(min=1.0))
    min_baseline_per_hour = fields.Integer(load_default=20, validate=validate.Range(min=1))
    history_hours = fields.Integer(load_default=24, validate=validate.Range(min=1, max=168))


class AlertingFileSchema(_Strict):
    dedupe = fields.Nested(DedupeSchema, load_default=_defaults_of(DedupeSchema))
    flapping = fields.Nested(FlappingSchema, load_default=_defaults_of(FlappingSchema))
    grouping = fields.Nested(GroupingSchema, load_default=_defaults_of(GroupingSchema))
    storm = fields.Nested(StormSchema, load_default=_defaults_of(StormSchema))
