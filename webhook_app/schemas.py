"""Marshmallow schemas of the payloads each source posts (validated at the receiver, answered 422).

Unknown fields are tolerated (vendors add fields without notice) but every documented field is
checked for presence, type and range; timestamps must carry an explicit offset (naive ones are rejected)
and name an instant that exists in UTC. The ``generic`` source has no schema class: its payload is checked
against the ``mapping`` of its config (``switchboard.generic_mapping``).
"""

from __future__ import annotations

import functools
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate, validates_schema

from switchboard.generic_mapping import UtcDateTime, payload_errors


class _Lenient(Schema):
    class Meta:
        unknown = EXCLUDE


_ID = {"required": True, "validate": validate.Length(min=1, max=256)}
_NAME = {"load_default": None, "allow_none": True, "validate": validate.Length(max=512)}


class GenesysTrunkEvent(_Lenient):
    trunkId = fields.String(**_ID)
    status = fields.String(required=True, validate=validate.OneOf(["UP", "DOWN", "DEGRADED"]))
    siteId = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=256))
    timestamp = UtcDateTime(required=True)


class GenesysQueueEvent(_Lenient):
    queueId = fields.String(**_ID)
    queueName = fields.String(**_NAME)
    metric = fields.String(required=True, validate=validate.Length(min=1, max=128))
    value = fields.Float(required=True, allow_nan=False)
    threshold = fields.Float(required=True, allow_nan=False)
    direction = fields.String(required=True, validate=validate.OneOf(["above", "below"]))
    timestamp = UtcDateTime(required=True)


class WorkitemResolution(_Lenient):
    status = fields.String(required=True, validate=validate.Length(min=1, max=64))
    code = fields.String(required=True, validate=validate.Length(min=1, max=128))
    action = fields.String(required=True, validate=validate.Length(min=1, max=128))


class ZtpWorkitemFields(_Lenient):
    ztp_event_id = fields.String(**_ID)
    device_mac = fields.String(required=True, validate=validate.Regexp(
        r"^[0-9A-Fa-f]{2}([:-][0-9A-Fa-f]{2}){5}$", error="must be a MAC address like 00:1A:2B:3C:4D:5E"))


class GenesysWorkitemResolved(_Lenient):
    """An agent closed a ZTP work item (posted by a Genesys process-automation webhook action)."""

    workitemId = fields.String(**_ID)
    customFields = fields.Nested(ZtpWorkitemFields, required=True)
    resolution = fields.Nested(WorkitemResolution, required=True)
    assigneeId = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=256))
    dateClosed = UtcDateTime(required=True)


class CXoneTrunkData(_Lenient):
    trunkId = fields.String(**_ID)
    state = fields.String(required=True, validate=validate.OneOf(["up", "healthy", "degraded", "down"]))
    qualityScore = fields.Float(load_default=None, allow_none=True, allow_nan=False,
                                validate=validate.Range(min=0, max=1))
    droppedCalls = fields.Integer(load_default=None, allow_none=True, validate=validate.Range(min=0))
    occurredAt = UtcDateTime(required=True)


class CXoneQueueData(_Lenient):
    queueId = fields.String(**_ID)
    queueName = fields.String(**_NAME)
    metric = fields.String(required=True, validate=validate.Length(min=1, max=128))
    value = fields.Float(required=True, allow_nan=False)
    threshold = fields.Float(required=True, allow_nan=False)
    direction = fields.String(required=True, validate=validate.OneOf(["above", "below"]))
    occurredAt = UtcDateTime(required=True)


class _Envelope(_Lenient):
    """``{eventType, <body_field>: {...}}`` where the inner schema depends on ``eventType``."""

    body_field = ""
    inner: dict[str, type[Schema]] = {}

    @validates_schema(pass_original=True)
    def _inner(self, data: dict[str, Any], original: Any, **_: Any) -> None:
        inner = self.inner.get(data.get("eventType", ""))
        if inner is None:
            raise ValidationError([f"unsupported eventType; expected one of {sorted(self.inner)}"],
                                  "eventType")
        body = original.get(self.body_field) if isinstance(original, dict) else None
        if not isinstance(body, dict):
            raise ValidationError(["Missing data for required field (an object)."], self.body_field)
        errors = _instance(inner).validate(body)
        if errors:
            raise ValidationError(errors, self.body_field)


class GenesysPayload(_Envelope):
    body_field = "event"
    inner = {"telephony.trunk.status.changed": GenesysTrunkEvent, "routing.queue.event": GenesysQueueEvent,
             "taskmanagement.workitem.resolved": GenesysWorkitemResolved}
    eventType = fields.String(required=True)
    event = fields.Dict(required=True)


class CXonePayload(_Envelope):
    body_field = "data"
    inner = {"trunk.health.alert": CXoneTrunkData, "queue.status.changed": CXoneQueueData}
    eventType = fields.String(required=True)
    data = fields.Dict(required=True)


class ZTPPayload(_Lenient):
    ztp_event_id = fields.String(**_ID)
    device_mac = fields.String(required=True,
                               validate=validate.Regexp(r"^[0-9A-Fa-f]{2}([:-][0-9A-Fa-f]{2}){5}$",
                                                        error="must be a MAC address like 00:1A:2B:3C:4D:5E"))
    device_model = fields.String(**_NAME)
    provisioning_status = fields.String(required=True,
                                        validate=validate.OneOf(["SUCCESS", "VALIDATION_FAILED", "FAILED",
                                                                 "IN_PROGRESS", "TIMEOUT"]))
    error_code = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=128))
    # free text from the orchestrator's validator (logs, certificate chains): travels by payload_ref
    error_detail = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=16384))
    site_id = fields.String(**_ID)
    orchestrator_timestamp = UtcDateTime(required=True)
    requires_callback = fields.Boolean(load_default=False, truthy={True}, falsy={False})


class Telemetry(_Lenient):
    currentValue = fields.Float(required=True, allow_nan=False)
    threshold = fields.Float(required=True, allow_nan=False)
    unit = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=32))


class IoTPayload(_Lenient):
    idempotencyKey = fields.String(**_ID)
    sensorId = fields.String(**_ID)
    customerId = fields.String(**_ID)
    alertType = fields.String(required=True, validate=validate.Length(min=1, max=128))
    timestamp = UtcDateTime(required=True)
    telemetryData = fields.Nested(Telemetry, required=True)


SCHEMAS: dict[str, type[Schema]] = {
    "genesys": GenesysPayload,
    "cxone": CXonePayload,
    "ztp": ZTPPayload,
    "iot": IoTPayload,
}


def validate_payload(source: str, data: Any, source_cfg: dict[str, Any] | None = None) -> dict[str, Any]:
    """Every field error of ``data`` against the source's schema ({} when valid).

    The generic source's schema is its config's ``mapping`` (errors keyed by dotted path).
    """
    if source == "generic":
        if source_cfg is None:
            raise ValueError("the generic source is validated against its config's mapping: pass source_cfg")
        return payload_errors(source_cfg["mapping"], data)
    return _instance(SCHEMAS[source]).validate(data)


# One instance per schema class (the sources' and the envelopes' inner ones), made on first use: instantiating
# a marshmallow schema deep-copies its declared fields (~19 deepcopies per request, ~10% of the receiver's time
# in bench/). ``validate`` keeps no state on the instance.
@functools.cache
def _instance(schema: type[Schema]) -> Schema:
    return schema()
