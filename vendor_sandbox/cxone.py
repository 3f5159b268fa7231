"""NICE CXone emulator (vendor ``cxone``): OAuth password-grant token with an access key, and the
``queuecallback`` dial.

- ``POST /auth/token``: Basic ``client_id:client_secret``, form ``grant_type=password&username=<accessKeyId>
  &password=<accessKeySecret>`` -> 200 ``{access_token, token_type: "Bearer", expires_in, id_token}``; bad
  client 401 ``invalid_client``; bad access key 400 ``invalid_grant``; other grant 400
  ``unsupported_grant_type``. Faults and rate limit (300 per 60 s per client) under the name ``cxone.token``.
- ``POST /incontactapi/services/v33.0/queuecallback``: injected latency/faults -> Bearer (401
  ``invalid_token``) -> rate limit per client (429 + Retry-After; 600 per 60 s, CXone documents none) ->
  JSON body (413/415/400) -> schema (400 with every error) -> 202 ``{"contactId": <int>}``.
- Control: ``GET /_sandbox/cxone/dials`` lists the accepted dials (request fields + ``contactId``)."""

from __future__ import annotations

import base64
import copy
import json
import threading
import time
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
from .credentials import CXONE_ACCESS_KEY_ID, CXONE_ACCESS_KEY_SECRET, CXONE_CLIENT_ID, CXONE_CLIENT_SECRET
from .schemas import make_validator, schema_errors

VENDOR = "cxone"
TOKEN_NAMESPACE = "cxone.token"
STORE = "cxone.dials"
MAX_BODY_BYTES = 512 * 1024
DEFAULT_LIMIT, DEFAULT_WINDOW_S = 600, 60.0
TOKEN_LIMIT, TOKEN_WINDOW_S = 300, 60.0
DEFAULT_EXPIRES_IN = 3600
FIRST_CONTACT_ID = 600_000_001
DIAL_PATH = "/incontactapi/services/v33.0/queuecallback"
DIGITS = "^[0-9]+$"

QUEUE_CALLBACK_VALIDATOR = make_validator(
    {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "CXone queuecallback",
        "type": "object",
        "additionalProperties": False,
        "required": ["skill", "phoneNumber"],
        "properties": {
            "skill": {"type": ["integer", "string"], "pattern": DIGITS, "minimum": 1},
            "phoneNumber": {"type": "string", "pattern": r"^\+?[0-9]{4,20}$"},
            "callDelay": {"type": "integer", "minimum": 0, "maximum": 3600},
            "callerId": {"type": "string", "pattern": r"^\+?[0-9]{4,20}$"},
            "priority": {"type": ["integer", "string"], "pattern": DIGITS, "minimum": 0},
            "notes": {"type": "string", "maxLength": 255},
        },
    }
)

blueprint = Blueprint("cxone", __name__)


class DialStore:
    """Thread-safe accepted dials (oldest first), each with its generated ``contactId``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._dials: list[dict[str, Any]] = []
        self._next_id = FIRST_CONTACT_ID

    def add(self, body: dict[str, Any]) -> int:
        with self._lock:
            contact_id = self._next_id
            self._next_id += 1
            self._dials.append({**copy.deepcopy(body), "contactId": contact_id, "dateCreated": now_iso()})
            return contact_id

    def dials(self) -> list[dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(self._dials)

    def clear(self) -> None:
        with self._lock:
            self._dials.clear()
            self._next_id = FIRST_CONTACT_ID


def init_state(state: SandboxState) -> None:
    """Register CXone's rate limits, OAuth defaults and dial store on a fresh sandbox state."""
    state.limits.set_default(VENDOR, DEFAULT_LIMIT, DEFAULT_WINDOW_S)
    state.limits.set_default(TOKEN_NAMESPACE, TOKEN_LIMIT, TOKEN_WINDOW_S)
    state.stores.setdefault(STORE, DialStore())
    defaults = oauth.OAuthDefaults(
        VENDOR,
        CXONE_CLIENT_ID,
        CXONE_CLIENT_SECRET,
        DEFAULT_EXPIRES_IN,
        unauthorized_body={"error": "invalid_token"},
        access_key_id=CXONE_ACCESS_KEY_ID,
        access_key_secret=CXONE_ACCESS_KEY_SECRET,
    )
    oauth.register(state, defaults)


def dial_store(state: SandboxState | None = None) -> DialStore:
    found = (state or get_state()).stores[STORE]
    assert isinstance(found, DialStore)
    return found


def _b64url(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _id_token(client_id: str, expires_in: int) -> str:
    """An unsigned JWT-shaped id token (the clients only pass it through)."""
    issued = int(time.time())
    claims = {"iss": "https://cxone.sandbox", "aud": client_id, "iat": issued, "exp": issued + expires_in}
    return f"{_b64url({'alg': 'none', 'typ': 'JWT'})}.{_b64url(claims)}.sandbox"


def _fault_body(status: int) -> dict[str, Any]:
    return {"error": "server_error", "error_description": f"Sandbox injected fault: HTTP {status}"}


def _throttle_body(retry_after: int) -> dict[str, Any]:
    return {"error": "too_many_requests", "error_description": f"Rate limit exceeded; retry in {retry_after} s"}


def _error(status: int, error: str, description: str | None = None, json_body: Any = None) -> Response:
    body = {"error": error} if description is None else {"error": error, "error_description": description}
    return answer(VENDOR, status, body, json_body=json_body)


@blueprint.post("/auth/token")
@oauth.counted_token_endpoint(VENDOR)
def token() -> Response:
    credentials, early = oauth.token_request_start(VENDOR, TOKEN_NAMESPACE, _fault_body, _throttle_body)
    if early is not None:
        return early
    registry = oauth.registry()
    if registry.take_failure(VENDOR) or credentials is None or not registry.client_ok(VENDOR, *credentials):
        return _error(401, "invalid_client")
    if request.mimetype != FORM_MIMETYPE:
        return _error(400, "invalid_request", f"Content-Type must be {FORM_MIMETYPE}")
    form = request.form
    if form.get("grant_type") != "password":
        return _error(400, "unsupported_grant_type", f"grant_type {form.get('grant_type')!r} is not password")
    if not registry.access_key_ok(VENDOR, form.get("username"), form.get("password")):
        return _error(400, "invalid_grant", "access key id (username) or secret (password) is wrong")
    access_token, expires_in = registry.issue(VENDOR, credentials[0])
    body = {
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": expires_in,
        "id_token": _id_token(credentials[0], expires_in),
    }
    return answer(VENDOR, 200, body)


@blueprint.post(DIAL_PATH)
def queue_callback() -> Response:
    received = read_json_request(MAX_BODY_BYTES)
    fault = injected_fault(VENDOR, received.body, fault_body=_fault_body)
    if fault is not None:
        return fault
    bearer, rejection = oauth.require_bearer(VENDOR, received.body)
    if bearer is None:
        return rejection
    limited = throttled(VENDOR, bearer.client_id, received.body, _throttle_body)
    if limited is not None:
        return limited
    if received.error_status is not None:
        return _error(received.error_status, "invalid_request", received.error, json_body=received.body)
    errors = schema_errors(QUEUE_CALLBACK_VALIDATOR, received.body)
    if errors:
        body = {"error": "invalid_request", "error_description": "; ".join(errors), "errors": errors}
        return answer(VENDOR, 400, body, json_body=received.body)
    contact_id = dial_store().add(received.body)
    return answer(VENDOR, 202, {"contactId": contact_id}, json_body=received.body)


@blueprint.get("/_sandbox/cxone/dials")
def sandbox_dials() -> Response:
    return jsonify(dial_store().dials())
