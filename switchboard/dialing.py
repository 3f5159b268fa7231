"""The dialing policy: may a proactive call to this customer be placed now, and if not, from when on?

The dispatch asks ``plan_call`` before every outbound call. When the answer is no (outside the window in
one of the customer's time zones, a state's stricter rules, do-not-disturb, the daily cap, no phone or no
customer), the dispatch creates a follow-up work item due at ``CallPlan.next_allowed`` instead: an alert
is never dropped because it may not be called about now.

Pure logic, no I/O and no clock: the caller passes ``now``, the CRM record, the policy (windows.yaml
``dialing``, validated by the config code) and the customer's number of calls in the last 24 hours.

The rules (CONTRACTS.md, "Calling hours"), all of which must hold for a call:

* the customer is known, has a phone number and has do-not-disturb off;
* at least one known time zone: the CRM's plus those of the phone number (``candidate_zones``);
* fewer calls in the last 24 h than the cap (the smaller of the global cap and the state's);
* in EVERY candidate zone, the local time is inside the effective window (``start <= local < end``):
  the business unit's window (or the default) intersected with the state's stricter start/end and with
  the federal bound, which nothing may exceed; on a state with ``no_sundays`` it is not Sunday locally,
  with ``no_holidays`` not a holiday of that state (``holidays.US``) locally.

``next_allowed`` is the earliest instant at or after ``now`` at which the zone rules hold (for the cap:
at or after ``now`` + 24 h, assuming the oldest counted call has aged out by then). It is found among
candidate instants: ``now``; in each zone, each day's window start (both readings of a wall-clock time
that happens twice at a fall-back) and each DST transition (where a spring-forward jumps over the start,
the window opens at the transition). The allowed set is an intersection of half-open intervals, so it
always opens at one of them. Without any allowed instant within ``HORIZON_DAYS`` (e.g. zones so far
apart that their windows never overlap) the plan says so and ``next_allowed`` is the end of that horizon.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays
import phonenumbers
from phonenumbers import geocoder
from phonenumbers import timezone as phone_timezone

HORIZON_DAYS = 14
CAP_PERIOD = timedelta(hours=24)
FALLBACK_ZONE = "UTC"  # the zone next_allowed is computed in when the customer has no known zone
NO_ALLOWED_TIME = f"no time in the next {HORIZON_DAYS} days is allowed"

US_STATES = {
    "Alabama": "AL", "Alaska": "AK", "Arizona": "AZ", "Arkansas": "AR", "California": "CA", "Colorado": "CO",
    "Connecticut": "CT", "Delaware": "DE", "Florida": "FL", "Georgia": "GA", "Hawaii": "HI", "Idaho": "ID",
    "Illinois": "IL", "Indiana": "IN", "Iowa": "IA", "Kansas": "KS", "Kentucky": "KY", "Louisiana": "LA",
    "Maine": "ME", "Maryland": "MD", "Massachusetts": "MA", "Michigan": "MI", "Minnesota": "MN",
    "Mississippi": "MS", "Missouri": "MO", "Montana": "MT", "Nebraska": "NE", "Nevada": "NV",
    "New Hampshire": "NH", "New Jersey": "NJ", "New Mexico": "NM", "New York": "NY", "North Carolina": "NC",
    "North Dakota": "ND", "Ohio": "OH", "Oklahoma": "OK", "Oregon": "OR", "Pennsylvania": "PA",
    "Rhode Island": "RI", "South Carolina": "SC", "South Dakota": "SD", "Tennessee": "TN", "Texas": "TX",
    "Utah": "UT", "Vermont": "VT", "Virginia": "VA", "Washington": "WA", "Washington State": "WA",
    "West Virginia": "WV", "Wisconsin": "WI", "Wyoming": "WY", "District of Columbia": "DC",
    "Washington D.C.": "DC",
}
STATE_CODES = frozenset(US_STATES.values())


@dataclass(frozen=True)
class CallPlan:
    call: bool
    rule: str                # which rule decided: "allowed", "no_customer", "no_phone", "dnd", "unknown_zone",
                             # "window", "state:<ST>", "sunday:<ST>", "holiday:<ST>", "cap"
    reason: str              # one human sentence
    next_allowed: datetime   # UTC: the earliest instant a call would be allowed (== now when call is True)
    zones: tuple[str, ...]   # the time zones that were checked


@dataclass(frozen=True)
class Rules:
    """The effective rules for one customer: their window, their state's day rules, their cap."""
    start: time
    end: time
    base: tuple[time, time]  # the window before the state's start/end: tells "window" from "state:<ST>"
    state: str | None
    no_sundays: bool
    no_holidays: bool
    cap: int | None


