"""Pure logic without broker, network or clock: dialing windows, attribute fitting, dial templates,
resolution bodies, dead-letter redaction, retry backoff."""

from __future__ import annotations

import json
import random
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from switchboard.config import ConfigError, load_config
from switchboard.dialing import WEEKDAYS, next_opening, plan_call
from switchboard.payloads.context_limits import as_text, fit_attributes
from switchboard.payloads.cxone import dial_body, render
from switchboard.payloads.orchestrator import FIELDS, resolution_body
from tasks.dispatch import backoff_s, mask_phone, redact
from tests.helpers import ROOT

CONFIG = load_config(ROOT / "config")
CALL = CONFIG.targets["iot_call"]["call"]
WINDOW = CALL["window"]  # 08:00-20:00 every day; follow-ups on business days (mon-fri)
EVERY_DAY = {**WINDOW, "business_days": list(WEEKDAYS)}
CUSTOMERS = json.loads((ROOT / "samples" / "crm-customers.json").read_text())
NY_CUSTOMER = CUSTOMERS["CUST-9981"]        # America/New_York
DND_CUSTOMER = CUSTOMERS["CUST-4410"]       # America/Los_Angeles, do-not-disturb
LONDON_CUSTOMER = CUSTOMERS["CUST-7302"]    # Europe/London
NY = ZoneInfo("America/New_York")
PHONE = NY_CUSTOMER["phone"]


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def ny(*args: int, fold: int = 0) -> datetime:
    return datetime(*args, tzinfo=NY, fold=fold)


# --- dialing window ----------------------------------------------------------------------------------

def test_window_is_what_config_says() -> None:
    assert (WINDOW["start"], WINDOW["end"]) == ("08:00", "20:00")
    assert WINDOW["business_days"] == ["mon", "tue", "wed", "thu", "fri"]


@pytest.mark.parametrize("now,call,opening", [
    (utc(2026, 6, 10, 14, 0), True, utc(2026, 6, 11, 12, 0)),    # Wed 10:00 EDT: call; next opening Thu 08:00
    (utc(2026, 6, 10, 12, 0), True, utc(2026, 6, 11, 12, 0)),    # 08:00 exactly: the start is inside
    (utc(2026, 6, 10, 23, 59), True, utc(2026, 6, 11, 12, 0)),   # 19:59
    (utc(2026, 6, 10, 11, 59), False, utc(2026, 6, 10, 12, 0)),  # 07:59: opening is today 08:00 EDT
    (utc(2026, 6, 11, 0, 0), False, utc(2026, 6, 11, 12, 0)),    # Wed 20:00: the end is outside
    (utc(2026, 6, 11, 3, 0), False, utc(2026, 6, 11, 12, 0)),    # Wed 23:00 local, already Thu in UTC
    (utc(2026, 6, 13, 1, 0), False, utc(2026, 6, 15, 12, 0)),    # Fri 21:00 EDT -> Mon 08:00 EDT
    (utc(2026, 6, 13, 14, 0), True, utc(2026, 6, 15, 12, 0)),    # Sat 10:00: calls every day, follow-ups Mon
])
def test_plan_call_new_york(now: datetime, call: bool, opening: datetime) -> None:
    plan = plan_call(NY_CUSTOMER, now, WINDOW)
    assert plan.call is call, plan.reason
    assert plan.next_opening == opening
    assert plan.next_opening.utcoffset() == timedelta(0)
    assert ("inside" if call else "outside") in plan.reason


def test_friday_night_in_new_york_opens_monday_morning_in_new_york() -> None:
    opening = next_opening(ny(2026, 6, 12, 21, 0), WINDOW)
    assert opening == ny(2026, 6, 15, 8, 0) == utc(2026, 6, 15, 12, 0)
    assert opening.astimezone(NY).strftime("%a %H:%M") == "Mon 08:00"


def test_same_instant_is_inside_in_london_and_outside_in_new_york() -> None:
    now = utc(2026, 6, 10, 7, 30)  # 08:30 BST, 03:30 EDT
    assert plan_call(LONDON_CUSTOMER, now, WINDOW).call is True
    new_york = plan_call(NY_CUSTOMER, now, WINDOW)
    assert new_york.call is False and new_york.next_opening == utc(2026, 6, 10, 12, 0)


def test_do_not_disturb_never_calls_even_inside_the_window() -> None:
    now = utc(2026, 6, 10, 18, 0)  # Wed 11:00 PDT
    plan = plan_call(DND_CUSTOMER, now, WINDOW)
    assert plan.call is False and "do-not-disturb" in plan.reason
    assert plan.next_opening == utc(2026, 6, 11, 15, 0)  # Thu 08:00 PDT
    assert plan_call({**DND_CUSTOMER, "doNotDisturb": False}, now, WINDOW).call is True


