"""The dialing policy (``switchboard/dialing.py``) on chosen instants: windows per zone, business unit,
state hours, Sundays and holidays, the federal bound, the daily cap, DST gaps and folds, candidate zones."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from switchboard.config import load_config
from switchboard.dialing import candidate_zones, phone_state, plan_call
from tests.helpers import ROOT

CONFIG = load_config(ROOT / "config")
POLICY = CONFIG.windows["dialing"]          # 08:00-20:00, federal bound 08:00-21:00, cap 3, FL/OK/MD/WA/AL/LA
CUSTOMERS = json.loads((ROOT / "samples" / "crm-customers.json").read_text())
NY_CUSTOMER = CUSTOMERS["CUST-9981"]        # America/New_York; +1 555 number: no zone or state from the phone
DND_CUSTOMER = CUSTOMERS["CUST-4410"]       # America/Los_Angeles, do-not-disturb
LONDON_CUSTOMER = CUSTOMERS["CUST-7302"]    # Europe/London
MIAMI = {"phone": "+13055551234"}           # Florida, America/New_York from the number
ALABAMA = {"phone": "+12055551234"}         # Alabama, America/Chicago from the number
NY = ZoneInfo("America/New_York")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def ny(*args: int, fold: int = 0) -> datetime:
    return datetime(*args, tzinfo=NY, fold=fold)


def with_unit(start: str, end: str, *, bound: tuple[str, str] = ("08:00", "21:00"), **changes: Any) -> dict[str, Any]:
    """The policy with a business unit "ops" whose window is start-end (and another federal bound)."""
    return {**POLICY, "business_units": {"ops": {"start": start, "end": end}},
            "federal_bound": {"start": bound[0], "end": bound[1]}, **changes}


# --- dialing policy ----------------------------------------------------------------------------------

def test_dialing_policy_is_what_config_says() -> None:
    assert POLICY["default_window"] == {"start": "08:00", "end": "20:00"}
    assert POLICY["federal_bound"] == {"start": "08:00", "end": "21:00"}
    assert POLICY["max_calls_per_24h"] == 3
    assert POLICY["states"]["FL"]["end"] == "20:00" and POLICY["states"]["FL"]["max_calls_per_24h"] == 3
    assert POLICY["states"]["AL"]["no_sundays"] and POLICY["states"]["AL"]["no_holidays"]


@pytest.mark.parametrize("now,call,allowed", [
    (utc(2026, 6, 10, 14, 0), True, utc(2026, 6, 10, 14, 0)),     # Wed 10:00 EDT: call now
    (utc(2026, 6, 10, 12, 0), True, utc(2026, 6, 10, 12, 0)),     # 08:00 exactly: the start is inside
    (utc(2026, 6, 10, 23, 59), True, utc(2026, 6, 10, 23, 59)),   # 19:59
    (utc(2026, 6, 10, 11, 59), False, utc(2026, 6, 10, 12, 0)),   # 07:59: allowed from today 08:00 EDT
    (utc(2026, 6, 11, 0, 0), False, utc(2026, 6, 11, 12, 0)),     # Wed 20:00: the end is outside
    (utc(2026, 6, 11, 3, 0), False, utc(2026, 6, 11, 12, 0)),     # Wed 23:00 local, already Thu in UTC
    (utc(2026, 6, 13, 1, 0), False, utc(2026, 6, 13, 12, 0)),     # Fri 21:00 EDT -> Sat 08:00 EDT
    (utc(2026, 6, 13, 14, 0), True, utc(2026, 6, 13, 14, 0)),     # Sat 10:00: calls every day
])
def test_plan_call_new_york(now: datetime, call: bool, allowed: datetime) -> None:
    plan = plan_call(NY_CUSTOMER, now, POLICY)
    assert plan.call is call, plan.reason
    assert plan.rule == ("allowed" if call else "window")
    assert plan.next_allowed == allowed
    assert plan.next_allowed.utcoffset() == timedelta(0)
    assert plan.zones == ("America/New_York",)
    assert ("inside" if call else "outside") in plan.reason and "America/New_York" in plan.reason


def test_outside_reason_names_the_zone_and_the_local_time() -> None:
    plan = plan_call(NY_CUSTOMER, utc(2026, 6, 15, 7, 0), POLICY)
    assert plan.reason == "outside the dialing window 08:00-20:00 in America/New_York (Mon 2026-06-15 03:00 local)"


def test_same_instant_is_inside_in_london_and_outside_in_new_york() -> None:
    now = utc(2026, 6, 10, 7, 30)  # 08:30 BST, 03:30 EDT
    assert plan_call(LONDON_CUSTOMER, now, POLICY).call is True
    new_york = plan_call(NY_CUSTOMER, now, POLICY)
    assert new_york.call is False and new_york.next_allowed == utc(2026, 6, 10, 12, 0)


def test_do_not_disturb_never_calls_even_inside_the_window() -> None:
    now = utc(2026, 6, 10, 18, 0)  # Wed 11:00 PDT
    plan = plan_call(DND_CUSTOMER, now, POLICY)
    assert plan.call is False and plan.rule == "dnd" and "do-not-disturb" in plan.reason
    assert plan.next_allowed == now  # the window is open: the follow-up is due at once
    assert plan.zones == ("America/Los_Angeles",)
    early = plan_call(DND_CUSTOMER, utc(2026, 6, 10, 13, 0), POLICY)  # 06:00 PDT
    assert early.rule == "dnd" and early.next_allowed == utc(2026, 6, 10, 15, 0)  # 08:00 PDT
    assert plan_call({**DND_CUSTOMER, "doNotDisturb": False}, now, POLICY).call is True


@pytest.mark.parametrize("timezone", ["Mars/Olympus_Mons", "", None, "America/New_York ", "../../etc/passwd",
                                      "America", 123, {"id": "America/New_York"}])
def test_unknown_time_zone_does_not_call(timezone: Any) -> None:
    # NY_CUSTOMER's number (+1 555) names no zone either: nothing is known.
    plan = plan_call({**NY_CUSTOMER, "timezone": timezone}, utc(2026, 6, 10, 21, 0), POLICY)
    assert plan.call is False and plan.rule == "unknown_zone" and "unknown time zone" in plan.reason
    assert plan.zones == ()
    assert plan.next_allowed == utc(2026, 6, 11, 8, 0)  # without a zone: the window in UTC
    inside_utc = plan_call({**NY_CUSTOMER, "timezone": timezone}, utc(2026, 6, 10, 14, 0), POLICY)
    assert inside_utc.call is False and inside_utc.next_allowed == utc(2026, 6, 10, 14, 0)


def test_an_unknown_crm_zone_is_dropped_when_the_phone_names_one() -> None:
    plan = plan_call({"phone": "+12125551234", "timezone": "Mars/Olympus_Mons"}, utc(2026, 6, 10, 14, 0), POLICY)
    assert plan.call is True and plan.zones == ("America/New_York",)


def test_missing_customer_or_phone_does_not_call() -> None:
    now = utc(2026, 6, 11, 3, 0)  # 23:00 EDT
    missing = plan_call(None, now, POLICY)
    assert missing.call is False and missing.rule == "no_customer" and "not found" in missing.reason
    assert missing.next_allowed == utc(2026, 6, 11, 8, 0) and missing.zones == ()
    for phone in (None, "", "   "):
        plan = plan_call({**NY_CUSTOMER, "phone": phone}, now, POLICY)
        assert plan.call is False and plan.rule == "no_phone" and "no phone" in plan.reason
        assert plan.next_allowed == utc(2026, 6, 11, 12, 0) and plan.zones == ("America/New_York",)


def test_plan_call_accepts_any_aware_now_and_refuses_a_naive_one() -> None:
    assert plan_call(NY_CUSTOMER, ny(2026, 6, 10, 10, 0), POLICY) == plan_call(NY_CUSTOMER, utc(2026, 6, 10, 14, 0),
                                                                                  POLICY)
    with pytest.raises(ValueError, match="aware"):
        plan_call(NY_CUSTOMER, datetime(2026, 6, 10, 14, 0), POLICY)


def test_dst_spring_forward_new_york() -> None:
    # 2026-03-08 (Sunday) 02:00 EST -> 03:00 EDT. 12:30 UTC is 07:30 the day before, 08:30 that day.
    assert plan_call(NY_CUSTOMER, utc(2026, 3, 7, 12, 30), POLICY).call is False
    assert plan_call(NY_CUSTOMER, utc(2026, 3, 8, 12, 30), POLICY).call is True
    # The opening after the change is 08:00 EDT = 12:00 UTC, not 13:00 (the EST offset of the night before).
    assert plan_call(NY_CUSTOMER, ny(2026, 3, 8, 1, 0), POLICY).next_allowed == utc(2026, 3, 8, 12, 0)
    assert plan_call(NY_CUSTOMER, ny(2026, 3, 7, 21, 0), POLICY).next_allowed == utc(2026, 3, 8, 12, 0)
    assert plan_call(NY_CUSTOMER, ny(2026, 3, 7, 7, 0), POLICY).next_allowed == utc(2026, 3, 7, 13, 0)


def test_dst_fall_back_new_york() -> None:
    # 2026-11-01 (Sunday) 02:00 EDT -> 01:00 EST; 01:30 happens twice.
    first, second = ny(2026, 11, 1, 1, 30, fold=0), ny(2026, 11, 1, 1, 30, fold=1)
    assert (first.astimezone(UTC), second.astimezone(UTC)) == (utc(2026, 11, 1, 5, 30), utc(2026, 11, 1, 6, 30))
    for moment in (first, second):
        plan = plan_call(NY_CUSTOMER, moment, POLICY)
        assert plan.call is False and plan.next_allowed == utc(2026, 11, 1, 13, 0)  # 08:00 EST
    assert plan_call(NY_CUSTOMER, utc(2026, 10, 31, 12, 30), POLICY).call is True   # 08:30 EDT
    assert plan_call(NY_CUSTOMER, utc(2026, 11, 1, 12, 30), POLICY).call is False   # 07:30 EST
    assert plan_call(NY_CUSTOMER, utc(2026, 11, 1, 13, 0), POLICY).call is True     # 08:00 EST
    assert plan_call(NY_CUSTOMER, utc(2026, 11, 2, 0, 30), POLICY).call is True     # Sun 19:30 EST
    assert plan_call(NY_CUSTOMER, utc(2026, 11, 2, 1, 0), POLICY).call is False     # Sun 20:00 EST


def test_window_start_in_a_spring_forward_gap_opens_at_the_transition() -> None:
    # A night window (federal bound widened for the test): 02:30 does not exist on 2026-03-08 in New York;
    # the window opens when the clocks jump from 02:00 EST to 03:00 EDT (07:00 UTC).
    policy = with_unit("02:30", "05:00", bound=("00:00", "23:59"))
    plan = plan_call(NY_CUSTOMER, ny(2026, 3, 8, 0, 0), policy, business_unit="ops")
    assert plan.next_allowed == utc(2026, 3, 8, 7, 0)
    assert plan_call(NY_CUSTOMER, utc(2026, 3, 8, 7, 0), policy, business_unit="ops").call is True
    assert plan_call(NY_CUSTOMER, utc(2026, 3, 8, 6, 59, 59), policy, business_unit="ops").call is False


def test_window_start_in_a_fall_back_fold_opens_at_both_readings() -> None:
    policy = with_unit("01:30", "05:00", bound=("00:00", "23:59"))
    before = plan_call(NY_CUSTOMER, ny(2026, 11, 1, 0, 0), policy, business_unit="ops")
    assert before.next_allowed == utc(2026, 11, 1, 5, 30)  # 01:30 EDT, the first time
    # 01:00 EST: the clock went back out of the window and reaches 01:30 again at 06:30 UTC.
    again = plan_call(NY_CUSTOMER, utc(2026, 11, 1, 6, 0), policy, business_unit="ops")
    assert again.call is False and again.next_allowed == utc(2026, 11, 1, 6, 30)
    # A window the clock falls back INTO opens at the transition itself (01:59:59 EDT -> 01:00 EST).
    into = with_unit("00:30", "01:30", bound=("00:00", "23:59"))
    plan = plan_call(NY_CUSTOMER, utc(2026, 11, 1, 5, 45), into, business_unit="ops")  # 01:45 EDT
    assert plan.call is False and plan.next_allowed == utc(2026, 11, 1, 6, 0)


def test_lord_howe_half_hour_gap() -> None:
    # 2026-10-04 02:00 LHST (+10:30) -> 02:30 LHDT (+11): a 02:00-05:00 window opens at 15:30 UTC.
    customer = {"phone": "+61293744000", "timezone": "Australia/Lord_Howe"}  # a Sydney number: both zones
    policy = with_unit("02:00", "05:00", bound=("00:00", "23:59"))
    plan = plan_call({**customer, "phone": "+15551234567"}, utc(2026, 10, 3, 12, 0), policy, business_unit="ops")
    assert plan.zones == ("Australia/Lord_Howe",) and plan.next_allowed == utc(2026, 10, 3, 15, 30)
    both = plan_call(customer, utc(2026, 10, 3, 12, 0), policy, business_unit="ops")
    assert both.zones == ("Australia/Lord_Howe", "Australia/Sydney")
    # Sydney springs forward from 02:00 AEST to 03:00 AEDT at 16:00 UTC: from then on both are inside.
    assert both.next_allowed == utc(2026, 10, 3, 16, 0)


def test_business_unit_window() -> None:
    policy = with_unit("09:00", "19:00")
    at_0830 = utc(2026, 6, 10, 12, 30)  # 08:30 EDT
    plan = plan_call(NY_CUSTOMER, at_0830, policy, business_unit="ops")
    assert plan.call is False and plan.rule == "window" and plan.next_allowed == utc(2026, 6, 10, 13, 0)
    assert "09:00-19:00" in plan.reason
    assert plan_call(NY_CUSTOMER, at_0830, policy).call is True                          # the default window
    assert plan_call(NY_CUSTOMER, at_0830, policy, business_unit="unknown").call is True  # ditto
    assert plan_call(NY_CUSTOMER, utc(2026, 6, 10, 22, 30), policy, business_unit="ops").call is True  # 18:30
    assert plan_call(NY_CUSTOMER, utc(2026, 6, 10, 23, 0), policy, business_unit="ops").call is False  # 19:00


def test_federal_bound_clamps_a_wider_business_unit_window() -> None:
    policy = with_unit("07:00", "22:00")
    at_0730 = plan_call(NY_CUSTOMER, utc(2026, 6, 10, 11, 30), policy, business_unit="ops")
    assert at_0730.call is False and at_0730.rule == "window" and at_0730.next_allowed == utc(2026, 6, 10, 12, 0)
    assert "08:00-21:00" in at_0730.reason
    at_2130 = plan_call(NY_CUSTOMER, utc(2026, 6, 11, 1, 30), policy, business_unit="ops")
    assert at_2130.call is False and at_2130.next_allowed == utc(2026, 6, 11, 12, 0)
    assert plan_call(NY_CUSTOMER, utc(2026, 6, 11, 0, 30), policy, business_unit="ops").call is True  # 20:30


def test_a_window_entirely_outside_the_federal_bound_never_calls() -> None:
    now = utc(2026, 6, 10, 14, 0)
    plan = plan_call(NY_CUSTOMER, now, with_unit("05:00", "07:00"), business_unit="ops")
    assert plan.call is False and plan.rule == "window" and "no time in the next 14 days" in plan.reason
    assert plan.next_allowed == now + timedelta(days=14)


def test_florida_ends_at_eight_pm() -> None:
    policy = with_unit("07:00", "22:00")  # the business unit would allow 20:30; Florida does not
    at_2030 = plan_call(MIAMI, utc(2026, 6, 11, 0, 30), policy, business_unit="ops")
    assert at_2030.call is False and at_2030.rule == "state:FL" and "FL" in at_2030.reason
    assert at_2030.next_allowed == utc(2026, 6, 11, 12, 0)
    assert plan_call(MIAMI, utc(2026, 6, 10, 23, 30), policy, business_unit="ops").call is True   # 19:30
    at_2130 = plan_call(MIAMI, utc(2026, 6, 11, 1, 30), policy, business_unit="ops")
    assert at_2130.rule == "window"  # outside the federal bound too: the general rule decided


def test_florida_caps_three_calls_per_24_hours() -> None:
    now = utc(2026, 6, 10, 14, 0)  # Wed 10:00 EDT
    assert plan_call(MIAMI, now, POLICY, calls_last_24h=2).call is True
    capped = plan_call(MIAMI, now, POLICY, calls_last_24h=3)
    assert capped.call is False and capped.rule == "cap" and "3" in capped.reason
    assert capped.next_allowed == now + timedelta(hours=24)  # Thu 10:00: inside the window
    early = plan_call(MIAMI, utc(2026, 6, 10, 11, 0), POLICY, calls_last_24h=3)  # 07:00 EDT
    assert early.rule == "cap" and early.next_allowed == utc(2026, 6, 11, 12, 0)  # +24 h, then Thu 08:00
    # The smaller cap wins: no global cap still leaves Florida's 3; a global 2 is stricter than Florida's.
    assert plan_call(MIAMI, now, {**POLICY, "max_calls_per_24h": None}, calls_last_24h=3).rule == "cap"
    assert plan_call(MIAMI, now, {**POLICY, "max_calls_per_24h": 2}, calls_last_24h=2).rule == "cap"
    assert plan_call(NY_CUSTOMER, now, {**POLICY, "max_calls_per_24h": None}, calls_last_24h=50).call is True


def test_alabama_no_calls_on_sundays() -> None:
    plan = plan_call(ALABAMA, utc(2026, 6, 14, 16, 0), POLICY)  # Sun 11:00 CDT
    assert plan.call is False and plan.rule == "sunday:AL" and "Sunday" in plan.reason
    assert plan.zones == ("America/Chicago",)
    assert plan.next_allowed == utc(2026, 6, 15, 13, 0)  # Mon 08:00 CDT
    assert plan_call(ALABAMA, utc(2026, 6, 13, 16, 0), POLICY).call is True  # Saturday
    assert plan_call(MIAMI, utc(2026, 6, 14, 16, 0), POLICY).call is True    # Florida calls on Sundays


def test_alabama_no_calls_on_the_fourth_of_july() -> None:
    plan = plan_call(ALABAMA, utc(2026, 7, 4, 16, 0), POLICY)  # Sat 11:00 CDT
    assert plan.call is False and plan.rule == "holiday:AL" and "Independence Day" in plan.reason
    assert plan.next_allowed == utc(2026, 7, 6, 13, 0)  # Sunday the 5th is out too: Mon 08:00 CDT
    assert plan_call(ALABAMA, utc(2026, 7, 3, 16, 0), POLICY).rule == "holiday:AL"  # observed on Friday
    assert plan_call(MIAMI, utc(2026, 7, 4, 16, 0), POLICY).call is True
    louisiana = {"phone": "+15551234567", "timezone": "America/Chicago", "state": "LA"}
    assert plan_call(louisiana, utc(2026, 7, 4, 16, 0), POLICY).rule == "holiday:LA"


def test_crm_zone_and_phone_zone_must_both_be_inside() -> None:
    customer = {"phone": "+12125551234", "timezone": "America/Los_Angeles"}  # a New York number
    assert candidate_zones(customer) == ("America/Los_Angeles", "America/New_York")
    both = plan_call(customer, utc(2026, 6, 10, 16, 0), POLICY)  # 09:00 PDT, 12:00 EDT
    assert both.call is True and both.zones == ("America/Los_Angeles", "America/New_York")
    too_early = plan_call(customer, utc(2026, 6, 10, 14, 0), POLICY)  # 07:00 PDT, 10:00 EDT
    assert too_early.call is False and "America/Los_Angeles" in too_early.reason
    assert too_early.next_allowed == utc(2026, 6, 10, 15, 0)  # 08:00 PDT
    too_late = plan_call(customer, utc(2026, 6, 11, 0, 30), POLICY)  # 17:30 PDT, 20:30 EDT
    assert too_late.call is False and "America/New_York" in too_late.reason
    assert too_late.next_allowed == utc(2026, 6, 11, 15, 0)


def test_candidate_zones() -> None:
    assert candidate_zones({"phone": "+12125551234", "timezone": "America/New_York"}) == ("America/New_York",)
    assert candidate_zones({"phone": "+15551234567"}) == ()                      # Etc/Unknown is ignored
    assert candidate_zones({"phone": "+442071234567"}) == ("Europe/London",)
    assert candidate_zones({"phone": "not a number", "timezone": "Asia/Kolkata"}) == ("Asia/Kolkata",)
    assert candidate_zones({"timezone": "Nowhere/Special"}) == ()


@pytest.mark.parametrize("customer,state", [
    ({"phone": "+13055551234"}, "FL"),                       # geocoder: "Florida"
    ({"phone": "+12125551234"}, "NY"),                       # geocoder: "New York, NY"
    ({"phone": "+12065551234"}, "WA"),                       # geocoder: "Washington State"
    ({"phone": "+12055551234"}, "AL"),
    ({"phone": "+15551234567"}, None),                       # not a valid number
    ({"phone": "+442071234567"}, None),                      # not a US number
    ({"phone": None}, None),
    ({"phone": "+12125551234", "state": "fl"}, "FL"),        # the CRM's field first
    ({"phone": "+13055551234", "state": "Alabama"}, "AL"),
    ({"phone": "+442071234567", "state": "MD"}, "MD"),
    ({"phone": "+13055551234", "state": "nowhere"}, "FL"),   # an unreadable CRM state: the number's
])
def test_phone_state(customer: dict[str, Any], state: str | None) -> None:
    assert phone_state(customer) == state


def test_state_from_the_crm_applies_its_rules() -> None:
    customer = {**NY_CUSTOMER, "state": "AL"}  # a New York zone, but the CRM says Alabama
    assert plan_call(customer, utc(2026, 6, 14, 16, 0), POLICY).rule == "sunday:AL"




def test_a_toll_free_number_does_not_add_every_zone_of_its_country() -> None:
    from switchboard.dialing import candidate_zones

    customer = {"phone": "+18005551234", "timezone": "America/Chicago", "doNotDisturb": False}
    assert candidate_zones(customer) == ("America/Chicago",)
    assert candidate_zones({**customer, "phone": "+12125551234"}) == ("America/Chicago", "America/New_York")
