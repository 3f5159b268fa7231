"""Control API of the sandbox under ``/_sandbox/``: read recorded requests, reset everything, script
faults and latency, set rate limits, inspect PagerDuty alert state, health. Meant for tests and demos.
Vendor-specific control endpoints live in their vendor's module (``/_sandbox/genesys/...``,
``/_sandbox/oauth/...``, ...). Fault and rate-limit names are vendors, plus ``genesys.token`` and
``cxone.token`` for the token endpoints."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request

from .common import get_state
from .pagerduty import alert_store

blueprint = Blueprint("sandbox_control", __name__, url_prefix="/_sandbox")

TRUE_VALUES = {"1", "true", "yes", "on"}


def _bad_request(message: str) -> tuple[Response, int]:
    return jsonify({"error": message}), 400


def _json_object() -> dict[str, Any] | None:
    body = request.get_json(silent=True)
    return body if isinstance(body, dict) else None


@blueprint.get("/health")
def health() -> Response:
    return jsonify({"status": "ok"})


@blueprint.get("/requests")
def list_requests() -> Response:
    """Recorded requests, filtered by ``vendor`` and ``path``; only accepted (2xx) unless ``all=1``."""
    include_rejected = request.args.get("all", "").lower() in TRUE_VALUES
    entries = get_state().recorder.entries(
        vendor=request.args.get("vendor"), path=request.args.get("path"), include_rejected=include_rejected
    )
    return jsonify(entries)


@blueprint.delete("/requests")
def reset() -> Response:
    """Forget records, faults, rate-limit windows and overrides, and vendor state (e.g. alerts)."""
    get_state().reset()
    return jsonify({"status": "reset"})


@blueprint.get("/faults/<vendor>")
def get_faults(vendor: str) -> Response:
    return jsonify(get_state().faults.describe(vendor))


@blueprint.post("/faults/<vendor>")
def set_faults(vendor: str) -> Response | tuple[Response, int]:
    """Merge ``{script, failure_rate, failure_status, latency_ms, latency_after_ms, seed}`` into the vendor's
    faults. ``latency_ms`` is slept before handling a request, ``latency_after_ms`` after handling (and
    recording) it, before answering. Script entries: ``{status, count?, retry_after?, body?, latency_ms?,
    latency_after_ms?}`` or ``{"pass": true, count?, latency_ms?, latency_after_ms?}`` (handled normally)."""
    spec = _json_object()
    if spec is None:
        return _bad_request("body must be a JSON object")
    try:
        return jsonify(get_state().faults.configure(vendor, spec))
    except ValueError as exc:
        return _bad_request(str(exc))


@blueprint.delete("/faults/<vendor>")
def clear_faults(vendor: str) -> Response:
    get_state().faults.clear(vendor)
    return jsonify(get_state().faults.describe(vendor))


@blueprint.get("/ratelimit/<vendor>")
def get_ratelimit(vendor: str) -> Response:
    return jsonify(get_state().limits.config(vendor))


@blueprint.post("/ratelimit/<vendor>")
def set_ratelimit(vendor: str) -> Response | tuple[Response, int]:
    """Set ``{"limit": int >= 1, "window_s": number > 0}`` for every key of the vendor."""
    spec = _json_object()
    if spec is None or set(spec) != {"limit", "window_s"}:
        return _bad_request('body must be {"limit": <int>, "window_s": <number>}')
    try:
        return jsonify(get_state().limits.configure(vendor, spec["limit"], spec["window_s"]))
    except ValueError as exc:
        return _bad_request(str(exc))


@blueprint.get("/pagerduty/alerts")
def pagerduty_alerts() -> Response:
    """Alerts oldest first, optionally filtered by ``routing_key``, ``dedup_key``, ``status``."""
    args = request.args
    return jsonify(
        alert_store().alerts(
            routing_key=args.get("routing_key"), dedup_key=args.get("dedup_key"), status=args.get("status")
        )
    )


@blueprint.get("/pagerduty/orphans")
def pagerduty_orphans() -> Response:
    """Acknowledge/resolve events that matched no open alert."""
    return jsonify(alert_store().orphans())
