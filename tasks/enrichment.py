"""Enrich's I/O around the pure stage (``switchboard.stages.enrich``): the customer's CRM record warmed
into the shared cache, and the config-audit alert for an entity enrichment could not map.

Nothing here can fail or drop the event: a CRM error or timeout leaves the customer to the dispatch
(which asks again), and a Redis or broker error on the audit is logged. The alert gains non-secret facts
only (``customer_found``); contact data stays in the cache.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from switchboard.config_audit import ConfigAudit
from switchboard.metrics import CONFIG_AUDIT
from switchboard.stages import Alert, Outcome, StageContext
from switchboard.stages.enrich import UNMAPPED_ENTITY, enrich
from tasks.app import app
from tasks.customers import fetch_from_crm, lookup_customer
from tasks.runtime import Runtime, runtime

log = logging.getLogger("switchboard.enrich")
# After a CRM failure, enrich leaves lookups to the dispatch for this long, so an outage does not hold
# every ingest worker for a full CRM timeout per event (dispatch still asks, with its retries).
CRM_PAUSE_S = 30


class CRMPaused(Exception):
    """A recent CRM failure: enrich does not ask now."""


def enrich_stage(alert: Alert, ctx: StageContext) -> Alert | Outcome:
    """The enrich stage as the worker runs it: the pure stage, then its I/O."""
    result = enrich(alert, ctx)
    if isinstance(result, Outcome):
        return result
    return after_enrich(result, runtime())


def after_enrich(alert: Alert, rt: Runtime) -> Alert:
    out = dict(alert)
    customer_id = (alert.get("attributes") or {}).get("customer_id")
    if customer_id:
        out["customer_found"] = warm_customer(rt, str(customer_id))
    if alert.get("config_audit"):
        raise_config_audit(rt, alert)
    return out


def warm_customer(rt: Runtime, customer_id: str) -> bool | None:
    """Look the customer up through the cache so the dispatch finds it there: True/False when the CRM
    knows / does not know the id, None when the CRM could not be asked now."""
    paused = f"{rt.keys.prefix}crm-paused"

    def fetch(cid: str) -> dict[str, Any] | None:
        if rt.redis.exists(paused):
            raise CRMPaused
        return fetch_from_crm(rt, cid)

    try:
        return lookup_customer(rt, customer_id, caller="enrich", fetch=fetch) is not None
    except CRMPaused:
        return None
    except Exception as exc:  # noqa: BLE001 - a CRM (or Redis) failure must not stop the event
        log.warning("customer %s not looked up at enrich (dispatch will ask again): %s", customer_id, exc)
        try:
            rt.redis.set(paused, "1", ex=CRM_PAUSE_S)
        except Exception:  # noqa: BLE001 - Redis down too: nothing to remember it in
            pass
        return None


def raise_config_audit(rt: Runtime, alert: Alert) -> None:
    """Count the problem, record the entity, and tell a human once per entity per period (a Celery task)."""
    audit = alert["config_audit"]
    problem = audit["problem"]
    entity_id = str(alert.get("entity_id"))
    CONFIG_AUDIT.labels(problem).inc()
    log.warning("config audit: %s for entity %s (source %s); paged with the default routing key",
                problem, entity_id, alert.get("source"))
    try:
        store = ConfigAudit(rt.redis, rt.keys.prefix)
        store.record(entity_id, problem=problem, source=str(alert.get("source")), now=time.time(),
                     business_unit=audit.get("business_unit"))
        if store.claim_notification(entity_id, rt.config.mappings["audit_notify_every_s"]):
            # the chat channel only: a mapping to fix is not worth an on-call SMS
            app.signature("switchboard.notify", args=(audit_text(alert), None, ["slack"]),
                          queue="dispatch.default").apply_async()
    except Exception:  # noqa: BLE001 - the audit is a side effect: the event goes on without it
        log.exception("config audit for entity %s not recorded", entity_id)


def audit_text(alert: Alert) -> str:
    """The chat message (names of variables and units only: never a key's value)."""
    audit = alert["config_audit"]
    entity, source = alert.get("entity_id"), alert.get("source")
    if audit["problem"] == UNMAPPED_ENTITY:
        why = f"entity {entity!r} (source {source}) is not in config/mappings.yaml `entities`"
    else:
        why = (f"entity {entity!r} (source {source}) belongs to business unit {audit.get('business_unit')!r}, "
               f"whose routing key variable {audit.get('routing_key_env')} is unset")
    return (f"Switchboard config audit: {why}. Its alerts page with business_impact unmapped and the default "
            f"routing key ({alert.get('routing_key_env')}) until the mapping is fixed. "
            f"Example event {alert.get('event_id')}.")
