"""Configuration as data: load the YAML files under ``config/`` and validate them with marshmallow.

Errors name the file, the key path and the problem, e.g.
``config/sources.yaml: sources.genesys.signature.encoding: Must be one of: hex, base64.``
A config is loaded at start-up and again when its files change (``switchboard.config_reload``);
secrets are never read from YAML, only the names of the environment variables that hold them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from switchboard.config_alerting import AlertingFileSchema
from switchboard.config_base import (  # noqa: F401 - re-exported: the loader's public names
    CLOCK,
    PRIORITIES,
    SEVERITIES,
    SOURCE_NAMES,
    ConfigError,
    _defaults_of,
    _Strict,
)
from switchboard.config_mapping import GenericMappingSchema, mapping_problems
from switchboard.config_routing import MatchSchema, RouteTargetSchema, route_target_problems
from switchboard.config_targets import (  # noqa: F401 - re-exported: config_texts reads UNCERTAIN_DEFAULTS
    TARGET_KINDS,
    UNCERTAIN_DEFAULTS,
    TargetsFileSchema,
)
from switchboard.config_windows import WindowsFileSchema


class SignatureSchema(_Strict):
    scheme = fields.String(required=True, validate=validate.OneOf(["hmac-sha256", "standard-webhooks"]))
    header = fields.String(load_default="X-Signature-256")
    encoding = fields.String(load_default="hex", validate=validate.OneOf(["hex", "base64"]))
    prefix = fields.String(load_default="")
    tolerance_s = fields.Integer(load_default=300, validate=validate.Range(min=1, max=3600))


class PayloadKeySchema(_Strict):
    fields_ = fields.List(fields.String(), required=True, data_key="fields", validate=validate.Length(min=1))
    window_s = fields.Integer(required=True, validate=validate.Range(min=1))


class IdempotencySchema(_Strict):
    header = fields.String(load_default=None, allow_none=True)
    window_s = fields.Integer(load_default=86400, validate=validate.Range(min=1))
    payload_keys = fields.List(fields.Nested(PayloadKeySchema), load_default=list)


class RateSchema(_Strict):
    limit = fields.Integer(required=True, validate=validate.Range(min=1))
    per_seconds = fields.Integer(load_default=1, validate=validate.Range(min=1))


class SourceSchema(_Strict):
    signature = fields.Nested(SignatureSchema, required=True)
    secrets_env = fields.String(required=True)
    max_body_bytes = fields.Integer(load_default=65536, validate=validate.Range(min=64, max=10 * 1024 * 1024))
    ingress_rate = fields.Nested(RateSchema, load_default=_defaults_of(RateSchema, {"limit": 500}))
    idempotency = fields.Nested(IdempotencySchema, load_default=_defaults_of(IdempotencySchema))
    platform = fields.String(required=True)
    severity = fields.Dict(keys=fields.String(), values=fields.Raw(), load_default=dict)
    mapping = fields.Nested(GenericMappingSchema, load_default=None)  # the generic source's fields (paths)

    @validates_schema
    def _severities(self, data: dict[str, Any], **_: Any) -> None:
        # per metric_type: one severity, or a map from the reported state to a severity
        bad = {}
        for metric, rule in (data.get("severity") or {}).items():
            values = rule.values() if isinstance(rule, dict) else [rule]
            wrong = [v for v in values if v not in SEVERITIES]
            if wrong:
                bad[f"severity.{metric}"] = [f"{wrong[0]!r} is not one of: {', '.join(SEVERITIES)}"]
        if bad:
            raise ValidationError(bad)


class SourcesFileSchema(_Strict):
    sources = fields.Dict(keys=fields.String(validate=validate.OneOf(SOURCE_NAMES)),
                          values=fields.Nested(SourceSchema), required=True)

    @validates_schema
    def _mapping_only_for_generic(self, data: dict[str, Any], **_: Any) -> None:
        bad = mapping_problems(data.get("sources") or {})
        if bad:
            raise ValidationError(bad)


class RuleSchema(_Strict):
    name = fields.String(required=True)
    match = fields.Nested(MatchSchema, load_default=_defaults_of(MatchSchema))
    targets = fields.List(fields.Nested(RouteTargetSchema), required=True, validate=validate.Length(min=1))
    # at most one firing alert per entity acts through this rule per window (e.g. one call per sensor an hour)
    suppress_for_s = fields.Integer(load_default=0, validate=validate.Range(min=0, max=7 * 86400))


class RoutingFileSchema(_Strict):
    rules = fields.List(fields.Nested(RuleSchema), required=True, validate=validate.Length(min=1))


class LinkSchema(_Strict):
    href = fields.String(required=True)
    text = fields.String(load_default="")


class BusinessUnitSchema(_Strict):
    pagerduty_routing_key_env = fields.String(required=True)
    links = fields.List(fields.Nested(LinkSchema), load_default=list)


class EntitySchema(_Strict):
    business_unit = fields.String(required=True)
    name = fields.String(load_default=None)


class MappingsFileSchema(_Strict):
    entities = fields.Dict(keys=fields.String(), values=fields.Nested(EntitySchema), load_default=dict)
    business_units = fields.Dict(keys=fields.String(), values=fields.Nested(BusinessUnitSchema), required=True)
    default_routing_key_env = fields.String(required=True)
    audit_notify_every_s = fields.Integer(load_default=86400, validate=validate.Range(min=0))  # 0: never notify
    # parent entity -> the entities that fail because it failed (trunk -> queues -> analytics)
    dependencies = fields.Dict(keys=fields.String(), values=fields.List(fields.String()), load_default=dict)

    @validates_schema
    def _units_exist(self, data: dict[str, Any], **_: Any) -> None:
        units = data.get("business_units", {})
        bad = {f"entities.{k}.business_unit": [f"unknown business unit {v['business_unit']!r}"]
               for k, v in data.get("entities", {}).items() if v["business_unit"] not in units}
        if bad:
            raise ValidationError(bad)

    @validates_schema
    def _acyclic(self, data: dict[str, Any], **_: Any) -> None:
        from switchboard.grouping import cycles

        looped = cycles(data.get("dependencies") or {})
        if looped:
            raise ValidationError({"dependencies": [f"cycle through {', '.join(looped)}"]})


class ServiceFileSchema(_Strict):
    ledger_ttl_s = fields.Integer(load_default=7 * 86400, validate=validate.Range(min=60))
    ingest_max_depth = fields.Integer(load_default=100_000, validate=validate.Range(min=0))  # 0: no guard
    depth_check_every_s = fields.Float(load_default=1.0, validate=validate.Range(min=0.05, max=60))
    pipeline_grain = fields.String(load_default="chain", validate=validate.OneOf(["chain", "fused"]))
    retry_after_s = fields.Integer(load_default=5, validate=validate.Range(min=1))
    # a client has this long to deliver its whole request (slow loris; see webhook_app/gunicorn_worker.py)
    read_timeout_s = fields.Float(load_default=10.0, validate=validate.Range(min=0.1, max=300))
    config_poll_s = fields.Float(load_default=5.0, validate=validate.Range(min=0, max=3600))  # 0: no polling
    reconcile_every_s = fields.Float(load_default=300.0, validate=validate.Range(min=1))
    reconcile_lookback_s = fields.Integer(load_default=86_400, validate=validate.Range(min=60))
    # Redis broker: the stalled sweep (tasks/stalled_sweep.py). stall_after_s must exceed the longest time
    # between an event's step and the message it publishes (a vendor call's timeout, a broker restart).
    stall_after_s = fields.Float(load_default=120.0, validate=validate.Range(min=1))
    stall_sweep_every_s = fields.Float(load_default=30.0, validate=validate.Range(min=0.5))
    stall_max_sweeps = fields.Integer(load_default=3, validate=validate.Range(min=1, max=100))
    # task events batched by the pools' consumer (tasks/worker_consumer.py); 0: Celery's flush per loop turn
    events_flush_s = fields.Float(load_default=0.1, validate=validate.Range(min=0, max=5))


FILES: dict[str, type[Schema]] = {
    "sources.yaml": SourcesFileSchema,
    "targets.yaml": TargetsFileSchema,
    "routing.yaml": RoutingFileSchema,
    "mappings.yaml": MappingsFileSchema,
    "service.yaml": ServiceFileSchema,
    "windows.yaml": WindowsFileSchema,
    "alerting.yaml": AlertingFileSchema,
}


@dataclass(frozen=True)
class Config:
    sources: dict[str, dict[str, Any]]
    targets: dict[str, dict[str, Any]]
    rules: list[dict[str, Any]]
    mappings: dict[str, Any]
    service: dict[str, Any]
    directory: Path
    vendors: dict[str, Any] = field(default_factory=dict)  # targets.yaml's genesys / crm / fallback blocks
    windows: dict[str, Any] = field(default_factory=dict)  # windows.yaml: maintenance, deferral, dialing
    alerting: dict[str, Any] = field(default_factory=dict)  # alerting.yaml: dedupe, flapping, grouping, storm

    def on_uncertain(self, target: str) -> str:
        cfg = self.targets[target]
        return cfg.get("on_uncertain") or UNCERTAIN_DEFAULTS[cfg["kind"]]


def _flatten(messages: Any, path: str = "") -> list[str]:
    if isinstance(messages, dict):
        out: list[str] = []
        for key, value in messages.items():
            # "_schema" is a whole-object error; "value" is marshmallow's marker for a Dict entry's value
            sub = path if key in ("_schema", "value") else (f"{path}.{key}" if path else str(key))
            out.extend(_flatten(value, sub))
        return out
    if isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        return [f"{path or '<top>'}: {' '.join(messages)}"]
    if isinstance(messages, list):
        return [line for m in messages for line in _flatten(m, path)]
    return [f"{path or '<top>'}: {messages}"]


# libyaml's safe loader where PyYAML was built with it: 5x faster on a mappings file of 20,000 entities
# (0.8 s instead of 4.3 s), which every worker parses at start and on each reload.
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _load_file(directory: Path, name: str, schema: type[Schema]) -> dict[str, Any]:
    path = directory / name
    label = f"{directory.name}/{name}"
    if not path.exists():
        if name in ("service.yaml", "windows.yaml", "alerting.yaml"):
            return schema().load({})
        raise ConfigError(f"{label}: file missing")
    try:
        raw = yaml.load(path.read_text(), Loader=SAFE_LOADER) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{label}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{label}: <top>: must be a mapping")
    try:
        return schema().load(raw)
    except ValidationError as exc:
        raise ConfigError("\n".join(f"{label}: {line}" for line in _flatten(exc.messages))) from exc


def _cross_check(cfg: Config) -> list[str]:
    problems = []
    queues, skills = cfg.vendors["genesys"]["queues"], cfg.vendors["genesys"]["skills"]
    for i, rule in enumerate(cfg.rules):
        for j, target in enumerate(rule["targets"]):
            where = f"routing.yaml: rules.{i}.targets.{j}"
            if target["target"] not in cfg.targets:
                problems.append(f"{where}.target: unknown target {target['target']!r} (not in targets.yaml)")
            if target["queue"] is not None and target["queue"] not in queues:
                problems.append(f"{where}.queue: unknown queue {target['queue']!r} (not in genesys.queues)")
            problems += [f"{where}.skills: unknown skill {s!r} (not in targets.yaml genesys.skills)"
                         for s in target["skills"] if s not in skills]
    problems += route_target_problems(cfg.rules, cfg.targets, queues)
    for name, target in cfg.targets.items():
        if target.get("rate_limit") and target["rate_limit"] not in cfg.vendors["rate_limits"]:
            problems.append(f"targets.yaml: targets.{name}.rate_limit: unknown rate limit {target['rate_limit']!r} "
                            f"(not in rate_limits)")
        named = [(f"targets.{name}.workitem.default_queue", (target.get("workitem") or {}).get("default_queue"))]
        call = target.get("call") or {}
        named += [(f"targets.{name}.call.queue", call.get("queue")),
                  (f"targets.{name}.call.outside_window_queue", call.get("outside_window_queue"))]
        problems += [f"targets.yaml: {key}: unknown queue {value!r} (not in genesys.queues)"
                     for key, value in named if value is not None and value not in queues]
    return problems


def load_config(directory: Path) -> Config:
    """Load and validate every file; raise ConfigError listing every problem found."""
    loaded: dict[str, Any] = {}
    errors: list[str] = []
    for name, schema in FILES.items():
        try:
            loaded[name] = _load_file(directory, name, schema)
        except ConfigError as exc:
            errors.append(str(exc))
    if errors:
        raise ConfigError("\n".join(errors))
    cfg = Config(
        sources=loaded["sources.yaml"]["sources"],
        targets=loaded["targets.yaml"]["targets"],
        rules=loaded["routing.yaml"]["rules"],
        mappings=loaded["mappings.yaml"],
        service=loaded["service.yaml"],
        directory=directory,
        vendors={k: loaded["targets.yaml"][k] for k in ("genesys", "crm", "fallback", "payload_ref_ttl_s",
                                                        "rate_limits")},
        windows=loaded["windows.yaml"],
        alerting=loaded["alerting.yaml"],
    )
    problems = _cross_check(cfg)
    if problems:
        raise ConfigError("\n".join(problems))
    return cfg
