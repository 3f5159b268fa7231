"""Dead-letter replay: publish a dead-lettered dispatch (or pipeline stage) again, as it was.

The replay carries the original alert, so every idempotency key is the original one (PagerDuty
``dedup_key``, work item ``externalTag``, ``ztp_event_id``). The ledger reopens the target first, so the
event's single outcome is withdrawn and set again by the replayed dispatch: accepted == sum of outcomes
still holds once it finishes. The entry leaves the stream only after the publish succeeded.
"""

from __future__ import annotations

from typing import Any

from tasks.app import app
from tasks.pipeline import resume_signature
from tasks.runtime import Runtime


def replay_entry(rt: Runtime, entry: dict[str, Any]) -> str:
    """Re-publish one dead letter; returns what was done (for the CLI to print)."""
    event_id, target = entry["event_id"], entry["target"]
    if target.startswith("stage:"):
        stage = target.split(":", 1)[1]
        rt.ledger.reopen_target(event_id, "")
        resume_signature(app, stage, dict(entry["alert"])).apply_async()
        rt.dead_letters.delete(entry["id"])
        return f"replayed {event_id} from stage {stage}"
    route = entry.get("route") or {}
    if not route:
        return f"skipped {entry['id']}: no route recorded (written before replay support)"
    reopened = rt.ledger.reopen_target(event_id, target)
    # A dead-lettered dispatch's in-flight marker has been judged by the operator who replays it.
    rt.redis.delete(rt.keys.dispatch_state(event_id, target))
    app.signature("switchboard.dispatch", args=(entry["alert"], route),
                  queue=f"dispatch.{route.get('priority', 'default')}").apply_async()
    rt.dead_letters.delete(entry["id"])
    note = "" if reopened else " (its ledger entry had expired or was not dead-lettered: outcome not re-counted)"
    return f"replayed {event_id} to {target}{note}"