# --- who and where is the customer ---------------------------------------------------------------------

def _parse_phone(customer: dict[str, Any]) -> phonenumbers.PhoneNumber | None:
    raw = customer.get("phone")
    if not isinstance(raw, str) or not raw.strip():
        return None
    try:
        return phonenumbers.parse(raw.strip(), None)  # E.164 ("+1..."); a number without a country is unusable
    except phonenumbers.NumberParseException:
        return None


def _zone(name: Any) -> ZoneInfo | None:
    if not isinstance(name, str) or not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # unknown, malformed ("../x"), a directory
        return None


def candidate_zones(customer: dict[str, Any]) -> tuple[str, ...]:
    """The CRM's time zone plus the phone number's (in that order, de-duplicated, only zones that exist).

    A non-geographical number (toll-free, mobile-only ranges) says nothing about where the customer is:
    phonenumbers lists every zone of the country for it (42 for +1 800), which would leave no common
    window, so only the CRM's zone counts then."""
    number = _parse_phone(customer)
    geographic = number is not None and phonenumbers.is_number_geographical(number)
    from_phone = phone_timezone.time_zones_for_number(number) if geographic else ()
    names = [customer.get("timezone"), *from_phone]
    known = [n for n in names if n != phone_timezone.UNKNOWN_TIMEZONE and _zone(n) is not None]
    return tuple(dict.fromkeys(known))


def _state_code(text: Any) -> str | None:
    if not isinstance(text, str):
        return None
    text = text.strip()
    if text.upper() in STATE_CODES:
        return text.upper()
    if text in US_STATES:
        return US_STATES[text]
    city_state = text.rsplit(", ", 1)  # "Miami, FL"
    return city_state[1] if len(city_state) == 2 and city_state[1] in STATE_CODES else None


def phone_state(customer: dict[str, Any]) -> str | None:
    """The customer's US state: the CRM's ``state`` (a code or a name), else where the phone number is."""
    from_crm = _state_code(customer.get("state"))
    if from_crm:
        return from_crm
    number = _parse_phone(customer)
    if number is None or phonenumbers.region_code_for_number(number) != "US":
        return None
    return _state_code(geocoder.description_for_number(number, "en"))


# --- the rules -------------------------------------------------------------------------------------------

def _clock(value: str) -> time:
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


def _smaller_cap(*caps: int | None) -> int | None:
    given = [c for c in caps if c is not None]
    return min(given) if given else None


def effective_rules(policy: dict[str, Any], state: str | None, business_unit: str | None) -> Rules:
    """The business unit's window (or the default) within the federal bound, narrowed by the state."""
    window = policy.get("business_units", {}).get(business_unit) or policy["default_window"]
    bound = policy["federal_bound"]
    start = max(_clock(window["start"]), _clock(bound["start"]))
    end = min(_clock(window["end"]), _clock(bound["end"]))
    rule = (policy.get("states", {}).get(state) or {}) if state else {}
    return Rules(
        start=max(start, _clock(rule["start"])) if rule.get("start") else start,
        end=min(end, _clock(rule["end"])) if rule.get("end") else end,
        base=(start, end), state=state,
        no_sundays=bool(rule.get("no_sundays")), no_holidays=bool(rule.get("no_holidays")),
        cap=_smaller_cap(policy.get("max_calls_per_24h"), rule.get("max_calls_per_24h")))


@cache
def _holidays(state: str, year: int) -> holidays.HolidayBase:
    try:
        return holidays.US(subdiv=state, years=year)
    except NotImplementedError:  # a code the calendar does not know: the federal holidays
        return holidays.US(years=year)


def _span(start: time, end: time) -> str:
    return f"{start:%H:%M}-{end:%H:%M}"


def _blocker(instant: datetime, zone: str, rules: Rules) -> tuple[str, str] | None:
    """(rule, reason) if the zone's rules forbid a call at this instant, else None."""
    local = instant.astimezone(ZoneInfo(zone))
    when = f"in {zone} ({local:%a %Y-%m-%d %H:%M} local)"
    if rules.state and rules.no_sundays and local.weekday() == 6:
        return f"sunday:{rules.state}", f"{rules.state} forbids calls on Sundays and it is Sunday {when}"
    if rules.state and rules.no_holidays and local.date() in _holidays(rules.state, local.year):
        name = _holidays(rules.state, local.year).get(local.date())
        return f"holiday:{rules.state}", f"{rules.state} forbids calls on holidays and it is {name} {when}"
    if rules.start <= local.time() < rules.end:
        return None
    if rules.state and rules.base[0] <= local.time() < rules.base[1]:
        return (f"state:{rules.state}",
                f"outside {rules.state}'s calling hours {_span(rules.start, rules.end)} {when}")
    return "window", f"outside the dialing window {_span(rules.start, rules.end)} {when}"


