"""ZTP orchestrator emulator (vendor ``orchestrator``): the resolution callback of seed 000.

``POST /api/v1/events/resolutions``: injected latency/faults -> ``X-Api-Key`` (401 ``invalid api key``) ->
rate limit per key (429 + Retry-After, 600 per 60 s) -> JSON body (413/415/400) -> schema (400 with every
error; fields are closed) -> the first resolution of a ``ztp_event_id`` is stored, 200 ``accepted``; a
repeat answers 200 ``duplicate`` and is not stored again.

Control: ``GET /_sandbox/orchestrator/resolutions`` -> ``{"resolutions": [...], "received": <valid posts>,
"duplicates": <repeats>}``; ``PUT /_sandbox/orchestrator/config`` ``{"api_key": "..."}`` changes the key."""

from __future__ import annotations

import copy
import threading
from typing import Any

from flask import Blueprint, Response, jsonify, request

from .common import SandboxState, answer, get_state, injected_fault, now_iso, read_json_request, throttled
from .credentials import ORCHESTRATOR_API_KEY
from .schemas import make_validator, schema_errors

VENDOR = "orchestrator"
STORE = "orchestrator.resolutions"
MAX_BODY_BYTES = 512 * 1024
DEFAULT_LIMIT, DEFAULT_WINDOW_S = 600, 60.0
TEXT = {"type": "string", "minLength": 1}

RESOLUTION_VALIDATOR = make_validator(
    {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "ZTP orchestrator resolution",
        "type": "object",
        "additionalProperties": False,
        "required": [
            "ztp_event_id",
            "resolution_status",
            "resolution_code",
            "agent_id",
            "resolved_at",
            "device_mac",
            "orchestrator_action",
        ],
        "properties": {
            "ztp_event_id": TEXT,
            "resolution_status": TEXT,
            "resolution_code": TEXT,
            "agent_id": {"type": ["string", "null"]},
            "resolved_at": {"type": "string", "format": "date-time-offset"},
            "device_mac": TEXT,
            "orchestrator_action": TEXT,
        },
    }
)

blueprint = Blueprint("orchestrator", __name__)


class ResolutionStore:
    """Thread-safe first resolution per ``ztp_event_id`` (arrival order), counts of valid posts and repeats;
    also the accepted API key (``clear`` restores the default)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._resolutions: dict[str, dict[str, Any]] = {}
        self._received = 0
        self._duplicates = 0
        self.api_key = ORCHESTRATOR_API_KEY

    def add(self, resolution: dict[str, Any]) -> bool:
        """Count one valid post; True if it is the first for its ``ztp_event_id`` (then it is stored)."""
        with self._lock:
            self._received += 1
            event_id = resolution["ztp_event_id"]
            if event_id in self._resolutions:
                self._duplicates += 1
                return False
            self._resolutions[event_id] = {**copy.deepcopy(resolution), "received_at": now_iso()}
            return True

    def describe(self) -> dict[str, Any]:
        with self._lock:
            resolutions = copy.deepcopy(list(self._resolutions.values()))
            return {"resolutions": resolutions, "received": self._received, "duplicates": self._duplicates}

    def clear(self) -> None:
        with self._lock:
            self._resolutions.clear()
            self._received = self._duplicates = 0
            self.api_key = ORCHESTRATOR_API_KEY


def init_state(state: SandboxState) -> None:
    """Register the orchestrator's rate limit and resolution store on a fresh sandbox state."""
    state.limits.set_default(VENDOR, DEFAULT_LIMIT, DEFAULT_WINDOW_S)
    state.stores.setdefault(STORE, ResolutionStore())


def resolution_store(state: SandboxState | None = None) -> ResolutionStore:
    found = (state or get_state()).stores[STORE]
    assert isinstance(found, ResolutionStore)
    return found


@blueprint.post("/api/v1/events/resolutions")
def resolutions() -> Response:
    received = read_json_request(MAX_BODY_BYTES)
    fault = injected_fault(VENDOR, received.body, fault_body=lambda status: {"error": f"injected HTTP {status}"})
    if fault is not None:
        return fault
    resolutions = resolution_store()
    api_key = request.headers.get("X-Api-Key")
    if api_key != resolutions.api_key:
        return answer(VENDOR, 401, {"error": "invalid api key"}, json_body=received.body)
    limited = throttled(VENDOR, api_key, received.body, {"error": "rate limited"})
    if limited is not None:
        return limited
    if received.error_status is not None:
        body = {"error": received.error, "errors": [received.error]}
        return answer(VENDOR, received.error_status, body, json_body=received.body)
    errors = schema_errors(RESOLUTION_VALIDATOR, received.body)
    if errors:
        return answer(VENDOR, 400, {"error": "invalid resolution", "errors": errors}, json_body=received.body)
    event_id = received.body["ztp_event_id"]
    status = "accepted" if resolutions.add(received.body) else "duplicate"
    return answer(VENDOR, 200, {"status": status, "ztp_event_id": event_id}, json_body=received.body)


@blueprint.get("/_sandbox/orchestrator/resolutions")
def sandbox_resolutions() -> Response:
    return jsonify(resolution_store().describe())


@blueprint.put("/_sandbox/orchestrator/config")
def sandbox_config() -> Response | tuple[Response, int]:
    spec = request.get_json(silent=True)
    if not isinstance(spec, dict) or set(spec) != {"api_key"} or not isinstance(spec["api_key"], str):
        return jsonify({"error": 'body must be {"api_key": "<non-empty string>"}'}), 400
    if not spec["api_key"]:
        return jsonify({"error": "api_key must not be empty"}), 400
    resolution_store().api_key = spec["api_key"]
    return jsonify({"api_key": spec["api_key"]})
