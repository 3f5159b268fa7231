"""PagerDuty Events API v2 emulator: ``POST /v2/enqueue`` and ``POST /v2/change/enqueue``.

Pipeline per request: injected latency/faults -> 512 KB limit (413) -> JSON content type (415) and body
(400) -> JSON Schema Draft 2020-12 (400 with every error) -> rate limit per routing_key (429 +
Retry-After, default 120 per 60 s sliding window) -> 202. Every answer is recorded; accepted events
update the alert state (see ``pagerduty_alerts``)."""

from __future__ import annotations

import uuid
from typing import Any

from flask import Blueprint, Response

from .common import SandboxState, answer, get_state, injected_fault, read_json_request, throttled
from .pagerduty_alerts import AlertStore
from .schemas import load_spec, make_validator, schema_errors

VENDOR = "pagerduty"
MAX_BODY_BYTES = 512 * 1024
DEFAULT_LIMIT = 120
DEFAULT_WINDOW_S = 60.0
ALERTS_STORE = "pagerduty.alerts"

EVENT_VALIDATOR = make_validator(load_spec("pagerduty-events-v2.schema.json"))
CHANGE_EVENT_VALIDATOR = make_validator(
    {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "PagerDuty Events API v2 change event",
        "type": "object",
        "required": ["routing_key", "payload"],
        "properties": {
            "routing_key": {"type": "string", "minLength": 1},
            "payload": {
                "type": "object",
                "required": ["summary"],
                "properties": {
                    "summary": {"type": "string", "minLength": 1, "maxLength": 1024},
                    "source": {"type": "string", "minLength": 1},
                    "timestamp": {"type": "string", "format": "date-time"},
                    "custom_details": {"type": "object"},
                },
            },
            "links": {
                "type": "array",
                "items": {"type": "object", "required": ["href"], "properties": {"href": {"type": "string"}}},
            },
        },
    }
)
THROTTLE_BODY = {
    "status": "throttle event",
    "message": "Requests for this service are arriving too quickly. Please retry later.",
}

blueprint = Blueprint("pagerduty", __name__)


def init_state(state: SandboxState) -> None:
    """Register PagerDuty's default rate limit and its alert store on a fresh sandbox state."""
    state.limits.set_default(VENDOR, DEFAULT_LIMIT, DEFAULT_WINDOW_S)
    state.stores.setdefault(ALERTS_STORE, AlertStore())


def alert_store(state: SandboxState | None = None) -> AlertStore:
    """The PagerDuty alert store of ``state`` (default: the current app's)."""
    store = (state or get_state()).stores[ALERTS_STORE]
    assert isinstance(store, AlertStore)
    return store


def _invalid(status: int, errors: list[str], json_body: Any) -> Response:
    body = {"status": "invalid event", "message": "Event object is invalid", "errors": errors}
    return answer(VENDOR, status, body, json_body=json_body)


def _checked_event(validator: Any) -> tuple[dict[str, Any], None] | tuple[None, Response]:
    """The valid, non-throttled event, or the (recorded) rejection to send instead."""
    received = read_json_request(MAX_BODY_BYTES)
    fault = injected_fault(VENDOR, received.body)
    if fault is not None:
        return None, fault
    if received.error_status is not None:
        return None, _invalid(received.error_status, [received.error or "invalid request"], received.body)
    errors = schema_errors(validator, received.body)
    if errors:
        return None, _invalid(400, errors, received.body)
    limited = throttled(VENDOR, received.body["routing_key"], received.body, THROTTLE_BODY)
    if limited is not None:
        return None, limited
    return received.body, None


@blueprint.post("/v2/enqueue")
def enqueue() -> Response:
    event, rejection = _checked_event(EVENT_VALIDATOR)
    if event is None:
        return rejection
    dedup_key = event.get("dedup_key") or uuid.uuid4().hex
    summary = (event.get("payload") or {}).get("summary")
    alert_store().apply(event["routing_key"], dedup_key, event["event_action"], summary=summary)
    body = {"status": "success", "message": "Event processed", "dedup_key": dedup_key}
    return answer(VENDOR, 202, body, json_body=event)


@blueprint.post("/v2/change/enqueue")
def change_enqueue() -> Response:
    event, rejection = _checked_event(CHANGE_EVENT_VALIDATOR)
    if event is None:
        return rejection
    return answer(VENDOR, 202, {"status": "success", "message": "Change event processed"}, json_body=event)
