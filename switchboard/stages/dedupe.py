"""Dedupe: a sliding window on ``alert_key``.

The receiver already dropped transport retries by idempotency key. Here the same problem reported
again (a new webhook id, a retrying orchestrator, a sensor repeating itself) with the same status
within ``alerting.dedupe.window_s`` of the last report updates the open incident (its count and last
value) and ends ``duplicate`` instead of acting again; each repeat slides the window. A report older
(by the source's timestamp) than one already seen arrived out of order and ends ``suppressed``.
"""

from __future__ import annotations

from switchboard.stages import Alert, Outcome, StageContext


def dedupe(alert: Alert, ctx: StageContext) -> Alert | Outcome:
    window = ctx.config.alerting["dedupe"]["window_s"]
    if ctx.incidents is None or window <= 0:
        return alert
    seen = ctx.incidents.observe(alert, window, ctx.now)
    if seen is None:
        return alert
    kind, other = seen
    if kind == "stale":
        return Outcome("suppressed", f"out of order: a newer report of this alert (event {other}) was already seen")
    return Outcome("duplicate", f"same {alert['status']} alert within {window} s: merged into the incident "
                                f"of event {other}")
