"""Request bodies against the vendors' own definitions: the Genesys Cloud SDK's models
(``purecloudplatformclientv2``: ``attribute_map`` names, ``swagger_types`` types) plus the required/length
rules the SDK does not enforce (CONTRACTS.md), and the PagerDuty Events v2 schema.

The SDK's package ``__init__`` imports every one of its thousands of models (about 3 s); only a few model
modules are needed, so they are loaded under an alias package that skips that ``__init__`` (about 30 ms).
"""

from __future__ import annotations

import copy
import importlib
import importlib.util
import json
import re
import sys
import types
from datetime import UTC, date, datetime
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from switchboard.config import load_config
from switchboard.dialing import plan_call
from switchboard.payloads.genesys import (
    DESCRIPTION_MAX,
    NAME_MAX,
    NAME_MIN,
    callback_body,
    due_after,
    workitem_body,
)
from switchboard.payloads.pagerduty import pagerduty_event
from switchboard.stages import StageContext
from switchboard.stages.enrich import enrich
from switchboard.stages.normalize import normalize
from switchboard.stages.route import route
from tests.helpers import ROOT

CONFIG = load_config(ROOT / "config")
CTX = StageContext(config=CONFIG)
SAMPLES = ROOT / "samples"
GENESYS = CONFIG.vendors["genesys"]
LIMIT = GENESYS["custom_attribute_limit"]
CUSTOMERS = json.loads((SAMPLES / "crm-customers.json").read_text())
PD_SCHEMA = json.loads((ROOT / "vendor_sandbox" / "specs" / "pagerduty-events-v2.schema.json").read_text())
NOW = datetime(2026, 6, 10, 14, 0, tzinfo=UTC)  # a Wednesday, 10:00 in New York: inside the window

GENESYS_SAMPLES = sorted((p.name, "ztp") for p in SAMPLES.glob("ztp-*.json")) + [("iot-temp-critical.json", "iot")]
ALL_SAMPLES = GENESYS_SAMPLES + [("genesys-trunk-down.json", "genesys"), ("genesys-queue-abandon.json", "genesys"),
                                 ("cxone-trunk-health.json", "cxone"), ("cxone-queue-status.json", "cxone")]


# --- the SDK's models, loaded without the package's import-everything __init__ ----------------------

_SDK_ALIAS = "_genesys_sdk_models"


@cache
def _sdk_models_dir() -> Path:
    spec = importlib.util.find_spec("PureCloudPlatformClientV2")
    assert spec is not None and spec.submodule_search_locations, (
        "purecloudplatformclientv2 is not installed: pip install -e '.[test]'")
    root = Path(spec.submodule_search_locations[0])
    package = types.ModuleType(_SDK_ALIAS)
    package.__path__ = [str(root)]
    models = types.ModuleType(f"{_SDK_ALIAS}.models")
    models.__path__ = [str(root / "models")]
    sys.modules.setdefault(_SDK_ALIAS, package)
    sys.modules.setdefault(f"{_SDK_ALIAS}.models", models)
    return root / "models"


@cache
def _model_modules() -> dict[str, str]:
    """Class name -> module name, from the SDK's own ``models/__init__.py`` (``from .x import X`` lines)."""
    text = (_sdk_models_dir() / "__init__.py").read_text()
    return {cls: mod for mod, cls in re.findall(r"^from \.(\w+) import (\w+)$", text, flags=re.M)}


@cache
def sdk_model(name: str) -> Any:
    """An instance of the SDK model class ``name`` (its ``swagger_types``/``attribute_map`` are per instance)."""
    module = importlib.import_module(f"{_SDK_ALIAS}.models.{_model_modules()[name]}")
    return getattr(module, name)()


def model_errors(body: Any, model: str, path: str = "") -> list[str]:
    """Where ``body`` (a JSON request body) disagrees with the SDK model's field names and types."""
    if not isinstance(body, dict):
        return [f"{path or '<body>'}: expected an object for {model}, got {type(body).__name__}"]
    instance = sdk_model(model)
    json_types = {instance.attribute_map[attr]: kind for attr, kind in instance.swagger_types.items()}
    errors = []
    for key, value in body.items():
        where = f"{path}.{key}" if path else key
        if key not in json_types:
            errors.append(f"{where}: not a field of {model}")
        else:
            errors.extend(type_errors(value, json_types[key], where))
    return errors


