"""Enrich: entity -> business unit -> PagerDuty routing key (by env name) and diagnostic links.

An entity nobody mapped, or one whose business unit's routing-key variable is unset, is routed anyway,
with ``business_impact: unmapped`` and the default routing key: an event is never dropped because
enrichment failed. Such an alert carries ``config_audit`` (what is wrong, no secrets) so the task around
this stage raises the config-audit alert (``tasks.enrichment``); the stage itself stays pure.
"""

from __future__ import annotations

from typing import Any

from switchboard.stages import Alert, StageContext

UNMAPPED_ENTITY = "unmapped_entity"
ROUTING_KEY_ENV_UNSET = "routing_key_env_unset"


def enrich(alert: Alert, ctx: StageContext) -> Alert:
    mappings = ctx.config.mappings
    entity_id = alert.get("entity_id")
    entity = mappings["entities"].get(entity_id) if entity_id is not None else None
    out = dict(alert)
    if entity is None:
        return _unmapped(out, mappings, {"problem": UNMAPPED_ENTITY}, links=[])
    unit_name = entity["business_unit"]
    unit = mappings["business_units"][unit_name]
    if entity.get("name"):
        out["entity_name"] = entity["name"]
    links = [{"href": link["href"].replace("{entity_id}", str(entity_id)), "text": link["text"]}
             for link in unit["links"]]
    env_name = unit["pagerduty_routing_key_env"]
    if not ctx.env.get(env_name):
        # The unit's key is missing in this process: page with the default key rather than dead-letter.
        audit = {"problem": ROUTING_KEY_ENV_UNSET, "business_unit": unit_name, "routing_key_env": env_name}
        return _unmapped(out, mappings, audit, links=links)
    out["business_impact"] = unit_name
    out["routing_key_env"] = env_name
    out["links"] = links
    return out


def _unmapped(out: Alert, mappings: dict[str, Any], audit: dict[str, str], links: list[dict[str, str]]) -> Alert:
    out["business_impact"] = "unmapped"
    out["routing_key_env"] = mappings["default_routing_key_env"]
    out["links"] = links
    out["config_audit"] = audit
    return out
