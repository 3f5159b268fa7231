"""``GET /payloads/<ref>``: the full alert stored when a vendor's context limit would have cut it.

Agents follow the ``payload_ref`` a work item or callback carries. Bearer-token protected
(``SWITCHBOARD_PAYLOAD_TOKEN``, several comma-separated during a rotation); with no token configured
the endpoint answers 404 for everything, so nothing is exposed by default.
"""

from __future__ import annotations

import hashlib

from flask import Blueprint, Response, current_app, jsonify, request

from switchboard.payload_store import PayloadStore
from switchboard.signatures import matches_any

TOKEN_ENV = "SWITCHBOARD_PAYLOAD_TOKEN"
payloads_bp = Blueprint("payloads", __name__)


def _error(status: int, message: str) -> Response:
    response = jsonify(error=message)
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="switchboard-payloads"'
    return response


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


@payloads_bp.get("/payloads/<ref>")
def get_payload(ref: str) -> Response:
    state = current_app.extensions["switchboard"]
    tokens = state.settings.secrets(TOKEN_ENV)
    if not tokens:
        return _error(404, "payload references are not enabled (SWITCHBOARD_PAYLOAD_TOKEN is unset)")
    given = request.headers.get("Authorization", "")
    scheme, _, token = given.partition(" ")
    # constant time over equal-length digests, every active token compared: the timing tells nothing
    if scheme.lower() != "bearer" or not matches_any(_digest(token), [_digest(t) for t in tokens]):
        return _error(401, "a valid bearer token is required")
    store = PayloadStore(state.redis, state.settings.key_prefix, state.config.vendors["payload_ref_ttl_s"])
    try:
        payload = store.get(ref)
    except Exception:  # noqa: BLE001 - Redis down: say so, like the receiver does
        response = _error(503, "state store unavailable")
        response.headers["Retry-After"] = str(state.config.service["retry_after_s"])
        return response
    if payload is None:
        return _error(404, f"no payload {ref} (unknown, or older than its TTL)")
    return jsonify(payload_ref=ref, payload=payload)
