"""What the configuration reference says about the keys of ``windows.yaml`` and ``alerting.yaml`` (and the
routing/mappings keys alert intelligence added): the words, as data, merged into ``config_texts.DESCRIPTIONS``."""

from __future__ import annotations

WINDOWS_AND_ALERTING: dict[str, str] = {
    # alerting.yaml
    "dedupe": "A sliding window on `alert_key`.",
    "dedupe.window_s": "The same alert_key with the same status again within this many seconds of the last report "
                       "(each repeat extends it) updates the open incident and ends `duplicate`.",
    "flapping": "Flapping and cooldown, per alert_key.",
    "flapping.cooldown_s": "A state change (firing <-> resolved) within this long of the last delivered one is held "
                           "(`deferred`); when the cooldown ends only the latest state (by the source's timestamp) "
                           "is delivered, and only if it differs from the delivered one.",
    "flapping.kinds": "Alert kinds whose state can flap (ZTP and IoT events are actions, not states).",
    "grouping": "Grouping of a business unit's alerts into one incident.",
    "grouping.window_s": "Groupable alerts of one business unit within this long of the group's first alert join "
                         "its incident (outcome `suppressed`, attached as context).",
    "grouping.kinds": "Alert kinds that group (work items and calls are per device, so only `health` by default).",
    "grouping.severities": "Severities that group; critical alerts always page on their own.",
    "grouping.update_after_s": "The lead incident is updated with the attached entities this long after the first "
                               "attachment of a batch (one PagerDuty event with the lead's dedup_key).",
    "storm": "Storm control: a business unit's alert count this hour against its baseline.",
    "storm.factor": "A storm is this hour's count above factor x baseline; during it the unit's group stays open "
                    "for as long as alerts keep coming.",
    "storm.min_baseline_per_hour": "The baseline is the mean of the past hours, never below this.",
    "storm.history_hours": "How many past hours the baseline averages.",
    "dependencies": "Dependency graph, parent entity -> the entities that fail because it failed (trunk -> "
                    "queues -> analytics): while a parent is firing its descendants' alerts are suppressed and "
                    "attached to its incident.",
    "rules[].suppress_for_s": "At most one firing alert per entity acts through this rule per window (e.g. one "
                              "call per sensor an hour), whatever the alert count; 0: no window.",
    # windows.yaml
    "maintenance": "Maintenance windows: alerts in scope are held (outcome `deferred`) and re-evaluated when the "
                   "window closes; resolved meanwhile, they end `suppressed`.",
    "maintenance[].name": "Window name, given as the reason of a hold.",
    "maintenance[].start": "Start of a one-off window (give `start` and `end`, or `recurrence`).",
    "maintenance[].end": "End of a one-off window, after `start`.",
    "maintenance[].recurrence": "A recurring window, instead of `start` and `end`.",
    "maintenance[].recurrence.rrule": "RFC 5545 recurrence rule, e.g. `FREQ=WEEKLY;BYDAY=SU`.",
    "maintenance[].recurrence.dtstart": "First occurrence; its wall-clock time repeats in `timezone`.",
    "maintenance[].recurrence.timezone": "IANA zone in which the wall-clock time repeats across DST, e.g. "
                                         "`America/New_York`.",
    "maintenance[].recurrence.duration_minutes": "Length of each occurrence.",
    "maintenance[].scope": "Which alerts the window holds: those matching any value listed under any key.",
    "maintenance[].scope.site": "Site ids (`attributes.site_id`).",
    "maintenance[].scope.entity": "Entity ids (`entity_id`).",
    "maintenance[].scope.business_unit": "Business units (from `mappings.yaml`).",
    "maintenance[].scope.source": "Source names.",
    "deferral": "How held events are released.",
    "deferral.max_hold_s": "Longest hold; then the event is re-evaluated anyway.",
    "dialing": "Outbound call policy (CONTRACTS.md, \"Calling hours\"): a call is placed only when the local time "
               "is inside the window in every candidate zone (the CRM's and the phone number's).",
    "dialing.default_window": "Local calling window of business units without their own.",
    "dialing.default_window.start": "Local start, HH:MM.",
    "dialing.default_window.end": "Local end, HH:MM (exclusive; windows do not cross midnight).",
    "dialing.federal_bound": "Outer bound no window may exceed (47 CFR 64.1200(c)(1)).",
    "dialing.federal_bound.start": "Earliest local time of any call, HH:MM.",
    "dialing.federal_bound.end": "Latest local time of any call, HH:MM (exclusive).",
    "dialing.max_calls_per_24h": "Calls per customer in any 24 h (unset: no cap); a state's cap can only lower it.",
    "dialing.business_units": "Local calling window per business unit (from `mappings.yaml`), instead of "
                              "`default_window`.",
    "dialing.business_units.<name>.start": "Local start, HH:MM.",
    "dialing.business_units.<name>.end": "Local end, HH:MM (exclusive).",
    "dialing.states": "Stricter rules per US state (two-letter code; the state from the CRM or the phone number).",
    "dialing.states.<name>.start": "The state's earliest local start (narrows the window, never widens it).",
    "dialing.states.<name>.end": "The state's latest local end (narrows the window, never widens it).",
    "dialing.states.<name>.max_calls_per_24h": "The state's cap; the smaller of it and the global cap applies.",
    "dialing.states.<name>.no_sundays": "No calls on Sundays (local).",
    "dialing.states.<name>.no_holidays": "No calls on the state's holidays (`holidays.US`).",
}
