"""Pure logic without broker, network or clock: attribute fitting, dial templates, resolution bodies,
dead-letter redaction, retry backoff."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from typing import Any

import pytest

from switchboard.config import ConfigError, load_config
from switchboard.payloads.context_limits import as_text, fit_attributes
from switchboard.payloads.cxone import dial_body, render
from switchboard.payloads.orchestrator import FIELDS, resolution_body
from tasks.dispatch import backoff_s, mask_phone, redact
from tests.helpers import ROOT

CALL = load_config(ROOT / "config").targets["iot_call"]["call"]
PHONE = json.loads((ROOT / "samples" / "crm-customers.json").read_text())["CUST-9981"]["phone"]


# --- fitting attributes into Genesys' 255-character limit --------------------------------------------

def test_fit_attributes_renders_everything_as_text_when_it_fits() -> None:
    full = {"event_id": "e1", "n": 5, "f": 89.5, "yes": True, "no": False, "none": None,
            "nested": {"b": [1, 2], "a": "x"}, "exact": "x" * 255}
    fitted, overflowed = fit_attributes(full, ("event_id",), 255, "ref-1")
    assert overflowed is False
    assert fitted == {"event_id": "e1", "n": "5", "f": "89.5", "yes": "true", "no": "false", "none": "",
                      "nested": '{"a": "x", "b": [1, 2]}', "exact": "x" * 255}
    assert "payload_ref" not in fitted


def test_fit_attributes_overflow_keeps_summary_keys_and_adds_the_ref() -> None:
    full = {"event_id": "e1", "severity": 3, "status": "s" * 256, "detail": "d" * 256, "other": "o"}
    original = dict(full)
    fitted, overflowed = fit_attributes(full, ("event_id", "severity", "status", "absent"), 255, "ref-1")
    assert overflowed is True
    assert fitted["payload_ref"] == "ref-1"
    assert {k: fitted[k] for k in ("event_id", "severity")} == {"event_id": "e1", "severity": "3"}
    # A summary key that is itself too long is left out, not cut; non-summary keys are left out.
    assert not {"status", "detail", "other", "absent"} & set(fitted)
    assert all(len(v) <= 255 for v in fitted.values())
    assert full == original


def test_fit_attributes_overflow_from_a_rendered_value() -> None:
    fitted, overflowed = fit_attributes({"event_id": "e", "big": list(range(100))}, ("event_id",), 255, "r")
    assert overflowed and fitted["event_id"] == "e" and "big" not in fitted
    assert as_text(list(range(3))) == "[0, 1, 2]"


# --- CXone dial templates ----------------------------------------------------------------------------

ALERT = {"event_id": "evt-1", "alert_key": "ak-1", "severity": "critical"}


def test_default_dial_template_keeps_placeholder_types() -> None:
    body = dial_body(CALL["dial_body"], phone=PHONE, skill=CALL["cxone_skill"], alert=ALERT)
    assert body == {"skill": 4242, "phoneNumber": PHONE, "callDelay": 0}
    assert isinstance(body["skill"], int) and not isinstance(body["skill"], bool)


def test_render_formats_mixed_strings_and_recurses() -> None:
    template = {"note": "alert {event_id} ({severity})", "tags": ["{alert_key}", "skill-{skill}", 7, None],
                "nested": {"skill": "{skill}", "literal": "{{not a placeholder}}"}, "flag": True}
    body = dial_body(template, phone=PHONE, skill=4242, alert=ALERT)
    assert body == {"note": "alert evt-1 (critical)", "tags": ["ak-1", "skill-4242", 7, None],
                    "nested": {"skill": 4242, "literal": "{not a placeholder}"}, "flag": True}
    assert render("{skill}", {"skill": None}) is None
    assert render({"n": "{x}"}, {"x": [1, 2]}) == {"n": [1, 2]}


def test_dial_template_with_an_unknown_placeholder_is_a_config_error(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "config", tmp_path / "config")
    targets = tmp_path / "config" / "targets.yaml"
    text = targets.read_text()
    assert "      cxone_skill: 4242\n" in text
    targets.write_text(text.replace("      cxone_skill: 4242\n",
                                    '      cxone_skill: 4242\n      dial_body: {phoneNumber: "{phon}"}\n', 1))
    with pytest.raises(ConfigError, match="dial_body"):
        load_config(tmp_path / "config")


# --- orchestrator resolution -------------------------------------------------------------------------

RESOLUTION = {"ztp_event_id": "evt_1", "resolution_status": "RESOLVED", "resolution_code": "FW_REFLASHED",
              "agent_id": "agent-7", "resolved_at": "2026-06-10T14:00:00Z", "device_mac": "00:1A:2B:3C:4D:5E",
              "orchestrator_action": "RETRY_PROVISIONING"}


def test_resolution_body_has_exactly_the_contract_fields() -> None:
    body = resolution_body({"attributes": {**RESOLUTION, "extra": "dropped"}})
    assert body == RESOLUTION and tuple(body) == FIELDS
    without_agent = {k: v for k, v in RESOLUTION.items() if k != "agent_id"}
    assert resolution_body({"attributes": without_agent})["agent_id"] is None


@pytest.mark.parametrize("field", [f for f in FIELDS if f != "agent_id"])
def test_resolution_body_names_the_missing_field(field: str) -> None:
    attrs = {k: v for k, v in RESOLUTION.items() if k != field}
    with pytest.raises(ValueError, match=field):
        resolution_body({"attributes": attrs})
    with pytest.raises(ValueError, match=field):
        resolution_body({"attributes": {**RESOLUTION, field: ""}})


def test_resolution_body_names_every_missing_field() -> None:
    with pytest.raises(ValueError) as exc:
        resolution_body({"attributes": None})
    for field in FIELDS:
        assert (field in str(exc.value)) is (field != "agent_id")


# --- dead-letter redaction ---------------------------------------------------------------------------

def no_phone_left(value: Any, phone: str = PHONE) -> bool:
    text = json.dumps(value)
    return phone not in text and phone.lstrip("+") not in text and phone[-10:] not in text


def test_mask_phone_keeps_the_shape() -> None:
    assert mask_phone("+15551234567") == "+1********67"
    assert len(mask_phone(PHONE)) == len(PHONE)
    assert mask_phone("+442071234567")[:2] == "+4" and mask_phone("+442071234567")[-2:] == "67"
    for short in ("", "1", "1234"):
        assert mask_phone(short) == "***"


def test_redact_pagerduty_routing_key() -> None:
    request = {"routing_key": "R0UT1NGKEY", "event_action": "trigger", "dedup_key": "k", "payload": {"a": 1}}
    out = redact(request)
    assert out == {**request, "routing_key": "***"}
    assert request["routing_key"] == "R0UT1NGKEY"  # the original request is not changed
    assert "R0UT1NGKEY" not in json.dumps(out)


def test_redact_genesys_callback_numbers() -> None:
    other = "+14155550123"
    request = {"callbackNumbers": [PHONE, other], "queueId": "q", "data": {"event_id": "e"}}
    out = redact(request)
    assert out["callbackNumbers"] == [mask_phone(PHONE), mask_phone(other)]
    assert {k: v for k, v in out.items() if k != "callbackNumbers"} == {"queueId": "q", "data": {"event_id": "e"}}
    assert no_phone_left(out) and no_phone_left(out, other)
    assert request["callbackNumbers"] == [PHONE, other]


def test_redact_cxone_dial_and_twilio_sms() -> None:
    dial = dial_body(CALL["dial_body"], phone=PHONE, skill=4242, alert=ALERT)
    out = redact(dial)
    assert out == {"skill": 4242, "phoneNumber": mask_phone(PHONE), "callDelay": 0}
    assert no_phone_left(out)
    sms = {"To": PHONE, "From": "+15550000000", "Body": "switchboard: dead letter"}
    out = redact(sms)
    assert out["To"] == mask_phone(PHONE) and out["Body"] == sms["Body"] and no_phone_left(out)
    assert redact({"callerId": PHONE})["callerId"] == mask_phone(PHONE)


@pytest.mark.parametrize("template", [{"skill": "{skill}", "destination": "{phone}"},
                                      {"skill": "{skill}", "contact": {"phoneNumber": "{phone}"}}])
def test_redact_masks_the_phone_of_any_configured_dial_template(template: dict[str, Any]) -> None:
    assert no_phone_left(redact(dial_body(template, phone=PHONE, skill=4242, alert=ALERT)))


# --- retry backoff -----------------------------------------------------------------------------------

@pytest.mark.parametrize("base,cap", [(1.0, 60.0), (1.0, 30.0), (0.5, 10.0), (2.0, 1.0)])
def test_backoff_is_full_jitter_within_the_capped_exponential(base: float, cap: float) -> None:
    for attempt in range(15):
        upper = min(cap, base * 2 ** attempt)
        draws = [backoff_s(attempt, base, cap) for _ in range(400)]
        assert all(0 <= d <= upper for d in draws), (attempt, upper, min(draws), max(draws))
        # Full jitter spreads over the whole range (chance of failing by luck: 0.9**400 per side).
        assert min(draws) < 0.1 * upper and max(draws) > 0.9 * upper


def test_backoff_bounds_are_exact(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    monkeypatch.setattr(random, "uniform", lambda lo, hi: calls.append((lo, hi)) or hi)
    assert [backoff_s(a, 1.0, 60.0) for a in range(8)] == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]
    assert calls[0] == (0, 1.0)
    assert backoff_s(50, 1.0, 60.0) == 60.0  # the largest configurable max_attempts does not overflow
