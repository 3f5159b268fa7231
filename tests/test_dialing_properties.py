"""Property tests of the dialing policy (switchboard.dialing) across 2026-2027, with the DST transitions of
New York and London (1 h), Lord Howe (30 min) and Kolkata (none) as explicit examples.

Properties: (1) a call is only placed when the local time is inside the effective window in every zone
checked, never outside the federal bound; (2) ``next_allowed`` is not in the past and a call is allowed
then; (3) no earlier instant is allowed (sampled every 15 minutes, plus the second before); (4)
do-not-disturb never calls.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import holidays
from hypothesis import example, given, settings
from hypothesis import strategies as st

from switchboard.dialing import NO_ALLOWED_TIME, CallPlan, phone_state, plan_call

STATE_RULE = {"start": None, "end": "20:00", "max_calls_per_24h": 3, "no_sundays": False, "no_holidays": False}
NO_SUNDAYS = {"start": None, "end": None, "max_calls_per_24h": None, "no_sundays": True, "no_holidays": True}
POLICY: dict[str, Any] = {
    "default_window": {"start": "08:00", "end": "20:00"},
    "federal_bound": {"start": "08:00", "end": "21:00"},
    "max_calls_per_24h": 3,
    "business_units": {},
    "states": {"FL": STATE_RULE, "OK": STATE_RULE, "MD": STATE_RULE, "WA": {**STATE_RULE, "max_calls_per_24h": None},
               "AL": NO_SUNDAYS, "LA": NO_SUNDAYS},
}
ZONES = ("America/New_York", "Europe/London", "Australia/Lord_Howe", "Asia/Kolkata")
PHONES = (
    "+15551234567",   # a number that names no zone: only the CRM's counts
    "+12125551234",   # New York
    "+13055551234",   # Florida (New York zone): ends 20:00, cap 3
    "+12055551234",   # Alabama (Chicago zone): no Sundays, no holidays
    "+442071234567",  # London
    "+61293744000",   # Sydney
)
WIDE = ("00:00", "23:59")   # a federal bound that lets windows reach the night, where clocks change
FEDERAL = ("08:00", "21:00")
UNIT = "ops"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# Every UTC offset change of the four zones in 2026-2027.
TRANSITIONS = {
    "America/New_York": [utc(2026, 3, 8, 7), utc(2026, 11, 1, 6), utc(2027, 3, 14, 7), utc(2027, 11, 7, 6)],
    "Europe/London": [utc(2026, 3, 29, 1), utc(2026, 10, 25, 1), utc(2027, 3, 28, 1), utc(2027, 10, 31, 1)],
    "Australia/Lord_Howe": [utc(2026, 4, 4, 15), utc(2026, 10, 3, 15, 30), utc(2027, 4, 3, 15),
                            utc(2027, 10, 2, 15, 30)],
    "Asia/Kolkata": [],
}
NEAR = [(zone, instant) for zone, instants in TRANSITIONS.items() for instant in instants]


def clock(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


@st.composite
def windows(draw: st.DrawFn) -> tuple[str, str] | None:
    """None (the default window) or a business-unit window anywhere in the day (start < end), half of the
    time on quarter hours so that instants on the quarter-hour grid hit its edges."""
    if draw(st.booleans()):
        return None
    grain = draw(st.sampled_from([1, 15]))
    last = (23 * 60 + 59) // grain  # 23:59 or 23:45
    start = draw(st.integers(0, last - 1))
    end = draw(st.integers(start + 1, last))
    return clock(start * grain), clock(end * grain)


@st.composite
def instants(draw: st.DrawFn) -> datetime:
    """Anywhere in 2026-2027 (to the microsecond or on a quarter hour), or within three hours of one of the
    DST transitions."""
    kind = draw(st.sampled_from(["near", "any", "quarter"]))
    if kind == "near":
        zone, instant = draw(st.sampled_from(NEAR))
        return instant + timedelta(seconds=draw(st.integers(-3 * 3600, 3 * 3600)))
    naive = draw(st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31, 23, 59, 59)))
    if kind == "quarter":
        naive = naive.replace(minute=naive.minute // 15 * 15, second=0, microsecond=0)
    return naive.replace(tzinfo=UTC)


def policy_for(window: tuple[str, str] | None, bound: tuple[str, str]) -> dict[str, Any]:
    units = {UNIT: {"start": window[0], "end": window[1]}} if window else {}
    return {**POLICY, "business_units": units, "federal_bound": {"start": bound[0], "end": bound[1]}}


def plan(now: datetime, zone: str, phone: str, window: tuple[str, str] | None, bound: tuple[str, str],
         calls: int = 0, dnd: bool = False) -> CallPlan:
    customer = {"phone": phone, "timezone": zone, "doNotDisturb": dnd}
    return plan_call(customer, now, policy_for(window, bound), calls_last_24h=calls, business_unit=UNIT)


# Windows for the examples at the transitions: the configured one, and night windows (under a widened
# bound) that start exactly at or inside a spring-forward gap, inside a fall-back hour, or that the clock
# falls back into.
NIGHT_WINDOWS = [("02:00", "05:00"), ("02:15", "05:00"), ("01:15", "05:00"), ("01:30", "05:00"), ("00:30", "01:30")]


ALABAMA, MIAMI = PHONES[3], PHONES[2]
STATE_EXAMPLES = [
    (utc(2026, 7, 5, 16), "America/Chicago", ALABAMA, None),             # Sunday 11:00 CDT in Alabama
    (utc(2026, 7, 4, 16), "America/Chicago", ALABAMA, None),             # Independence Day
    (utc(2026, 7, 3, 23, 59), "America/Chicago", ALABAMA, None),         # observed on Friday the 3rd
    (utc(2026, 6, 11, 0, 30), "America/New_York", MIAMI, ("07:00", "22:00")),  # 20:30 EDT in Florida
    (utc(2026, 6, 10, 23, 59), "America/New_York", MIAMI, ("07:00", "22:00")),  # 19:59 EDT
]


def at_transitions(**more: Any) -> Callable[[Any], Any]:
    """@example at each transition instant, the second and the hour before it, in the transition's own zone,
    with the default window under the federal bound and with each night window; and at a few instants where
    a state's rule decides."""
    def decorate(test: Any) -> Any:
        for now, zone, phone, window in STATE_EXAMPLES:
            test = example(now=now, zone=zone, phone=phone, window=window, bound=FEDERAL, **more)(test)
        cases = [(None, FEDERAL)] + [(window, WIDE) for window in NIGHT_WINDOWS]
        for zone, instant in NEAR:
            for now in (instant, instant - timedelta(seconds=1), instant - timedelta(hours=1)):
                for window, bound in cases:
                    test = example(now=now, zone=zone, phone=PHONES[0], window=window, bound=bound, **more)(test)
        return test
    return decorate


