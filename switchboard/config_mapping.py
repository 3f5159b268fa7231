"""Schema of the ``mapping`` block of ``config/sources.yaml``: where the ``generic`` source's canonical
fields come from in the JSON it posts (dotted paths), how its status values read, and its attributes."""

from __future__ import annotations

from typing import Any

from marshmallow import ValidationError, fields, validate, validates_schema

from switchboard.config_base import _Strict
from switchboard.generic_mapping import FIELDS, PATH_PATTERN, mapped_paths

STATUSES = ("firing", "resolved")
KINDS = ("health", "ztp", "iot")


def _path(**kwargs: Any) -> fields.String:
    return fields.String(validate=validate.Regexp(PATH_PATTERN, error="must be a dotted path like alert.labels.host"),
                         **kwargs)


class StatusMappingSchema(_Strict):
    path = _path(required=True)
    values = fields.Dict(keys=fields.String(validate=validate.Length(min=1, max=256)),
                         values=fields.String(validate=validate.OneOf(STATUSES)), required=True,
                         validate=validate.Length(min=1))
    default = fields.String(load_default="firing", validate=validate.OneOf(STATUSES))


class GenericMappingSchema(_Strict):
    entity_id = _path(required=True)
    metric_type = _path(required=True)
    timestamp = _path(required=True)
    entity_name = _path(load_default=None)
    current_value = _path(load_default=None)
    threshold_value = _path(load_default=None)
    breach_direction = _path(load_default=None)
    status = fields.Nested(StatusMappingSchema, load_default=None)
    state = _path(load_default=None)
    kind = fields.String(load_default="health", validate=validate.OneOf(KINDS))
    attributes = fields.Dict(keys=fields.String(validate=validate.Length(min=1, max=64)), values=_path(),
                             load_default=dict)

    @validates_schema
    def _typed_paths_are_leaves(self, data: dict[str, Any], **_: Any) -> None:
        # a payload cannot hold a string at alert.host and also an object with alert.host.name in it
        paths = mapped_paths(data)
        bad: dict[str, list[str]] = {}
        for name, path in paths:
            if name not in FIELDS:
                continue
            below = [f"{other_name} ({other})" for other_name, other in paths if other.startswith(path + ".")]
            if below:
                bad[name] = [f"{path} is read as a value, but {', '.join(below)} reads inside it"]
        if bad:
            raise ValidationError(bad)


def mapping_problems(sources: dict[str, Any]) -> dict[str, list[str]]:
    """The generic source needs a mapping; the vendor sources take none (their fields are known, in code)."""
    bad = {}
    for name, source in sources.items():
        if name == "generic" and source.get("mapping") is None:
            bad[f"sources.{name}.mapping"] = ["required for the generic source (where its fields come from)"]
        elif name != "generic" and source.get("mapping") is not None:
            bad[f"sources.{name}.mapping"] = ["only the generic source takes a mapping"]
    return bad
