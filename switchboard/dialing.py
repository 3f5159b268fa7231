"""Whether a proactive call may be placed now: the customer's local time, the dialing window, DND.

Pure logic (no I/O): the dispatch task looks the customer up in the CRM and asks ``plan_call``. Outside
the window, with DND on, or without a usable phone number / time zone, the answer is a work item due at
the next window opening on a business day. Per-state calling rules and holidays extend this (issue 5).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class CallPlan:
    call: bool
    reason: str
    next_opening: datetime  # UTC: when a follow-up work item is due if we do not call now


def _clock(value: str) -> time:
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


def next_opening(local_now: datetime, window: dict[str, Any]) -> datetime:
    """The first window start on a business day that is not in the past, in UTC."""
    start = _clock(window["start"])
    day = local_now.date()
    for _ in range(15):
        candidate = datetime.combine(day, start, tzinfo=local_now.tzinfo)
        if WEEKDAYS[day.weekday()] in window["business_days"] and candidate > local_now:
            return candidate.astimezone(UTC)
        day += timedelta(days=1)
    raise ValueError("the dialing window names no business day")


def plan_call(customer: dict[str, Any] | None, now: datetime, window: dict[str, Any]) -> CallPlan:
    """Call now, or not (with the reason and when a follow-up is due)."""
    utc_now = now.astimezone(UTC)
    if customer is None:
        return CallPlan(False, "customer not found in the CRM", next_opening(utc_now, window))
    zone = customer.get("timezone")
    try:
        if not isinstance(zone, str):
            raise ValueError("not a zone name")
        tz = ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        return CallPlan(False, f"unknown time zone {customer.get('timezone')!r}", next_opening(utc_now, window))
    local = utc_now.astimezone(tz)
    opening = next_opening(local, window)
    if not customer.get("phone"):
        return CallPlan(False, "no phone number on file", opening)
    if customer.get("doNotDisturb"):
        return CallPlan(False, "customer has do-not-disturb on", opening)
    inside = (WEEKDAYS[local.weekday()] in window["days"]
              and _clock(window["start"]) <= local.time() < _clock(window["end"]))
    if not inside:
        return CallPlan(False, f"outside the dialing window ({local:%a %H:%M} local)", opening)
    return CallPlan(True, f"inside the dialing window ({local:%a %H:%M} local)", opening)
