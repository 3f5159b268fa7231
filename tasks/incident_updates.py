"""Incident updates: a beat task tells the vendor which entities were attached to a lead incident.

Alerts suppressed by the dependency graph or grouped into a business unit's incident are attached to the
lead incident in Redis; ``update_after_s`` after the first attachment of a batch, one update (a PagerDuty
trigger with the lead's dedup_key: PagerDuty adds it to the same incident) lists every attached entity.
Each update is its own ledger event (origin ``incident-update``) so the normal dispatch path applies:
rate limits, retries, dead letters, exactly-once per (event, target).
"""

from __future__ import annotations

import logging
import time

from switchboard.grouping import with_attachments
from tasks.app import app
from tasks.runtime import Runtime, runtime
from tasks.stage_tasks import fan_out

log = logging.getLogger("switchboard.incidents")
RETRY_LEAD_S = 5.0  # the lead has not been routed yet (its chain is still running): look again shortly


@app.task(name="switchboard.incident_updates")
def incident_updates() -> int:
    rt = runtime()
    return sum(send_update(rt, lead) for lead in rt.incidents.claim_due_updates(time.time()))


def send_update(rt: Runtime, lead_key: str) -> int:
    record = rt.incidents.get(lead_key)
    if not record or not record.get("alert"):
        rt.incidents.reschedule_update(lead_key, time.time() + RETRY_LEAD_S)
        return 0
    lead = record["alert"]
    if lead["status"] != "firing":
        log.info("incident %s resolved before its attachments were sent; no update", lead_key)
        return 0
    routes = [r for r in lead["routes"] if rt.config.targets.get(r["target"], {}).get("kind") == "pagerduty"]
    if not routes:
        return 0  # work items and calls are per device: nothing to update
    seq = rt.incidents.next_update_seq(lead_key)
    origin = lead["event_id"].split(".update")[0]
    event_id = f"{origin}.update{seq}"
    if not rt.ledger.accept_internal(event_id, lead["source"], "incident-update"):
        return 0
    attached = rt.incidents.attachments(lead_key)
    alert = {**with_attachments(lead, attached), "event_id": event_id, "routes": routes}
    rt.ledger.set_fields(event_id, alert_key=lead_key)
    rt.ledger.stage(event_id, "incident-update", time.time(), 0.0, result="ok", attached=len(attached))
    fan_out(alert)
    log.info("incident %s updated with %d attached entities", lead_key, len(attached),
             extra={"event_id": event_id, "alert_key": lead_key})
    return 1
