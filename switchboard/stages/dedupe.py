"""Dedupe: the receiver already dropped transport retries by idempotency key; this stage is where the
sliding window on ``alert_key`` (update the open incident instead of opening another) will live.

For now every alert passes; the named stage exists so traces, metrics and the chain have it.
"""

from __future__ import annotations

from switchboard.stages import Alert, Outcome, StageContext


def dedupe(alert: Alert, ctx: StageContext) -> Alert | Outcome:
    return alert
