"""Liveness (``/healthz``: the process answers), readiness (``/readyz``: broker and Redis reachable) and
``/metrics`` (Prometheus text: this receiver's counters, plus DLQ/deferred/outcome gauges from Redis)."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify

from switchboard.dead_letters import DeadLetters
from switchboard.deferrals import Deferrals
from switchboard.metrics import StateCollector, exposition
from switchboard.rate_limit_state import read_schedules

health_bp = Blueprint("health", __name__)


@health_bp.get("/healthz")
def healthz():
    return jsonify(status="ok")


@health_bp.get("/readyz")
def readyz():
    state = current_app.extensions["switchboard"]
    checks: dict[str, str] = {}
    try:
        state.redis.ping()
        checks["redis"] = "ok"
    except Exception as exc:  # noqa: BLE001 - any failure means not ready; say which
        checks["redis"] = f"down: {type(exc).__name__}"
    try:
        with state.celery.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=2)
        checks["broker"] = "ok"
    except Exception as exc:  # noqa: BLE001
        checks["broker"] = f"down: {type(exc).__name__}"
    ready = all(v == "ok" for v in checks.values())
    # accepted events waiting for the broker to come back (webhook_app/late_publish.py)
    response = jsonify(status="ready" if ready else "not ready", checks=checks,
                       late_publishes_pending=state.late.pending())
    response.status_code = 200 if ready else 503
    if not ready:
        response.headers["Retry-After"] = str(state.config.service["retry_after_s"])
    return response


@health_bp.get("/metrics")
def metrics() -> Response:
    state = current_app.extensions["switchboard"]
    collector = StateCollector(DeadLetters(state.redis, state.keys), Deferrals(state.redis, state.settings.key_prefix),
                               state.ledger, lambda: read_schedules(state.redis, state.settings.key_prefix,
                                                                    state.config.vendors["rate_limits"]))
    body, content_type = exposition(collector)
    return Response(body, content_type=content_type)
