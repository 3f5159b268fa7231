"""Genesys Cloud CX emulator (vendor ``genesys``): OAuth client-credentials token, task management work
items (create, query), callbacks, queue observation statistics.

- ``POST /oauth/token``: Basic ``client_id:client_secret``, form ``grant_type=client_credentials`` -> 200
  ``{access_token, token_type: "bearer", expires_in}``; 401 ``invalid_client``; 400 ``unsupported_grant_type``.
  Faults and rate limit (300 per 60 s per client) live under the name ``genesys.token``.
- API (``/api/v2/...``): injected latency/faults -> Bearer token (401 ``authentication.required``) -> rate
  limit per client (429 + Retry-After, 3000 per 60 s) -> 512000-byte body (413), JSON (415/400) -> schema
  (400 ``bad.request`` with every error in ``details``) -> action -> 200.
- Control: ``GET /_sandbox/genesys/workitems``, ``GET /_sandbox/genesys/callbacks``,
  ``GET /_sandbox/genesys/queues``, ``PUT /_sandbox/genesys/queues/<queueId>`` ``{"oWaiting": 3, ...}``."""

from __future__ import annotations

import copy
import threading
import uuid
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, jsonify, request

from . import oauth
from .common import (
    FORM_MIMETYPE,
    SandboxState,
    answer,
    get_state,
    injected_fault,
    now_iso,
    read_json_request,
    throttled,
)
from .credentials import GENESYS_CLIENT_ID, GENESYS_CLIENT_SECRET
from .genesys_schemas import (
    CREATE_CALLBACK_VALIDATOR,
    OBSERVATION_METRICS,
    OBSERVATION_QUERY_VALIDATOR,
    WORKITEM_CREATE_VALIDATOR,
    WORKITEM_QUERY_VALIDATOR,
)
from .schemas import schema_errors

VENDOR = "genesys"
TOKEN_NAMESPACE = "genesys.token"
STORE = "genesys.objects"
MAX_BODY_BYTES = 512_000
DEFAULT_LIMIT, DEFAULT_WINDOW_S = 3000, 60.0
TOKEN_LIMIT, TOKEN_WINDOW_S = 300, 60.0
DEFAULT_EXPIRES_IN = 86399
UNAUTHORIZED = {"message": "Authentication required", "code": "authentication.required", "status": 401}
ERROR_CODES = {400: "bad.request", 413: "request.entity.too.large", 415: "unsupported.media.type"}

blueprint = Blueprint("genesys", __name__)


class GenesysStore:
    """Thread-safe created work items and callbacks (oldest first) and the per-queue observation table."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._workitems: list[dict[str, Any]] = []
        self._callbacks: list[dict[str, Any]] = []
        self._queues: dict[str, dict[str, int]] = {}

    def add_workitem(self, item: dict[str, Any]) -> None:
        with self._lock:
            self._workitems.append(copy.deepcopy(item))

    def workitems(self) -> list[dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(self._workitems)

    def query(self, filters: list[dict[str, Any]], page_size: int) -> list[dict[str, Any]]:
        """Work items matching every filter (EQ: the single value, IN: any value), oldest first."""

        def matches(item: dict[str, Any]) -> bool:
            return all(item.get(f["name"]) in f["values"] for f in filters)

        with self._lock:
            return copy.deepcopy([item for item in self._workitems if matches(item)][:page_size])

    def add_callback(self, callback: dict[str, Any]) -> None:
        with self._lock:
            self._callbacks.append(copy.deepcopy(callback))

    def callbacks(self) -> list[dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(self._callbacks)

    def set_queue(self, queue_id: str, values: dict[str, int]) -> dict[str, int]:
        with self._lock:
            table = self._queues.setdefault(queue_id, {})
            table.update(values)
            return dict(table)

    def queues(self) -> dict[str, dict[str, int]]:
        with self._lock:
            return copy.deepcopy(self._queues)

    def observation(self, queue_id: str, metric: str) -> int:
        with self._lock:
            return self._queues.get(queue_id, {}).get(metric, 0)

    def clear(self) -> None:
        with self._lock:
            self._workitems.clear()
            self._callbacks.clear()
            self._queues.clear()


def init_state(state: SandboxState) -> None:
    """Register Genesys' rate limits, OAuth defaults and object store on a fresh sandbox state."""
    state.limits.set_default(VENDOR, DEFAULT_LIMIT, DEFAULT_WINDOW_S)
    state.limits.set_default(TOKEN_NAMESPACE, TOKEN_LIMIT, TOKEN_WINDOW_S)
    state.stores.setdefault(STORE, GenesysStore())
    defaults = oauth.OAuthDefaults(
        VENDOR, GENESYS_CLIENT_ID, GENESYS_CLIENT_SECRET, DEFAULT_EXPIRES_IN, unauthorized_body=UNAUTHORIZED
    )
    oauth.register(state, defaults)


