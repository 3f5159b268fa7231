"""Releasing held events: a beat task drains the deferral store every few seconds.

A released event is looked at again: a firing alert resolved meanwhile (a resolve for the same
alert_key was held after it) ends ``suppressed``; anything else goes back to the stage that held it
(the gate, which holds it again if the window was extended). Releasing twice acts once: an event whose
outcome is no longer ``deferred`` (or missing) already went on.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from tasks.app import app
from tasks.pipeline import resume_signature
from tasks.runtime import Runtime, runtime

log = logging.getLogger("switchboard.deferral")


@app.task(name="switchboard.release_deferred")
def release_deferred() -> int:
    rt = runtime()
    entries = rt.deferrals.claim_due(time.time())
    for entry in entries:
        release(rt, entry)
    return len(entries)


def release(rt: Runtime, entry: dict[str, Any]) -> str:
    event_id, data = entry["event_id"], entry["data"]
    started = time.time()
    outcome = rt.ledger.outcome(event_id)
    if outcome not in (None, "deferred"):
        rt.deferrals.done(event_id)
        return "already-released"
    held_s = round(started - entry["held_at"], 3)
    if data.get("status") == "firing" and rt.deferrals.resolved_after(data["alert_key"], data["timestamp"]):
        rt.ledger.withdraw_outcome(event_id, "deferred")
        reason = f"resolved while held ({entry['reason']})"
        rt.ledger.stage(event_id, "release", started, 0.0, result="suppressed", reason=reason, held_s=held_s)
        rt.ledger.set_outcome(event_id, "suppressed", reason)
        rt.deferrals.done(event_id)
        return "suppressed"
    rt.ledger.withdraw_outcome(event_id, "deferred")
    rt.ledger.stage(event_id, "release", started, 0.0, result="released", held_s=held_s)
    resume_signature(app, entry["stage"], data).apply_async()
    rt.deferrals.done(event_id)
    log.info("released event %s after %.0f s", event_id, held_s)
    return "released"