def _first_blocker(instant: datetime, zones: tuple[str, ...], rules: Rules) -> tuple[str, str] | None:
    return next((b for b in (_blocker(instant, z, rules) for z in zones) if b), None)


# --- when is the next allowed instant --------------------------------------------------------------------

def _to_utc(day: date, clock: time, tz: tzinfo, fold: int) -> datetime:
    return datetime.combine(day, clock, tzinfo=tz).replace(fold=fold).astimezone(UTC)


def _transition(lo: datetime, hi: datetime, tz: tzinfo) -> datetime | None:
    """The instant in (lo, hi] at which the UTC offset changes (at most one a day), to the second."""
    before = lo.astimezone(tz).utcoffset()
    if hi.astimezone(tz).utcoffset() == before:
        return None
    low, high = int(lo.timestamp()), int(hi.timestamp())
    while high - low > 1:
        middle = (low + high) // 2
        if datetime.fromtimestamp(middle, UTC).astimezone(tz).utcoffset() == before:
            low = middle
        else:
            high = middle
    return datetime.fromtimestamp(high, UTC)


def _openings(after: datetime, zone: str, rules: Rules) -> Iterator[datetime]:
    """Where the zone's allowed time may begin, from ``after``'s local day on: each day's window start (both
    readings when the wall-clock time happens twice) and the day's DST transition, if any."""
    tz = ZoneInfo(zone)
    first = after.astimezone(tz).date()
    for offset in range(HORIZON_DAYS + 1):
        day = first + timedelta(days=offset)
        yield _to_utc(day, rules.start, tz, 0)
        yield _to_utc(day, rules.start, tz, 1)
        change = _transition(_to_utc(day, time(0), tz, 0), _to_utc(day + timedelta(days=1), time(0), tz, 0), tz)
        if change is not None:
            yield change


def _earliest_allowed(after: datetime, zones: tuple[str, ...], rules: Rules) -> datetime | None:
    if rules.start >= rules.end:
        return None  # the window is empty (e.g. a business-unit window entirely outside the federal bound)
    candidates = {after} | {t for z in zones for t in _openings(after, z, rules) if t >= after}
    return next((t for t in sorted(candidates) if _first_blocker(t, zones, rules) is None), None)


# --- the plan --------------------------------------------------------------------------------------------

def _plan(rule: str, reason: str, after: datetime, zones: tuple[str, ...], rules: Rules) -> CallPlan:
    """A plan not to call now, with the earliest instant from ``after`` on at which the zone rules allow it."""
    checked = zones or (FALLBACK_ZONE,)
    allowed = _earliest_allowed(after, checked, rules)
    if allowed is None:
        return CallPlan(False, rule, f"{reason}; {NO_ALLOWED_TIME}", after + timedelta(days=HORIZON_DAYS), zones)
    return CallPlan(False, rule, reason, allowed, zones)


def _inside(now: datetime, zones: tuple[str, ...], rules: Rules) -> str:
    places = " and ".join(f"{z} ({now.astimezone(ZoneInfo(z)):%a %H:%M} local)" for z in zones)
    return f"inside the dialing window {_span(rules.start, rules.end)} in {places}"


def plan_call(customer: dict[str, Any] | None, now: datetime, policy: dict[str, Any], *, calls_last_24h: int = 0,
              business_unit: str | None = None) -> CallPlan:
    """Call now, or not: which rule decided, why, and the earliest instant a call would be allowed."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    now = now.astimezone(UTC)
    if customer is None:
        rules = effective_rules(policy, None, business_unit)
        return _plan("no_customer", "customer not found in the CRM", now, (), rules)
    zones = candidate_zones(customer)
    rules = effective_rules(policy, phone_state(customer), business_unit)
    if not isinstance(customer.get("phone"), str) or not customer["phone"].strip():
        return _plan("no_phone", "no phone number on file", now, zones, rules)
    if customer.get("doNotDisturb"):
        return _plan("dnd", "customer has do-not-disturb on", now, zones, rules)
    if not zones:
        return _plan("unknown_zone", f"unknown time zone {customer.get('timezone')!r} and none from the phone "
                                     "number", now, zones, rules)
    if rules.cap is not None and calls_last_24h >= rules.cap:
        return _plan("cap", f"{calls_last_24h} calls in the last 24 h reach the cap of {rules.cap}",
                     now + CAP_PERIOD, zones, rules)
    blocker = _first_blocker(now, zones, rules)
    if blocker is not None:
        return _plan(*blocker, now, zones, rules)
    return CallPlan(True, "allowed", _inside(now, zones, rules), now, zones)