def type_errors(value: Any, kind: str, where: str) -> list[str]:
    list_of = re.fullmatch(r"list\[(.+)\]", kind)
    dict_of = re.fullmatch(r"dict\((\w+), (.+)\)", kind)
    if list_of:
        if not isinstance(value, list):
            return [f"{where}: expected {kind}, got {type(value).__name__}"]
        return [e for i, item in enumerate(value) for e in type_errors(item, list_of[1], f"{where}[{i}]")]
    if dict_of:
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            return [f"{where}: expected {kind} with string keys, got {value!r}"]
        return [e for k, item in value.items() for e in type_errors(item, dict_of[2], f"{where}.{k}")]
    if kind == "str":
        ok = isinstance(value, str)
    elif kind in ("int", "long"):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind == "float":
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    elif kind == "bool":
        ok = isinstance(value, bool)
    elif kind == "datetime":
        ok = _is_iso_with_offset(value)
    elif kind == "date":
        ok = isinstance(value, str) and _parses(date.fromisoformat, value)
    elif kind == "object":
        ok = _parses(json.dumps, value)
    else:
        return model_errors(value, kind, where)
    return [] if ok else [f"{where}: expected {kind}, got {value!r}"]


def _parses(parse: Any, value: Any) -> bool:
    try:
        parse(value)
    except (TypeError, ValueError):
        return False
    return True


