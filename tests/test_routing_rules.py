"""Routing rules, pure: the seed rules of config/routing.yaml, the samples' expected queues and skills,
the match fields (state, attributes, error-code regexes), route options, and config errors that name
file, key and reason. Also the overflow decision (switchboard.overflow)."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest

from switchboard.config import ConfigError, load_config
from switchboard.overflow import choose_queue, occupancy, workitem_priority
from switchboard.payloads.chat import chat_text
from switchboard.payloads.pagerduty import pagerduty_event
from switchboard.stages import Outcome, StageContext
from switchboard.stages.normalize import normalize
from switchboard.stages.route import route, rule_matches
from tests.helpers import ROOT

CONFIG = load_config(ROOT / "config")
CTX = StageContext(config=CONFIG)
OVERFLOW = {"queue": "QUEUE_ZTP_OVERFLOW", "when_occupancy_above": 0.85, "priority_delta": 1}


def ztp(status: str = "VALIDATION_FAILED", code: str | None = None, callback: bool = False) -> dict:
    """A normalized ZTP alert, through the real normalizer (so `state` is what the normalizer keeps)."""
    payload = {"ztp_event_id": "evt_1", "device_mac": "00:1A:2B:3C:4D:5E", "device_model": "C9300",
               "provisioning_status": status, "error_code": code, "site_id": "SITE_1",
               "orchestrator_timestamp": "2024-06-15T14:32:11Z", "requires_callback": callback}
    return normalize({"event_id": "e1", "source": "ztp", "received_at": 1718461931.0, "payload": payload}, CTX)


def routed(alert: dict) -> dict:
    result = route(alert, CTX)
    assert not isinstance(result, Outcome), result
    [one] = result["routes"]
    return one


@pytest.mark.parametrize("code", ["FW_ROLLBACK_REQUIRED", "FW_ROLLBACK_FAILED", "IMG_CORRUPT_SHA256",
                                  "IMG_CORRUPT_"])
def test_validation_failed_with_a_firmware_code_goes_to_l2_firmware_with_firmware_rollback(code: str) -> None:
    r = routed(ztp("VALIDATION_FAILED", code))
    assert (r["rule"], r["queue"], r["skills"]) == ("ztp-firmware", "QUEUE_ZTP_L2_FIRMWARE", ["Firmware-Rollback"])
    assert "overflow" not in r


def test_validation_failed_with_a_certificate_code_also_needs_ztp_l1() -> None:
    r = routed(ztp("VALIDATION_FAILED", "CERT_EXPIRED"))
    assert (r["rule"], r["queue"], r["skills"]) == ("ztp-certificate", "QUEUE_ZTP_L2_FIRMWARE",
                                                    ["ZTP-L1", "Firmware-Rollback"])


@pytest.mark.parametrize("status, code", [
    ("FAILED", "FW_ROLLBACK_REQUIRED"),         # a firmware code, but not a validation failure
    ("VALIDATION_FAILED", "FW_DOWNLOAD_TIMEOUT"),  # FW_ but not FW_ROLLBACK_
    ("VALIDATION_FAILED", "XCERT_1"),            # anchored: CERT_ must start the code
    ("VALIDATION_FAILED", None),
    ("TIMEOUT", None),
    ("SUCCESS", None),                           # success without a callback request
])
def test_every_other_ztp_event_goes_to_the_primary_queue_with_overflow(status: str, code: str | None) -> None:
    r = routed(ztp(status, code))
    assert (r["rule"], r["queue"], r["skills"]) == ("ztp-default", "QUEUE_ZTP_PRIMARY", ["ZTP-L1"])
    assert r["overflow"] == OVERFLOW


def test_success_with_requires_callback_goes_to_l1_verification() -> None:
    r = routed(ztp("SUCCESS", None, callback=True))
    assert (r["rule"], r["queue"], r["priority"]) == ("ztp-verification", "QUEUE_ZTP_L1_VERIFICATION", "bulk")
    assert "skills" not in r and "overflow" not in r


@pytest.mark.parametrize("sample, rule, queue, skills", [
    ("ztp-validation-failed.json", "ztp-certificate", "QUEUE_ZTP_L2_FIRMWARE", ["ZTP-L1", "Firmware-Rollback"]),
    ("ztp-firmware-rollback.json", "ztp-firmware", "QUEUE_ZTP_L2_FIRMWARE", ["Firmware-Rollback"]),
    ("ztp-success-callback.json", "ztp-verification", "QUEUE_ZTP_L1_VERIFICATION", []),
])
def test_the_samples_reach_the_queues_their_readme_names(sample: str, rule: str, queue: str, skills: list) -> None:
    for folder in (ROOT / "samples", ROOT.parent / "shared" / "samples"):
        if not (folder / sample).exists():
            continue
        envelope = {"event_id": "e1", "source": "ztp", "received_at": 1718461931.0,
                    "payload": json.loads((folder / sample).read_text())}
        r = routed(normalize(envelope, CTX))
        assert (r["rule"], r["queue"], r.get("skills", [])) == (rule, queue, skills)


def test_state_attributes_and_regex_conditions() -> None:
    alert = ztp("SUCCESS", "E_1", callback=True)
    assert rule_matches({"state": ["SUCCESS"], "attributes": {"requires_callback": True}}, alert)
    assert not rule_matches({"state": ["VALIDATION_FAILED"]}, alert)
    assert not rule_matches({"attributes": {"requires_callback": False}}, alert)
    assert not rule_matches({"attributes": {"site_id": "SITE_2"}}, alert)
    assert rule_matches({"attributes": {"site_id": "SITE_1", "device_model": "C9300"}}, alert)
    assert not rule_matches({"attributes": {"missing": "x"}}, alert)
    assert rule_matches({"attributes": {"missing": None}}, alert)  # an absent attribute equals null
    one = {**alert, "attributes": {**alert["attributes"], "requires_callback": 1}}
    assert not rule_matches({"attributes": {"requires_callback": True}}, one)  # true is not 1
    assert rule_matches({"error_code_regex": "^E_"}, alert) and not rule_matches({"error_code_regex": "^X"}, alert)
    # a `state` field, when an alert carries one, wins over current_value
    assert rule_matches({"state": ["DOWN"]}, {**alert, "state": "DOWN"})
    trunk = {"kind": "health", "current_value": "DOWN", "attributes": {}}
    assert rule_matches({"state": ["DOWN"]}, trunk) and not rule_matches({"error_code_regex": "."}, trunk)


def _broken(tmp_path: Path, old: str, new: str) -> str:
    shutil.copytree(ROOT / "config", tmp_path / "config")
    routing = tmp_path / "config" / "routing.yaml"
    text = routing.read_text()
    assert old in text
    routing.write_text(text.replace(old, new, 1))
    with pytest.raises(ConfigError) as exc:
        load_config(tmp_path / "config")
    return str(exc.value)


def test_a_bad_regex_is_a_config_error_naming_file_key_and_reason(tmp_path: Path) -> None:
    text = _broken(tmp_path, 'error_code_regex: "^CERT_"', 'error_code_regex: "^(CERT_"')
    assert ("config/routing.yaml: rules.4.match.error_code_regex: not a valid regular expression: "
            "missing ), unterminated subpattern at position 1") in text


def test_attribute_conditions_must_be_scalars(tmp_path: Path) -> None:
    text = _broken(tmp_path, "attributes: {requires_callback: true}", "attributes: {requires_callback: [true]}")
    assert "config/routing.yaml: rules.6.match.attributes: values must be strings, numbers, booleans or null: " \
           "requires_callback" in text


@pytest.mark.parametrize("old, new, message", [
    ("QUEUE_ZTP_OVERFLOW, when", "QUEUE_NOPE, when",
     "routing.yaml: rules.7.targets.0.overflow.queue: unknown queue 'QUEUE_NOPE' (not in genesys.queues)"),
    ("QUEUE_ZTP_OVERFLOW, when", "QUEUE_ZTP_PRIMARY, when",
     "routing.yaml: rules.7.targets.0.overflow.queue: the same queue as the primary ('QUEUE_ZTP_PRIMARY')"),
    ("{target: pagerduty, priority: critical}]\n  - name: critical",
     "{target: pagerduty, priority: critical, overflow: {queue: QUEUE_ZTP_OVERFLOW}}]\n  - name: critical",
     "routing.yaml: rules.0.targets.0.overflow: only for genesys_workitem targets ('pagerduty' is pagerduty)"),
    ("{target: orchestrator, priority: default}", "{target: orchestrator, priority: default, escalation_minutes: 5}",
     "routing.yaml: rules.3.targets.0.escalation_minutes: means nothing for kind orchestrator_resolution"),
    ("{target: iot_call, priority: critical}", "{target: iot_call, priority: critical, priority_delta: 2}",
     "routing.yaml: rules.8.targets.0.priority_delta: only for genesys_workitem targets ('iot_call' is call)"),
    ("when_occupancy_above: 0.85", "when_occupancy_above: -1",
     "config/routing.yaml: rules.7.targets.0.overflow.when_occupancy_above: Must be greater than or equal to 0"),
])
def test_route_options_the_target_cannot_honour_are_config_errors(tmp_path: Path, old: str, new: str,
                                                                   message: str) -> None:
    assert message in _broken(tmp_path, old, new)


def test_route_options_travel_on_the_route(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "config", tmp_path / "config")
    routing = tmp_path / "config" / "routing.yaml"
    routing.write_text(routing.read_text().replace(
        "queue: QUEUE_ZTP_L1_VERIFICATION}",
        "queue: QUEUE_ZTP_L1_VERIFICATION, workitem_priority: 40, priority_delta: -5, escalation_minutes: 45}", 1))
    ctx = StageContext(config=load_config(tmp_path / "config"))
    [r] = route(ztp("SUCCESS", None, callback=True), ctx)["routes"]
    assert r == {"target": "genesys_workitem", "priority": "bulk", "rule": "ztp-verification",
                 "queue": "QUEUE_ZTP_L1_VERIFICATION", "workitem_priority": 40, "priority_delta": -5,
                 "escalation_minutes": 45}


def test_occupancy_is_load_over_on_queue_agents() -> None:
    assert occupancy({"oInteracting": 17, "oWaiting": 1, "oOnQueueUsers": 20}) == pytest.approx(0.9)
    assert occupancy({"oInteracting": 10, "oWaiting": 0, "oOnQueueUsers": 20}) == 0.5
    assert occupancy({"oInteracting": 20, "oWaiting": 10, "oOnQueueUsers": 20}) == 1.5  # work waits
    assert occupancy({"oWaiting": 3, "oOnQueueUsers": 0}) == math.inf  # nobody on queue to take it
    assert occupancy({}) == 0.0  # an empty, unstaffed queue says nothing about load


def test_the_overflow_decision() -> None:
    above = choose_queue("QUEUE_ZTP_PRIMARY", OVERFLOW, 0.9)
    assert (above.queue, above.priority_delta, above.decision) == ("QUEUE_ZTP_OVERFLOW", 1, "overflow")
    assert above.note == "overflow: QUEUE_ZTP_PRIMARY occupancy 0.90 > 0.85"
    at = choose_queue("QUEUE_ZTP_PRIMARY", OVERFLOW, 0.85)  # "exceeds 85%": exactly 85% stays
    assert (at.queue, at.priority_delta, at.decision) == ("QUEUE_ZTP_PRIMARY", 0, "primary")
    unstaffed = choose_queue("QUEUE_ZTP_PRIMARY", OVERFLOW, math.inf)
    assert unstaffed.queue == "QUEUE_ZTP_OVERFLOW" and "no agent on queue" in unstaffed.note
    unknown = choose_queue("QUEUE_ZTP_PRIMARY", OVERFLOW, None)
    assert (unknown.queue, unknown.priority_delta, unknown.decision) == ("QUEUE_ZTP_PRIMARY", 0, "unknown")
    plain = choose_queue("QUEUE_ZTP_L2_FIRMWARE", None, None)
    assert (plain.queue, plain.decision, plain.note) == ("QUEUE_ZTP_L2_FIRMWARE", "primary", "")
    assert workitem_priority(50, 0, 1) == 51 and workitem_priority(50, -5, 0) == 45
    assert workitem_priority(None, 0, 0) is None and workitem_priority(None, 0, 1) == 1


def test_escalation_minutes_in_pagerduty_custom_details_and_chat_text() -> None:
    alert = {**ztp("FAILED"), "routing_key_env": None, "links": [{"href": "https://x/1", "text": "runbook"}]}
    body = pagerduty_event(alert, "rk", escalation_minutes=15)
    assert body["payload"]["custom_details"]["escalation_minutes"] == 15
    assert "escalation_minutes" not in pagerduty_event(alert, "rk")["payload"]["custom_details"]
    text = chat_text(alert, "ztp-default", 15)
    assert text.startswith("[HIGH] C9300 00:1A:2B:3C:4D:5E: ztp_status FAILED. Source ztp, event e1, rule ztp-default.")
    assert "Escalate if not handled within 15 min." in text and "\nrunbook: https://x/1" in text
    resolved = chat_text({**alert, "status": "resolved"}, None, 15)
    assert resolved.startswith("RESOLVED ") and "Escalate" not in resolved
