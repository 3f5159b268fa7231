"""Configuration schema of ``config/targets.yaml``: the dispatch targets (PagerDuty, Genesys work items,
calls, orchestrator resolutions, chat), their timeouts, retries and rate limits, and the Genesys, CRM and
fallback settings. ``switchboard.config`` loads the file with it and cross-checks it against the others.
"""

from __future__ import annotations

from typing import Any

from marshmallow import ValidationError, fields, validate, validates_schema

from switchboard.config_base import SEVERITIES, _defaults_of, _Strict


class TimeoutSchema(_Strict):
    connect_s = fields.Float(load_default=3.05, validate=validate.Range(min=0.01))
    read_s = fields.Float(load_default=10.0, validate=validate.Range(min=0.01))


class RetrySchema(_Strict):
    max_attempts = fields.Integer(load_default=6, validate=validate.Range(min=1, max=50))
    base_s = fields.Float(load_default=1.0, validate=validate.Range(min=0))
    cap_s = fields.Float(load_default=60.0, validate=validate.Range(min=0, max=300))  # longer: deferral store


TARGET_KINDS = ("pagerduty", "genesys_workitem", "call", "orchestrator_resolution", "chat")
# What a dispatch does when an earlier attempt died mid-call (the vendor may or may not have acted):
# resend (the vendor deduplicates), verify (ask the vendor), dead_letter (never risk acting twice).
UNCERTAIN_DEFAULTS = {"pagerduty": "resend", "genesys_workitem": "verify", "call": "dead_letter",
                      "orchestrator_resolution": "resend", "chat": "resend"}
SEVERITY_KEYS = fields.String(validate=validate.OneOf(SEVERITIES))


class WorkitemSchema(_Strict):
    type_id = fields.String(required=True)
    default_queue = fields.String(required=True)
    priority = fields.Dict(keys=SEVERITY_KEYS, values=fields.Integer(), load_default=dict)
    due_minutes = fields.Dict(keys=SEVERITY_KEYS, values=fields.Integer(validate=validate.Range(min=1)),
                              load_default=dict)


class OccupancyThrottleSchema(_Strict):
    above = fields.Float(load_default=0.8, validate=validate.Range(min=0.05, max=10))
    slow_s = fields.Float(load_default=30.0, validate=validate.Range(min=1, max=300))
    max_slowdowns = fields.Integer(load_default=3, validate=validate.Range(min=0, max=50))


class CallSchema(_Strict):
    via = fields.String(required=True, validate=validate.OneOf(["genesys_callback", "cxone_dial"]))
    queue = fields.String(load_default=None)
    cxone_skill = fields.Raw(load_default=None)
    dial_path = fields.String(load_default="/incontactapi/services/v33.0/queuecallback")
    dial_body = fields.Dict(load_default=lambda: {"skill": "{skill}", "phoneNumber": "{phone}", "callDelay": 0})
    outside_window_queue = fields.String(required=True)
    # Genesys callbacks only: slow / divert non-critical calls while the callback queue is busy
    occupancy_throttle = fields.Nested(OccupancyThrottleSchema, load_default=None)

    @validates_schema
    def _template_names(self, data: dict[str, Any], **_: Any) -> None:
        from switchboard.payloads.cxone import template_problems

        problems = template_problems(data.get("dial_body") or {})
        if problems:
            raise ValidationError({"dial_body": problems})

    @validates_schema
    def _via_needs(self, data: dict[str, Any], **_: Any) -> None:
        if data["via"] == "genesys_callback" and not data.get("queue"):
            raise ValidationError({"queue": ["required when via is genesys_callback"]})
        if data["via"] == "cxone_dial" and data.get("cxone_skill") is None:
            raise ValidationError({"cxone_skill": ["required when via is cxone_dial"]})


class WindowCapSchema(_Strict):
    count = fields.Integer(required=True, validate=validate.Range(min=1))
    window_s = fields.Float(required=True, validate=validate.Range(min=0.01, max=3600))


