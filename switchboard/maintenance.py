"""Maintenance windows: is this alert, at this instant, inside a window that covers it, and until when?

Pure logic (the gate stage calls it with the config and an injected ``now``). One-off windows are
absolute instants; recurring ones are an RFC 5545 RRULE (python-dateutil, a well-kept parser) expanded
in a named zone, so "Sundays 02:00 New York" stays 02:00 local across DST.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil.rrule import rrulestr


@dataclass(frozen=True)
class Hold:
    window: str
    until: datetime  # UTC


def in_scope(alert: dict[str, Any], scope: dict[str, Any]) -> bool:
    """True if the alert matches any of the scope's lists (site, entity, business unit, source)."""
    values = {"site": (alert.get("attributes") or {}).get("site_id"), "entity": alert.get("entity_id"),
              "business_unit": alert.get("business_impact"), "source": alert.get("source")}
    return any(values[k] in (scope.get(k) or ()) for k in values)


def _rule(recurrence: dict[str, Any]):  # noqa: ANN202 - dateutil's rrule
    tz = ZoneInfo(recurrence["timezone"])
    # Expand on naive wall-clock times in the zone, then localise each occurrence: the local time repeats.
    dtstart = recurrence["dtstart"].astimezone(tz).replace(tzinfo=None)
    return rrulestr(recurrence["rrule"], dtstart=dtstart), tz


def recurrence_problem(recurrence: dict[str, Any]) -> str | None:
    """Why a recurrence cannot be used (for config validation), or None."""
    try:
        _rule(recurrence)
    except ZoneInfoNotFoundError:
        return f"unknown time zone {recurrence.get('timezone')!r}"
    except (ValueError, TypeError) as exc:
        return f"not a valid RRULE: {exc}"
    return None


def window_end(window: dict[str, Any], now: datetime) -> datetime | None:
    """The UTC end of the window's occurrence that contains ``now``, or None if it is not active."""
    if window.get("recurrence") is None:
        return window["end"].astimezone(UTC) if window["start"] <= now < window["end"] else None
    recurrence = window["recurrence"]
    rule, tz = _rule(recurrence)
    duration = timedelta(minutes=recurrence["duration_minutes"])
    local_now = now.astimezone(tz).replace(tzinfo=None)
    # The occurrence that could contain now started at most `duration` ago (local wall time, +1 h for DST).
    for start in rule.between(local_now - duration - timedelta(hours=1), local_now, inc=True):
        begins = start.replace(tzinfo=tz).astimezone(UTC)
        ends = begins + duration
        if begins <= now < ends:
            return ends
    return None


def active_hold(alert: dict[str, Any], windows: list[dict[str, Any]], now: datetime) -> Hold | None:
    """The covering window that ends last (windows may overlap), or None."""
    holds = [Hold(w["name"], end) for w in windows if in_scope(alert, w["scope"])
             if (end := window_end(w, now)) is not None]
    return max(holds, key=lambda h: h.until) if holds else None
