"""Gate: hold alerts inside a maintenance window that covers them until the window closes.

A held alert ends this pass as ``deferred`` with the release time; the deferral store gives it back to
this stage when the window closes, so a window extended meanwhile holds it again. Dialing windows are
applied at dispatch (they decide between a call and a scheduled work item, not whether to act), and
flapping / storm suppression belong to the alert-intelligence work.
"""

from __future__ import annotations

from datetime import UTC, datetime

from switchboard.maintenance import active_hold
from switchboard.stages import Alert, Outcome, StageContext


def gate(alert: Alert, ctx: StageContext) -> Alert | Outcome:
    now = datetime.fromtimestamp(ctx.now, UTC)
    hold = active_hold(alert, ctx.config.windows.get("maintenance", []), now)
    if hold is None:
        return alert
    until = hold.until.isoformat().replace("+00:00", "Z")
    return Outcome("deferred", f"maintenance window {hold.window} until {until}", release_at=hold.until.timestamp())