def store(state: SandboxState | None = None) -> GenesysStore:
    """The Genesys object store of ``state`` (default: the current app's)."""
    found = (state or get_state()).stores[STORE]
    assert isinstance(found, GenesysStore)
    return found


def error_body(status: int, message: str, code: str | None = None, details: list[Any] | None = None) -> dict[str, Any]:
    """Genesys' error body: ``{message, code, status, contextId, details}``."""
    code = code or ERROR_CODES.get(status) or ("internal.server.error" if status >= 500 else "bad.request")
    body = {"message": message, "code": code, "status": status, "contextId": str(uuid.uuid4())}
    return {**body, "details": details or []}


def _fault_body(status: int) -> dict[str, Any]:
    code = "service.unavailable" if status == 503 else None
    return error_body(status, f"Sandbox injected fault: HTTP {status}", code)


def _throttle_body(retry_after: int) -> dict[str, Any]:
    message = f"Rate limit exceeded the maximum. Retry the request in [{retry_after}] seconds"
    return {"message": message, "code": "too.many.requests.retry.after", "status": 429}


def _token_error(status: int, error: str, description: str) -> Response:
    return answer(VENDOR, status, {"error": error, "description": description, "error_description": description})


@blueprint.post("/oauth/token")
@oauth.counted_token_endpoint(VENDOR)
def token() -> Response:
    credentials, early = oauth.token_request_start(VENDOR, TOKEN_NAMESPACE, _fault_body, _throttle_body)
    if early is not None:
        return early
    registry = oauth.registry()
    if registry.take_failure(VENDOR):
        return _token_error(401, "invalid_client", "client credentials rejected (sandbox fail)")
    if credentials is None or not registry.client_ok(VENDOR, *credentials):
        return _token_error(401, "invalid_client", "client not found or secret mismatch (Basic auth required)")
    if request.mimetype != FORM_MIMETYPE:
        return _token_error(400, "invalid_request", f"Content-Type must be {FORM_MIMETYPE}")
    grant_type = request.form.get("grant_type")
    if grant_type != "client_credentials":
        return _token_error(400, "unsupported_grant_type", f"grant_type {grant_type!r} is not client_credentials")
    access_token, expires_in = registry.issue(VENDOR, credentials[0])
    return answer(VENDOR, 200, {"access_token": access_token, "token_type": "bearer", "expires_in": expires_in})


Check = Callable[[dict[str, Any]], list[str]]


def _checked_body(validator: Any, check: Check | None = None) -> tuple[dict[str, Any], None] | tuple[None, Response]:
    """The authorized, non-throttled, valid JSON body (schema, then ``check`` for rules a schema cannot say
    readably), or the (recorded) rejection to send instead."""
    received = read_json_request(MAX_BODY_BYTES)
    fault = injected_fault(VENDOR, received.body, fault_body=_fault_body)
    if fault is not None:
        return None, fault
    bearer, rejection = oauth.require_bearer(VENDOR, received.body)
    if bearer is None:
        return None, rejection
    limited = throttled(VENDOR, bearer.client_id, received.body, _throttle_body)
    if limited is not None:
        return None, limited
    if received.error_status is not None:
        message = received.error or "invalid request"
        body = error_body(received.error_status, message, details=[message])
        return None, answer(VENDOR, received.error_status, body, json_body=received.body)
    errors = schema_errors(validator, received.body)
    if not errors and check is not None:
        errors = check(received.body)
    if errors:
        return None, answer(VENDOR, 400, error_body(400, "; ".join(errors), details=errors), json_body=received.body)
    return received.body, None


def _single_eq_values(body: dict[str, Any]) -> list[str]:
    return [
        f"$.filters[{i}].values: operator EQ takes exactly one value"
        for i, f in enumerate(body["filters"])
        if f["operator"] == "EQ" and len(f["values"]) != 1
    ]


