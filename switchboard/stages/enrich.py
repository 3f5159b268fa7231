"""Enrich: entity -> business unit -> PagerDuty routing key (by env name) and diagnostic links.

An entity nobody mapped is routed anyway, with ``business_impact: unmapped`` and the default routing
key: an event is never dropped because enrichment failed.
"""

from __future__ import annotations

from switchboard.stages import Alert, StageContext


def enrich(alert: Alert, ctx: StageContext) -> Alert:
    mappings = ctx.config.mappings
    entity = mappings["entities"].get(alert["entity_id"])
    out = dict(alert)
    if entity is None:
        out["business_impact"] = "unmapped"
        out["routing_key_env"] = mappings["default_routing_key_env"]
        out["links"] = []
        return out
    unit = mappings["business_units"][entity["business_unit"]]
    out["business_impact"] = entity["business_unit"]
    if entity.get("name"):
        out["entity_name"] = entity["name"]
    out["routing_key_env"] = unit["pagerduty_routing_key_env"]
    out["links"] = [{"href": link["href"].replace("{entity_id}", alert["entity_id"]), "text": link["text"]}
                    for link in unit["links"]]
    return out