def _is_iso_with_offset(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        return datetime.fromisoformat(value).utcoffset() is not None
    except ValueError:
        return False


# --- the rules CONTRACTS.md states and the SDK does not check ----------------------------------------

def workitem_rule_errors(body: dict[str, Any]) -> list[str]:
    errors = []
    if not NAME_MIN <= len(body.get("name") or "") <= NAME_MAX:
        errors.append(f"name must be {NAME_MIN}-{NAME_MAX} characters: {body.get('name')!r}")
    if not body.get("typeId"):
        errors.append("typeId is required")
    if len(body.get("description") or "") > DESCRIPTION_MAX:
        errors.append(f"description is over {DESCRIPTION_MAX} characters")
    errors.extend(attribute_errors(body.get("customFields") or {}, "customFields"))
    return errors


def callback_rule_errors(body: dict[str, Any]) -> list[str]:
    errors = []
    numbers = body.get("callbackNumbers")
    if not numbers or not all(isinstance(n, str) and n for n in numbers):
        errors.append(f"callbackNumbers must be a non-empty list of numbers: {numbers!r}")
    if not body.get("queueId") and not body.get("routingData"):
        errors.append("queueId (or routingData) is required")
    errors.extend(attribute_errors(body.get("data") or {}, "data"))
    return errors


def attribute_errors(attributes: dict[str, Any], field: str) -> list[str]:
    return [f"{field}.{k}: must be a string of at most {LIMIT} characters, got {v!r}"
            for k, v in attributes.items() if not isinstance(v, str) or len(v) > LIMIT]


# --- building bodies the way tasks/actions.py does, from config/targets.yaml -------------------------

def canonical(payload: dict[str, Any], source: str) -> dict[str, Any]:
    envelope = {"event_id": "e1", "source": source, "received_at": 1715783520.0, "payload": payload}
    return route(enrich(normalize(envelope, CTX), CTX), CTX)


def sample_payload(sample: str) -> dict[str, Any]:
    return json.loads((SAMPLES / sample).read_text())


def build_workitem(alert: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """The work item of the alert's first route: a ZTP work item, or the IoT call's follow-up work item."""
    first = alert["routes"][0]
    target = first["target"]
    cfg = CONFIG.targets[target]
    if cfg["kind"] == "call":
        queue, skills = cfg["call"]["outside_window_queue"], []
        # DND: a follow-up at the next allowed time (07:00 in Los Angeles now: 08:00 PDT)
        due = plan_call(CUSTOMERS["CUST-4410"], NOW, CONFIG.windows["dialing"]).next_allowed
        description = f"Call the customer back: do-not-disturb. Alert {alert['event_id']}."
    else:
        queue = first.get("queue") or cfg["workitem"]["default_queue"]
        skills = first.get("skills") or []
        due = due_after(NOW, cfg["workitem"]["due_minutes"].get(alert["severity"]))
        description = None
    wi = cfg["workitem"]
    return workitem_body(alert, target=target, type_id=wi["type_id"], queue_id=GENESYS["queues"][queue],
                         skill_ids=[GENESYS["skills"][s] for s in skills],
                         priority=wi["priority"].get(alert["severity"]), date_due=due, limit=LIMIT,
                         description=description)


def build_callback(alert: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    call = CONFIG.targets["iot_call"]["call"]
    customer = CUSTOMERS["CUST-9981"]
    return callback_body(alert, queue_id=GENESYS["queues"][call["queue"]], phone=customer["phone"],
                         customer_name=customer["name"], limit=LIMIT)


def all_strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (k, *all_strings(v))]
    if isinstance(value, list):
        return [s for v in value for s in all_strings(v)]
    return []


# --- tests -------------------------------------------------------------------------------------------

def test_the_checker_rejects_what_genesys_would_reject() -> None:
    """The checks above can fail: the seed's field names, wrong types, naive datetimes, missing ids."""
    seed_style = {"name": "ok name", "typeId": "t", "skills": [{"name": "ZTP-L1"}], "attributes": {}, "sla": 30,
                  "priority": "high", "dateDue": "2026-06-10T14:00:00", "skillIds": "9a8b", "customFields": []}
    errors = "\n".join(model_errors(seed_style, "WorkitemCreate"))
    for expected in ("skills: not a field", "attributes: not a field", "sla: not a field", "priority: expected int",
                     "dateDue: expected datetime", "skillIds: expected list[str]", "customFields: expected dict"):
        assert expected in errors
    assert model_errors({"priority": True}, "WorkitemCreate") == ["priority: expected int, got True"]
    nested = model_errors({"queueId": "q", "routingData": {"queueId": 7, "skillz": []}}, "CreateCallbackCommand")
    assert nested == ["routingData.queueId: expected str, got 7", "routingData.skillz: not a field of RoutingData"]
    assert model_errors({"data": {"k": 1}}, "CreateCallbackCommand") == ["data.k: expected str, got 1"]
    assert workitem_rule_errors({"name": "ab", "customFields": {"k": "x" * (LIMIT + 1)}}) != []
    assert len(callback_rule_errors({"callbackNumbers": [], "data": {"n": 5}})) == 3


@pytest.mark.parametrize("sample,source", GENESYS_SAMPLES)
def test_workitem_body_matches_the_sdk_model(sample: str, source: str) -> None:
    alert = canonical(sample_payload(sample), source)
    body, overflowed = build_workitem(alert)
    assert model_errors(body, "WorkitemCreate") == []
    assert workitem_rule_errors(body) == []
    assert not overflowed
    target = CONFIG.targets[alert["routes"][0]["target"]]
    assert body["typeId"] == target["workitem"]["type_id"]
    assert body["queueId"] in GENESYS["queues"].values()
    assert set(body.get("skillIds", [])) <= set(GENESYS["skills"].values())
    assert datetime.fromisoformat(body["dateDue"]) > NOW
    # Everything an agent needs travels when it fits: every attribute of the source, as text.
    for key, value in alert["attributes"].items():
        if value is not None:
            assert key in body["customFields"], key
    assert body["customFields"]["event_id"] == alert["event_id"]


def test_ztp_workitem_maps_the_seed_skills_and_sla_onto_real_fields() -> None:
    alert = canonical(sample_payload("ztp-validation-failed.json"), "ztp")
    body, _ = build_workitem(alert)
    assert body["skillIds"] == [GENESYS["skills"]["ZTP-L1"], GENESYS["skills"]["Firmware-Rollback"]]
    assert body["queueId"] == GENESYS["queues"]["QUEUE_ZTP_L2_FIRMWARE"]
    assert body["priority"] == 75  # severity high
    assert datetime.fromisoformat(body["dateDue"]) == datetime(2026, 6, 10, 16, 0, tzinfo=UTC)  # high: 120 min
    assert body["customFields"]["error_code"] == "CERT_MISMATCH_404"
    assert body["customFields"]["requires_callback"] == "true"


@pytest.mark.parametrize("sample,source", GENESYS_SAMPLES)
def test_callback_body_matches_the_sdk_model(sample: str, source: str) -> None:
    alert = canonical(sample_payload(sample), source)
    body, overflowed = build_callback(alert)
    assert model_errors(body, "CreateCallbackCommand") == []
    assert callback_rule_errors(body) == []
    assert not overflowed
    assert body["callbackNumbers"] == [CUSTOMERS["CUST-9981"]["phone"]]
    assert body["queueId"] == GENESYS["queues"]["QUEUE_IOT_PROACTIVE"]
    assert body["data"]["event_id"] == alert["event_id"] and body["data"]["summary"]


def test_iot_callback_carries_the_reading_as_text() -> None:
    body, _ = build_callback(canonical(sample_payload("iot-temp-critical.json"), "iot"))
    assert body["data"]["current_value"] == "89.5" and body["data"]["threshold_value"] == "85.0"
    assert body["data"]["customer_id"] == "CUST-9981" and body["data"]["unit"] == "celsius"
    assert body["callbackUserName"] == "Acme Cold Storage"


LONG = "OVERSIZED-ERROR-" + "".join(f"{i:04d}" for i in range(246))


@pytest.mark.parametrize("builder,model,field", [(build_workitem, "WorkitemCreate", "customFields"),
                                                 (build_callback, "CreateCallbackCommand", "data")])
@pytest.mark.parametrize("sample", sorted(p.name for p in SAMPLES.glob("ztp-*.json")))
def test_oversized_attribute_travels_by_reference_never_truncated(builder: Any, model: str, field: str,
                                                                  sample: str) -> None:
    assert len(LONG) == 1000
    payload = sample_payload(sample)
    payload["error_code"] = LONG
    alert = canonical(payload, "ztp")
    body, overflowed = builder(alert)
    assert overflowed is True
    assert model_errors(body, model) == []
    assert (workitem_rule_errors if field == "customFields" else callback_rule_errors)(body) == []
    attributes = body[field]
    assert attributes["payload_ref"] == alert["payload_ref"]
    assert all(isinstance(v, str) and len(v) <= LIMIT for v in attributes.values())
    assert "error_code" not in attributes
    assert attributes["event_id"] == alert["event_id"] and attributes["alert_key"] == alert["alert_key"]
    # No prefix of the long value anywhere in the body (a 16-character prefix would already give it away).
    for text in all_strings(body):
        assert LONG[:16] not in text, text
    # The alert itself is untouched: the caller stores all of it under payload_ref.
    assert alert["attributes"]["error_code"] == LONG


def test_value_exactly_at_the_limit_still_fits() -> None:
    payload = sample_payload("ztp-firmware-rollback.json")
    payload["error_code"] = "E" * LIMIT
    body, overflowed = build_workitem(canonical(payload, "ztp"))
    assert not overflowed and body["customFields"]["error_code"] == "E" * LIMIT
    payload["error_code"] = "E" * (LIMIT + 1)
    body, overflowed = build_workitem(canonical(payload, "ztp"))
    assert overflowed and "error_code" not in body["customFields"]


def test_long_device_model_keeps_workitem_within_name_and_description_limits() -> None:
    payload = sample_payload("ztp-validation-failed.json")
    payload["device_model"] = "M" * 2000
    alert = canonical(payload, "ztp")
    body, overflowed = build_workitem(alert)
    assert overflowed
    assert model_errors(body, "WorkitemCreate") == [] and workitem_rule_errors(body) == []
    callback, overflowed = build_callback(alert)
    assert overflowed
    assert model_errors(callback, "CreateCallbackCommand") == [] and callback_rule_errors(callback) == []


# --- PagerDuty: tests/test_units.py validates triggers of most samples; here the resolve/acknowledge shape

PD = jsonschema.Draft202012Validator(PD_SCHEMA)


@pytest.mark.parametrize("sample,source", ALL_SAMPLES)
def test_pagerduty_trigger_and_resolve_pair(sample: str, source: str) -> None:
    alert = canonical(sample_payload(sample), source)
    trigger = pagerduty_event(alert, "rk-trigger")
    PD.validate(trigger)
    assert trigger["event_action"] == "trigger"
    # The schema's "date-time" format is not checked without extra packages: check it here.
    assert _is_iso_with_offset(trigger["payload"]["timestamp"]), trigger["payload"]["timestamp"]
    assert len(json.dumps(trigger).encode()) <= 512 * 1024

    resolved = copy.deepcopy(alert)
    resolved["status"] = "resolved"
    resolve = pagerduty_event(resolved, "rk-trigger")
    PD.validate(resolve)
    # acknowledge/resolve carry only these three, with the trigger's routing key and dedup key.
    assert resolve == {"routing_key": "rk-trigger", "event_action": "resolve", "dedup_key": trigger["dedup_key"]}


def test_pagerduty_acknowledge_shape_and_schema() -> None:
    """No builder sends acknowledge yet; the schema accepts the resolve shape with acknowledge, and needs
    the dedup_key for it, as the sandbox will."""
    resolve = pagerduty_event(canonical(sample_payload("genesys-trunk-up.json"), "genesys"), "rk")
    PD.validate({**resolve, "event_action": "acknowledge"})
    with pytest.raises(jsonschema.ValidationError, match="dedup_key"):
        PD.validate({"routing_key": "rk", "event_action": "acknowledge"})


def test_pagerduty_trigger_with_oversized_fields_still_matches_the_schema() -> None:
    payload = sample_payload("ztp-validation-failed.json")
    payload["device_model"] = "M" * 2000
    payload["error_code"] = LONG
    event = pagerduty_event(canonical(payload, "ztp"), "rk")
    PD.validate(event)
    assert len(event["payload"]["summary"]) == 1024