def _queue_or_routing_data(body: dict[str, Any]) -> list[str]:
    if "queueId" in body or "routingData" in body:
        return []
    return ["$: either 'queueId' or 'routingData' is required"]


def _queue_predicate(body: dict[str, Any]) -> list[str]:
    return [] if _queue_ids(body["filter"]) else ["$.filter: needs at least one predicate on dimension 'queueId'"]


@blueprint.post("/api/v2/taskmanagement/workitems")
def create_workitem() -> Response:
    body, rejection = _checked_body(WORKITEM_CREATE_VALIDATOR)
    if body is None:
        return rejection
    item_id = str(uuid.uuid4())
    item = {**body, "id": item_id, "dateCreated": now_iso(), "selfUri": f"/api/v2/taskmanagement/workitems/{item_id}"}
    store().add_workitem(item)
    return answer(VENDOR, 200, item, json_body=body)


@blueprint.post("/api/v2/taskmanagement/workitems/query")
def query_workitems() -> Response:
    body, rejection = _checked_body(WORKITEM_QUERY_VALIDATOR, _single_eq_values)
    if body is None:
        return rejection
    entities = store().query(body["filters"], body.get("pageSize", 25))
    return answer(VENDOR, 200, {"entities": entities, "count": len(entities)}, json_body=body)


@blueprint.post("/api/v2/conversations/callbacks")
def create_callback() -> Response:
    body, rejection = _checked_body(CREATE_CALLBACK_VALIDATOR, _queue_or_routing_data)
    if body is None:
        return rejection
    conversation_id, callback_id = str(uuid.uuid4()), str(uuid.uuid4())
    result = {
        "conversation": {"id": conversation_id, "selfUri": f"/api/v2/conversations/{conversation_id}"},
        "callbackIdentifiers": [{"type": "EXTERNAL", "id": callback_id}],
    }
    store().add_callback({**body, **result, "conversationId": conversation_id, "dateCreated": now_iso()})
    return answer(VENDOR, 200, result, json_body=body)


def _queue_ids(filter_: dict[str, Any]) -> list[str]:
    """The ``queueId`` predicate values of a filter and its clauses, in order, without repeats."""
    predicates = list(filter_.get("predicates", []))
    for clause in filter_.get("clauses", []):
        predicates.extend(clause["predicates"])
    values = [p["value"] for p in predicates if p["dimension"] == "queueId"]
    return list(dict.fromkeys(values))


@blueprint.post("/api/v2/analytics/queues/observations/query")
def queue_observations() -> Response:
    body, rejection = _checked_body(OBSERVATION_QUERY_VALIDATOR, _queue_predicate)
    if body is None:
        return rejection
    objects = store()
    results = [
        {
            "group": {"queueId": queue_id},
            "data": [{"metric": m, "stats": {"count": objects.observation(queue_id, m)}} for m in body["metrics"]],
        }
        for queue_id in _queue_ids(body["filter"])
    ]
    return answer(VENDOR, 200, {"results": results}, json_body=body)


@blueprint.get("/_sandbox/genesys/workitems")
def sandbox_workitems() -> Response:
    return jsonify(store().workitems())


@blueprint.get("/_sandbox/genesys/callbacks")
def sandbox_callbacks() -> Response:
    return jsonify(store().callbacks())


@blueprint.get("/_sandbox/genesys/queues")
def sandbox_queues() -> Response:
    return jsonify(store().queues())


@blueprint.put("/_sandbox/genesys/queues/<queue_id>")
def sandbox_set_queue(queue_id: str) -> Response | tuple[Response, int]:
    """Merge ``{metric: count >= 0}`` into the queue's observation table (unset metrics read as 0)."""
    values = request.get_json(silent=True)
    if not isinstance(values, dict):
        return jsonify({"error": "body must be a JSON object of metric -> count"}), 400
    unknown = sorted(set(values) - set(OBSERVATION_METRICS))
    if unknown:
        return jsonify({"error": f"unknown metric(s) {unknown}; known: {list(OBSERVATION_METRICS)}"}), 400
    bad = sorted(k for k, v in values.items() if isinstance(v, bool) or not isinstance(v, int) or v < 0)
    if bad:
        return jsonify({"error": f"counts must be integers >= 0: {bad}"}), 400
    return jsonify({"queueId": queue_id, **store().set_queue(queue_id, values)})