def hm(value: str) -> time:
    return time.fromisoformat(value)


def effective_window(window: tuple[str, str] | None, bound: tuple[str, str], state: str | None) -> tuple[time, time]:
    start, end = window or ("08:00", "20:00")
    rule = POLICY["states"].get(state) or {}
    starts = [hm(start), hm(bound[0])] + ([hm(rule["start"])] if rule.get("start") else [])
    ends = [hm(end), hm(bound[1])] + ([hm(rule["end"])] if rule.get("end") else [])
    return max(starts), min(ends)


COMMON = {"now": instants(), "zone": st.sampled_from(ZONES), "phone": st.sampled_from(PHONES),
          "window": windows(), "bound": st.sampled_from([FEDERAL, WIDE])}


@settings(max_examples=300, deadline=None)
@given(**COMMON, calls=st.integers(0, 4))
@at_transitions(calls=0)
def test_a_call_is_inside_the_effective_window_in_every_zone(now: datetime, zone: str, phone: str,
                                                             window: tuple[str, str] | None,
                                                             bound: tuple[str, str], calls: int) -> None:
    result = plan(now, zone, phone, window, bound, calls)
    if not result.call:
        return
    assert result.rule == "allowed" and result.next_allowed == now
    assert zone in result.zones
    state = phone_state({"phone": phone})
    start, end = effective_window(window, bound, state)
    for name in result.zones:
        local = now.astimezone(ZoneInfo(name))
        assert start <= local.time() < end, (name, local)
        assert hm(bound[0]) <= local.time() < hm(bound[1]), (name, local)
        if state in ("AL", "LA"):
            assert local.weekday() != 6 and local.date() not in holidays.US(subdiv=state, years=local.year)
    cap = min(c for c in (POLICY["max_calls_per_24h"], (POLICY["states"].get(state) or {}).get("max_calls_per_24h"))
              if c is not None)
    assert calls < cap


@settings(max_examples=150, deadline=None)
@given(**COMMON, calls=st.integers(0, 4))
@at_transitions(calls=0)
def test_next_allowed_is_not_in_the_past_and_a_call_is_allowed_then(now: datetime, zone: str, phone: str,
                                                                     window: tuple[str, str] | None,
                                                                     bound: tuple[str, str], calls: int) -> None:
    result = plan(now, zone, phone, window, bound, calls)
    assert result.next_allowed >= now and result.next_allowed.utcoffset() == timedelta(0)
    assert result.call is (result.next_allowed == now and result.rule == "allowed")
    if NO_ALLOWED_TIME in result.reason:  # the zones' windows never overlap: nothing to schedule a call at
        return
    later = plan(result.next_allowed, zone, phone, window, bound)
    assert later.call is True, (result, later)


@settings(max_examples=60, deadline=None)
@given(**COMMON, calls=st.integers(0, 4))
@at_transitions(calls=0)
def test_no_earlier_instant_is_allowed(now: datetime, zone: str, phone: str, window: tuple[str, str] | None,
                                       bound: tuple[str, str], calls: int) -> None:
    result = plan(now, zone, phone, window, bound, calls)
    first = now + timedelta(hours=24) if result.rule == "cap" else now
    if NO_ALLOWED_TIME in result.reason or result.next_allowed <= first:
        return
    # Bounded sample: every 15 minutes (coarser on long gaps, at most ~100 checks), and the second before.
    span = result.next_allowed - first
    step = max(timedelta(minutes=15), span / 100)
    probes = [first + step * k for k in range(int(span / step) + 1)] + [result.next_allowed - timedelta(seconds=1)]
    for probe in probes:
        if first <= probe < result.next_allowed:
            assert plan(probe, zone, phone, window, bound).call is False, (probe, result)


@settings(max_examples=200, deadline=None)
@given(**COMMON)
@at_transitions()
def test_do_not_disturb_never_calls(now: datetime, zone: str, phone: str, window: tuple[str, str] | None,
                                    bound: tuple[str, str]) -> None:
    result = plan(now, zone, phone, window, bound, dnd=True)
    assert result.call is False and result.rule == "dnd"
    assert result.next_allowed >= now
