"""``switchboard incidents``: where is the incident for trunk X? Each alert_key's state machine, last
delivered status, how many reports it merged and which entities are attached to it (storms, dependencies)."""

from __future__ import annotations

import json
import time

import click


def incident_rows(store, since: float, entity: str | None) -> list[dict]:  # noqa: ANN001 - IncidentStore
    rows = []
    for alert_key in reversed(store.recent(since)):
        record = store.get(alert_key)
        if not record or (entity and record.get("entity_id") != entity):
            continue
        alert = record.get("alert") or {}
        rows.append({"alert_key": alert_key, "entity_id": record.get("entity_id") or alert.get("entity_id"),
                     "state": record.get("state"), "status": record.get("status"),
                     "metric_type": alert.get("metric_type"), "last_event": record.get("event_id"),
                     "reports": int(record.get("count") or 0), "attached": store.attachments(alert_key),
                     "updated_at": float(record.get("updated_at") or 0), "reason": record.get("state_reason")})
    return rows


@click.command()
@click.option("--entity", default=None, help="Only this entity's incidents (e.g. a trunk id).")
@click.option("--hours", default=24.0, show_default=True, help="Incidents updated within this many hours.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def incidents(entity: str | None, hours: float, as_json: bool) -> None:
    """Incidents by alert_key, most recent first: state, status, merged reports, attached entities."""
    from switchboard.cli import _worker_runtime

    rt = _worker_runtime()
    rows = incident_rows(rt.incidents, time.time() - hours * 3600, entity)
    if as_json:
        click.echo(json.dumps(rows, sort_keys=True))
        return
    if not rows:
        click.echo("no incidents")
        return
    click.echo(f"{'UPDATED (UTC)':<19}  {'ENTITY':<28} {'METRIC':<18} {'STATE':<12} {'REPORTS':>7} {'ATTACHED':>8}  "
               f"ALERT_KEY")
    for r in rows:
        updated = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(r["updated_at"]))
        click.echo(f"{updated:<19}  {str(r['entity_id']):<28} {str(r['metric_type']):<18} {str(r['state']):<12} "
                   f"{r['reports']:>7} {len(r['attached']):>8}  {r['alert_key']}")