@pytest.mark.parametrize("timezone", ["Mars/Olympus_Mons", "", None, "America/New_York ", "../../etc/passwd"])
def test_unknown_time_zone_does_not_call(timezone: str | None) -> None:
    now = utc(2026, 6, 10, 14, 0)
    plan = plan_call({**NY_CUSTOMER, "timezone": timezone}, now, WINDOW)
    assert plan.call is False and "unknown time zone" in plan.reason
    assert plan.next_opening == utc(2026, 6, 11, 8, 0)  # without a zone: the window in UTC


@pytest.mark.parametrize("timezone", [123, {"id": "America/New_York"}])
def test_non_string_time_zone_from_the_crm_does_not_call(timezone: Any) -> None:
    plan = plan_call({**NY_CUSTOMER, "timezone": timezone}, utc(2026, 6, 10, 14, 0), WINDOW)
    assert plan.call is False and plan.next_opening == utc(2026, 6, 11, 8, 0)


def test_missing_customer_or_phone_does_not_call() -> None:
    now = utc(2026, 6, 10, 14, 0)
    missing = plan_call(None, now, WINDOW)
    assert missing.call is False and "not found" in missing.reason
    assert missing.next_opening == utc(2026, 6, 11, 8, 0)
    for phone in (None, ""):
        plan = plan_call({**NY_CUSTOMER, "phone": phone}, now, WINDOW)
        assert plan.call is False and "no phone" in plan.reason
        assert plan.next_opening == utc(2026, 6, 11, 12, 0)


def test_plan_call_accepts_any_aware_now() -> None:
    assert plan_call(NY_CUSTOMER, ny(2026, 6, 10, 10, 0), WINDOW) == plan_call(NY_CUSTOMER, utc(2026, 6, 10, 14, 0),
                                                                                  WINDOW)


def test_dst_spring_forward_new_york() -> None:
    # 2026-03-08 (Sunday) 02:00 EST -> 03:00 EDT. 12:30 UTC is 07:30 the day before, 08:30 that day.
    assert plan_call(NY_CUSTOMER, utc(2026, 3, 7, 12, 30), WINDOW).call is False
    assert plan_call(NY_CUSTOMER, utc(2026, 3, 8, 12, 30), WINDOW).call is True
    # The opening after the change is 08:00 EDT = 12:00 UTC, not 13:00 (the EST offset of the night before).
    assert next_opening(ny(2026, 3, 8, 1, 0), EVERY_DAY) == utc(2026, 3, 8, 12, 0)
    assert next_opening(ny(2026, 3, 7, 21, 0), EVERY_DAY) == utc(2026, 3, 8, 12, 0)
    assert next_opening(ny(2026, 3, 7, 7, 0), EVERY_DAY) == utc(2026, 3, 7, 13, 0)
    # Saturday night with business days only: Monday 08:00 EDT.
    assert plan_call(NY_CUSTOMER, utc(2026, 3, 8, 2, 0), WINDOW).next_opening == utc(2026, 3, 9, 12, 0)


def test_dst_fall_back_new_york() -> None:
    # 2026-11-01 (Sunday) 02:00 EDT -> 01:00 EST; 01:30 happens twice.
    first, second = ny(2026, 11, 1, 1, 30, fold=0), ny(2026, 11, 1, 1, 30, fold=1)
    assert (first.astimezone(UTC), second.astimezone(UTC)) == (utc(2026, 11, 1, 5, 30), utc(2026, 11, 1, 6, 30))
    for local in (first, second):
        assert next_opening(local, EVERY_DAY) == utc(2026, 11, 1, 13, 0)  # 08:00 EST
    for moment in (utc(2026, 11, 1, 5, 30), utc(2026, 11, 1, 6, 30)):
        plan = plan_call(NY_CUSTOMER, moment, EVERY_DAY)
        assert plan.call is False and plan.next_opening == utc(2026, 11, 1, 13, 0)
    assert plan_call(NY_CUSTOMER, utc(2026, 10, 31, 12, 30), WINDOW).call is True   # 08:30 EDT
    assert plan_call(NY_CUSTOMER, utc(2026, 11, 1, 12, 30), WINDOW).call is False   # 07:30 EST
    assert plan_call(NY_CUSTOMER, utc(2026, 11, 1, 13, 0), WINDOW).call is True     # 08:00 EST
    assert plan_call(NY_CUSTOMER, utc(2026, 11, 2, 0, 30), WINDOW).call is True     # Sun 19:30 EST
    assert plan_call(NY_CUSTOMER, utc(2026, 11, 2, 1, 0), WINDOW).call is False     # Sun 20:00 EST


def test_days_outside_the_calling_days_do_not_call() -> None:
    weekdays_only = {**WINDOW, "days": ["mon", "tue", "wed", "thu", "fri"]}
    plan = plan_call(NY_CUSTOMER, utc(2026, 6, 13, 14, 0), weekdays_only)  # Sat 10:00 EDT
    assert plan.call is False and plan.next_opening == utc(2026, 6, 15, 12, 0)


def test_window_without_business_days_is_an_error() -> None:
    with pytest.raises(ValueError, match="business day"):
        next_opening(ny(2026, 6, 10, 9, 0), {**WINDOW, "business_days": []})


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
