"""Beat task ``switchboard.reconcile``: compare local incident state with PagerDuty's and correct drift.

Every ``reconcile_every_s`` (service.yaml) it walks the incidents updated within ``reconcile_lookback_s``
whose routes include a ``pagerduty`` target, asks the REST API for the incident's status and applies what
``switchboard.reconcile.decide`` says: local corrections through ``IncidentStore.set_state``; re-sends
(a lost resolve or trigger) as a new ledger event ``reconcile-<alert_key>-<n>`` (origin ``reconcile``)
dispatched through ``switchboard.dispatch``, so rate limits, retries, dead letters and the accounting
(accepted == sum of outcomes) apply to them like to any webhook.

Never two runs at once (a Redis lock); an incident whose last event (a re-send included) is still in
flight is left for the next run; a record that changed while PagerDuty was asked is
left alone (the answer may describe the old state). Each correction is logged at INFO and counted in
``switchboard_reconcile_corrections_total{action}``.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from clients.http import VendorError
from clients.pagerduty_rest import PagerDutyRestClient
from switchboard.incidents import IncidentStore
from switchboard.logs import log_context
from switchboard.metrics import RECONCILE_CORRECTIONS
from switchboard.reconcile import Correction, decide, pagerduty_routes, resend_alert
from tasks.app import app
from tasks.dispatch import dead_letter
from tasks.runtime import Runtime, runtime
from tasks.vendors import NotConfigured

log = logging.getLogger("switchboard.reconcile")
ORIGIN = "reconcile"


@app.task(name="switchboard.reconcile")
def reconcile() -> dict[str, int]:
    """One reconciliation pass; returns counts (checked, each action, skipped-*, vendor_error)."""
    rt = runtime()
    every = rt.config.service["reconcile_every_s"]
    lock = f"{rt.keys.prefix}reconcile:lock"
    if not rt.redis.set(lock, "1", nx=True, ex=max(1, int(every))):
        return {"skipped-running": 1}
    try:
        try:
            client = rt.vendors.pagerduty_rest()
        except NotConfigured as exc:
            log.warning("reconciliation skipped: %s", exc.message)
            return {"skipped-not-configured": 1}
        # The store as the pipeline builds it (tasks.runtime): same prefix and TTL as the ledger.
        store = IncidentStore(rt.redis, rt.keys.prefix, rt.config.service["ledger_ttl_s"])
        return dict(_pass(rt, store, client))
    finally:
        rt.redis.delete(lock)


def _pass(rt: Runtime, store: IncidentStore, client: PagerDutyRestClient) -> Counter:
    counts: Counter = Counter()
    since = time.time() - rt.config.service["reconcile_lookback_s"]
    for alert_key in store.recent(since):
        record = store.get(alert_key)
        if not record or not pagerduty_routes(record.get("alert") or {}, rt.config.targets):
            continue
        if _in_flight(rt, record.get("event_id")):
            counts["skipped-in-flight"] += 1
            continue
        counts["checked"] += 1
        try:
            vendor_status = client.incident_status(alert_key)
        except VendorError as exc:
            counts["vendor_error"] += 1
            log.warning("reconciliation: PagerDuty did not answer for %s: %s", alert_key, exc)
            if exc.status in (401, 403, 429):
                break  # the same answer awaits every other incident: try again next run
            continue
        correction = decide(record, vendor_status)
        if correction is None:
            continue
        current = store.get(alert_key) or {}
        if current.get("updated_at") != record.get("updated_at"):
            counts["skipped-changed"] += 1  # changed while we asked: PagerDuty's answer may be about the old state
            continue
        with log_context(alert_key=alert_key, event_id=record.get("event_id"), source=record["alert"].get("source")):
            _apply(rt, store, alert_key, record, correction, vendor_status)
        counts[correction.action] += 1
    return counts


def _apply(rt: Runtime, store: IncidentStore, alert_key: str, record: dict[str, Any], correction: Correction,
           vendor_status: str | None) -> None:
    RECONCILE_CORRECTIONS.labels(correction.action).inc()
    if correction.local_state is not None:
        store.set_state(alert_key, correction.local_state, f"reconcile: {correction.reason}")
        log.info("reconcile %s: local %s -> %s (%s)", alert_key, record.get("state"), correction.local_state,
                 correction.reason, extra={"stage": ORIGIN, "outcome": correction.action})
        return
    event_id = resend(rt, store, alert_key, record, correction, vendor_status)
    log.info("reconcile %s: %s as event %s (%s)", alert_key, correction.action, event_id, correction.reason,
             extra={"stage": ORIGIN, "outcome": correction.action, "event_id": event_id})


def resend(rt: Runtime, store: IncidentStore, alert_key: str, record: dict[str, Any], correction: Correction,
           vendor_status: str | None) -> str:
    """Accept a synthetic event into the ledger (origin ``reconcile``) and dispatch it to the alert's
    PagerDuty routes, as the route stage fans a webhook's alert out; it becomes the incident's last event."""
    started = time.time()
    seq_key = f"{rt.keys.prefix}reconcile:seq:{alert_key}"
    n = rt.redis.incr(seq_key)
    rt.redis.expire(seq_key, rt.config.service["ledger_ttl_s"])
    event_id = f"reconcile-{alert_key}-{n}"
    routes = pagerduty_routes(record["alert"], rt.config.targets)
    received_at = datetime.fromtimestamp(started, UTC).isoformat().replace("+00:00", "Z")
    alert = {**resend_alert(record["alert"], correction, event_id, received_at), "routes": routes}
    rt.ledger.accept_internal(event_id, alert.get("source") or ORIGIN, ORIGIN)
    # routed: what the stalled sweep publishes again should a dispatch message be lost (Redis broker)
    rt.ledger.set_fields(event_id, reconciles=record.get("event_id") or "", alert_key=alert_key, routed=alert)
    rt.ledger.expect_targets(event_id, [r["target"] for r in routes])
    rt.ledger.stage(event_id, ORIGIN, started, (time.time() - started) * 1000, result=correction.action,
                    reason=correction.reason, vendor_status=vendor_status, local_state=record.get("state"))
    store.record_delivery(alert)  # in flight from now on: the next pass waits for its outcome
    published = 0
    try:
        for route in routes:
            app.signature("switchboard.dispatch", args=(alert, route), queue=f"dispatch.{route['priority']}"
                          ).apply_async(headers={"event_id": event_id})
            published += 1
    except Exception as exc:
        # The event must still end in one outcome: what was not published is dead-lettered (replayable).
        for route in routes[published:]:
            dead_letter(alert, route, {}, 0, f"reconcile could not publish: {type(exc).__name__}: {exc}",
                        notify=False)
        raise
    return event_id


def _in_flight(rt: Runtime, event_id: str | None) -> bool:
    """The event is in the ledger without an outcome yet (a dispatch still retrying, waiting for a slot...)."""
    if not event_id:
        return False
    key = rt.keys.ledger(event_id)
    return bool(rt.redis.exists(key)) and rt.redis.hget(key, "outcome") is None