class RateLimitSchema(_Strict):
    rate = fields.Float(required=True, validate=validate.Range(min=0.001, min_inclusive=True))
    burst = fields.Float(load_default=1.0, validate=validate.Range(min=1))
    per = fields.String(load_default="bucket", validate=validate.OneOf(["bucket", "routing_key"]))
    critical_share = fields.Float(load_default=0.05, validate=validate.Range(min=0, max=0.5))
    horizon_s = fields.Float(load_default=30.0, validate=validate.Range(min=0, max=250))
    backoff_factor = fields.Float(load_default=0.5, validate=validate.Range(min=0.05, max=0.95))
    min_factor = fields.Float(load_default=0.1, validate=validate.Range(min=0.01, max=1))
    recovery_per_s = fields.Float(load_default=0.02, validate=validate.Range(min=0.0001, max=1))
    max_in_window = fields.Nested(WindowCapSchema, load_default=None)  # the vendor's hard window, checked at send


class TargetSchema(_Strict):
    kind = fields.String(required=True, validate=validate.OneOf(TARGET_KINDS))
    rate_limit = fields.String(load_default=None)  # a name in rate_limits (several targets may share one)
    timeout = fields.Nested(TimeoutSchema, load_default=_defaults_of(TimeoutSchema))
    retry = fields.Nested(RetrySchema, load_default=_defaults_of(RetrySchema))
    on_uncertain = fields.String(load_default=None, validate=validate.OneOf(["resend", "verify", "dead_letter"]))
    fallback = fields.Boolean(load_default=None)
    workitem = fields.Nested(WorkitemSchema, load_default=None)
    call = fields.Nested(CallSchema, load_default=None)

    @validates_schema
    def _kind_needs(self, data: dict[str, Any], **_: Any) -> None:
        if data["kind"] == "call" and data.get("call") is None:
            raise ValidationError({"call": ["required for kind call"]})
        if data["kind"] in ("genesys_workitem", "call") and data.get("workitem") is None:
            raise ValidationError({"workitem": [f"required for kind {data['kind']} (type_id, default_queue)"]})
        if data.get("on_uncertain") == "verify" and data["kind"] not in ("genesys_workitem",):
            raise ValidationError({"on_uncertain": [f"verify is not possible for kind {data['kind']}"]})


class GenesysSchema(_Strict):
    queues = fields.Dict(keys=fields.String(), values=fields.String(), load_default=dict)
    skills = fields.Dict(keys=fields.String(), values=fields.String(), load_default=dict)
    custom_attribute_limit = fields.Integer(load_default=255, validate=validate.Range(min=16, max=4096))
    occupancy_cache_s = fields.Float(load_default=5.0, validate=validate.Range(min=0.1, max=300))  # overflow


class CrmSchema(_Strict):
    timeout = fields.Nested(TimeoutSchema, load_default=_defaults_of(TimeoutSchema, {"connect_s": 1.0, "read_s": 2.0}))
    cache_s = fields.Integer(load_default=300, validate=validate.Range(min=0))


class FallbackSchema(_Strict):
    sms_to_env = fields.String(load_default="SWITCHBOARD_FALLBACK_SMS_TO")
    credential_alert_every_s = fields.Integer(load_default=300, validate=validate.Range(min=1))
    max_attempts = fields.Integer(load_default=3, validate=validate.Range(min=1, max=10))


class TargetsFileSchema(_Strict):
    targets = fields.Dict(keys=fields.String(), values=fields.Nested(TargetSchema), required=True)
    rate_limits = fields.Dict(keys=fields.String(), values=fields.Nested(RateLimitSchema), load_default=dict)
    genesys = fields.Nested(GenesysSchema, load_default=_defaults_of(GenesysSchema))
    crm = fields.Nested(CrmSchema, load_default=_defaults_of(CrmSchema))
    fallback = fields.Nested(FallbackSchema, load_default=_defaults_of(FallbackSchema))
    payload_ref_ttl_s = fields.Integer(load_default=7 * 86400, validate=validate.Range(min=60))
