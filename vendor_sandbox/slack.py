"""Slack incoming-webhook emulator (vendor ``slack``); answers are plain text, as Slack's are.

``POST /services/<T>/<B>/<token>``: injected latency/faults -> only ``credentials.SLACK_WEBHOOK_PATH`` exists
(else 404 ``no_service``) -> rate limit per webhook (429 ``rate_limited`` + Retry-After, 1 per second) ->
JSON body with a non-empty string ``text`` and, optionally, a ``blocks`` array (else 400
``invalid_payload``; the reason is in the ``X-Sandbox-Reason`` header) -> 200 ``ok``. Other Slack fields
(``username``, ``icon_emoji``, ...) are accepted and ignored, as Slack does.

Control: ``GET /_sandbox/slack/messages`` lists the accepted messages."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request

from .common import (
    MessageStore,
    SandboxState,
    injected_fault,
    message_store,
    now_iso,
    read_json_request,
    text_answer,
    throttled,
)
from .credentials import SLACK_WEBHOOK_PATH

VENDOR = "slack"
STORE = "slack.messages"
MAX_BODY_BYTES = 512 * 1024
DEFAULT_LIMIT, DEFAULT_WINDOW_S = 1, 1.0

blueprint = Blueprint("slack", __name__)


def init_state(state: SandboxState) -> None:
    """Register Slack's rate limit (1 per second per webhook) and message store on a fresh sandbox state."""
    state.limits.set_default(VENDOR, DEFAULT_LIMIT, DEFAULT_WINDOW_S)
    state.stores.setdefault(STORE, MessageStore())



def _payload_problem(body: Any) -> str | None:
    if not isinstance(body, dict):
        return "the body must be a JSON object"
    text = body.get("text")
    if not isinstance(text, str) or not text.strip():
        return "text must be a non-empty string"
    if "blocks" in body and not isinstance(body["blocks"], list):
        return "blocks must be an array"
    if any(not isinstance(block, dict) or not isinstance(block.get("type"), str) for block in body.get("blocks", [])):
        return "every block must be an object with a type"
    return None


@blueprint.post("/services/<team>/<bot>/<token>")
def webhook(team: str, bot: str, token: str) -> Response:
    received = read_json_request(MAX_BODY_BYTES)
    fault = injected_fault(VENDOR, received.body, fault_body=lambda status: "internal_error", text=True)
    if fault is not None:
        return fault
    if request.path != SLACK_WEBHOOK_PATH:
        return text_answer(VENDOR, 404, "no_service", json_body=received.body)
    limited = throttled(VENDOR, request.path, received.body, "rate_limited", text=True)
    if limited is not None:
        return limited
    problem = received.error if received.error_status is not None else _payload_problem(received.body)
    if problem is not None:
        headers = {"X-Sandbox-Reason": problem}
        return text_answer(VENDOR, 400, "invalid_payload", json_body=received.body, headers=headers)
    message_store(STORE).add({**received.body, "webhook": request.path, "received_at": now_iso()})
    return text_answer(VENDOR, 200, "ok", json_body=received.body)


@blueprint.get("/_sandbox/slack/messages")
def sandbox_messages() -> Response:
    return jsonify(message_store(STORE).messages())
