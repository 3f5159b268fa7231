"""Twilio Programmable Messaging emulator (vendor ``twilio``): send an SMS.

``POST /2010-04-01/Accounts/<AccountSid>/Messages.json``: injected latency/faults -> Basic
``AccountSid:AuthToken`` (401 code 20003) -> the path's AccountSid is the authenticated one (404 code 20404)
-> rate limit per account (429 code 20429 + Retry-After, 100 per second) -> form fields, first error wins as
with Twilio: ``To`` (21604 missing, 21211 not E.164), ``From`` or ``MessagingServiceSid`` (21603 neither,
21212 bad From, 21701 bad service sid), ``Body`` (21602 missing, 21617 over 1600 characters) -> 201 with
the message resource. Other form fields are accepted and ignored, as Twilio does; a JSON body has no form
fields, so it fails with 21604.

Control: ``GET /_sandbox/twilio/messages`` lists the accepted messages (the 201 bodies)."""

from __future__ import annotations

import hmac
import math
import re
import uuid
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

from flask import Blueprint, Response, jsonify, request

from .common import (
    MessageStore,
    SandboxState,
    answer,
    basic_credentials,
    form_fields,
    injected_fault,
    message_store,
    throttled,
)
from .credentials import TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN

VENDOR = "twilio"
STORE = "twilio.messages"
DEFAULT_LIMIT, DEFAULT_WINDOW_S = 100, 1.0
MAX_BODY_CHARS = 1600
E164 = re.compile(r"^\+[1-9][0-9]{1,14}$")
ALPHANUMERIC_SENDER = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}$")
SHORT_CODE = re.compile(r"^[0-9]{5,6}$")
SERVICE_SID = re.compile(r"^MG[0-9a-f]{32}$")

blueprint = Blueprint("twilio", __name__)


def init_state(state: SandboxState) -> None:
    """Register Twilio's rate limit and message store on a fresh sandbox state."""
    state.limits.set_default(VENDOR, DEFAULT_LIMIT, DEFAULT_WINDOW_S)
    state.stores.setdefault(STORE, MessageStore())



def error_body(status: int, code: int, message: str) -> dict[str, Any]:
    """Twilio's error body: ``{code, message, more_info, status}``."""
    more_info = f"https://www.twilio.com/docs/errors/{code}"
    return {"code": code, "message": message, "more_info": more_info, "status": status}


def _form_error(fields: dict[str, Any]) -> tuple[int, str] | None:
    """Twilio's first complaint about the form fields as ``(code, message)``, or None when they are fine."""
    to, sender, service, body = (fields.get(name) for name in ("To", "From", "MessagingServiceSid", "Body"))
    if not isinstance(to, str) or not to:
        return 21604, "A 'To' phone number is required."
    if not E164.match(to):
        return 21211, f"The 'To' number {to} is not a valid phone number."
    if not sender and not service:
        return 21603, "A 'From' phone number or a 'MessagingServiceSid' is required."
    if sender and not (
        isinstance(sender, str) and any(p.match(sender) for p in (E164, ALPHANUMERIC_SENDER, SHORT_CODE))
    ):
        return 21212, f"The 'From' number {sender} is not a valid phone number, shortcode, or alphanumeric sender ID."
    if service and not (isinstance(service, str) and SERVICE_SID.match(service)):
        return 21701, f"The 'MessagingServiceSid' {service} is not a valid Messaging Service SID."
    if not isinstance(body, str) or not body:
        return 21602, "Message body is required ('Body')."
    if len(body) > MAX_BODY_CHARS:
        return 21617, f"The concatenated message body ('Body') exceeds the {MAX_BODY_CHARS} character limit."
    return None


def _message(account_sid: str, fields: dict[str, Any]) -> dict[str, Any]:
    sid = f"SM{uuid.uuid4().hex}"
    body = fields["Body"]
    now = format_datetime(datetime.now(UTC))
    return {
        "sid": sid,
        "status": "queued",
        "to": fields["To"],
        "from": fields.get("From") or None,
        "messaging_service_sid": fields.get("MessagingServiceSid") or None,
        "body": body,
        "account_sid": account_sid,
        "date_created": now,
        "date_updated": now,
        "date_sent": None,
        "direction": "outbound-api",
        "num_segments": str(1 if len(body) <= 160 else math.ceil(len(body) / 153)),
        "api_version": "2010-04-01",
        "error_code": None,
        "error_message": None,
        "uri": f"/2010-04-01/Accounts/{account_sid}/Messages/{sid}.json",
    }


@blueprint.post("/2010-04-01/Accounts/<account_sid>/Messages.json")
def send_message(account_sid: str) -> Response:
    fault = injected_fault(VENDOR, fault_body=lambda status: error_body(status, 20500, "Internal Server Error"))
    if fault is not None:
        return fault
    credentials = basic_credentials()
    if credentials is None or not (
        hmac.compare_digest(credentials[0].encode(), TWILIO_ACCOUNT_SID.encode())
        & hmac.compare_digest(credentials[1].encode(), TWILIO_AUTH_TOKEN.encode())
    ):
        return answer(VENDOR, 401, error_body(401, 20003, "Authenticate"), headers={"WWW-Authenticate": "Basic"})
    if account_sid != credentials[0]:
        message = f"The requested resource {request.path} was not found"
        return answer(VENDOR, 404, error_body(404, 20404, message))
    limited = throttled(VENDOR, account_sid, None, error_body(429, 20429, "Too Many Requests"))
    if limited is not None:
        return limited
    fields = form_fields() or {}
    problem = _form_error(fields)
    if problem is not None:
        return answer(VENDOR, 400, error_body(400, *problem))
    message = _message(account_sid, fields)
    message_store(STORE).add(message)
    return answer(VENDOR, 201, message)


@blueprint.get("/_sandbox/twilio/messages")
def sandbox_messages() -> Response:
    return jsonify(message_store(STORE).messages())
