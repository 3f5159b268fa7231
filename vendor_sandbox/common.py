"""Shared plumbing for vendor emulators: the per-app ``SandboxState`` and the request pipeline helpers
every vendor blueprint uses (read a JSON or form body, credentials from the Authorization header, injected
faults and latency, rate limits, recorded JSON or text answers). A new vendor module needs a ``blueprint``
and an ``init_state(state)`` and nothing else.

Injected ``latency_after_ms`` is slept by ``sleep_latency_after`` (an ``after_request`` hook), i.e. after
the view acted and recorded its answer and before the answer is sent."""

from __future__ import annotations

import binascii
import copy
import json
import threading
import time
from base64 import b64decode
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from flask import Response, current_app, g, jsonify, request

from .faults import Faults, RateLimiter
from .recorder import Recorder

EXTENSION = "vendor_sandbox"
FORM_MIMETYPE = "application/x-www-form-urlencoded"
LATENCY_AFTER = "sandbox_latency_after_s"


class Clearable(Protocol):
    def clear(self) -> None: ...


class MessageStore:
    """Thread-safe accepted messages (oldest first)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._messages: list[dict[str, Any]] = []

    def add(self, message: dict[str, Any]) -> None:
        with self._lock:
            self._messages.append(copy.deepcopy(message))

    def messages(self) -> list[dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(self._messages)

    def clear(self) -> None:
        with self._lock:
            self._messages.clear()


@dataclass
class SandboxState:
    """Everything one sandbox app remembers; ``reset`` forgets it all (vendor rate-limit defaults stay)."""

    recorder: Recorder = field(default_factory=Recorder)
    faults: Faults = field(default_factory=Faults)
    limits: RateLimiter = field(default_factory=RateLimiter)
    stores: dict[str, Clearable] = field(default_factory=dict)

    def reset(self) -> None:
        self.recorder.clear()
        self.faults.reset()
        self.limits.reset()
        for store in self.stores.values():
            store.clear()


def now_iso() -> str:
    """UTC now with milliseconds and ``Z``, as most vendors write it: ``2024-05-01T12:00:00.123Z``."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def get_state() -> SandboxState:
    """The state of the app handling the current request."""
    return current_app.extensions[EXTENSION]


@dataclass(frozen=True)
class JsonRequest:
    """The current request's parsed body (None if unparsable) and, when unusable, why."""

    body: Any = None
    error_status: int | None = None
    error: str | None = None


def is_json_mimetype(mimetype: str) -> bool:
    """``application/json`` or an ``application/*+json`` type."""
    if mimetype == "application/json":
        return True
    return mimetype.startswith("application/") and mimetype.endswith("+json")


def read_json_request(max_bytes: int) -> JsonRequest:
    """Read the whole body: 413 if over ``max_bytes``, 415 if not ``application/json``, 400 if not JSON."""
    data = request.get_data(cache=True)
    if len(data) > max_bytes:
        return JsonRequest(None, 413, f"Request body is {len(data)} bytes; the limit is {max_bytes} bytes")
    try:
        body, parsed = json.loads(data), True
    except ValueError:
        body, parsed = None, False
    if not is_json_mimetype(request.mimetype):
        return JsonRequest(body, 415, f"Content-Type must be application/json, got {request.mimetype!r}")
    if not parsed:
        return JsonRequest(None, 400, "Request body is not valid JSON")
    return JsonRequest(body)


def form_fields() -> dict[str, Any] | None:
    """The form-encoded body as ``{name: value}`` (a list when a name repeats); None if not form-encoded."""
    if request.mimetype != FORM_MIMETYPE:
        return None
    return {name: values[0] if len(values) == 1 else values for name, values in request.form.lists()}


def bearer_token() -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header (scheme case-insensitive), else None."""
    scheme, _, token = request.headers.get("Authorization", "").strip().partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def basic_credentials() -> tuple[str, str] | None:
    """``(user, password)`` of an ``Authorization: Basic base64(user:password)`` header, else None."""
    scheme, _, encoded = request.headers.get("Authorization", "").strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, colon, password = decoded.partition(":")
    return (user, password) if colon else None


def _record(vendor: str, status: int, json_body: Any, form_body: Mapping[str, Any] | None) -> None:
    get_state().recorder.record(
        vendor=vendor,
        path=request.path,
        method=request.method,
        headers=dict(request.headers.items()),
        json_body=json_body,
        form_body=form_body if form_body is not None else form_fields(),
        status=status,
        arrived_at=g.get("sandbox_arrived_at"),
        peer=f"{request.environ.get('REMOTE_ADDR')}:{request.environ.get('REMOTE_PORT')}",
    )


def answer(
    vendor: str,
    status: int,
    body: Any,
    *,
    json_body: Any = None,
    headers: Mapping[str, str] | None = None,
    form_body: Mapping[str, Any] | None = None,
) -> Response:
    """Record the current request with ``status`` and return ``body`` as JSON with that status. Form-encoded
    request bodies are recorded as ``form`` unless ``form_body`` is given."""
    response = jsonify(body)
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    _record(vendor, status, json_body, form_body)
    return response


def text_answer(
    vendor: str, status: int, text: str, *, json_body: Any = None, headers: Mapping[str, str] | None = None
) -> Response:
    """Record the current request with ``status`` and return ``text`` as ``text/plain`` (e.g. Slack's ``ok``)."""
    response = Response(text, status=status, mimetype="text/plain")
    for name, value in (headers or {}).items():
        response.headers[name] = value
    _record(vendor, status, json_body, None)
    return response


def sleep_latency_after(response: Response) -> Response:
    """``after_request`` hook: sleep the injected ``latency_after_ms`` of this request before answering."""
    delay_s = g.pop(LATENCY_AFTER, 0.0)
    if delay_s > 0:
        time.sleep(delay_s)
    return response


def default_fault_body(status: int) -> Any:
    return {"status": "error", "message": f"Sandbox injected fault: HTTP {status}"}


def injected_fault(
    vendor: str,
    json_body: Any = None,
    *,
    namespace: str | None = None,
    fault_body: Callable[[int], Any] = default_fault_body,
    text: bool = False,
) -> Response | None:
    """Sleep the configured latency, then return the scripted/random fault answer if one is due. Faults are
    looked up under ``namespace`` (default ``vendor``), e.g. ``genesys.token`` for Genesys' token endpoint;
    ``fault_body(status)`` is the body when the fault has none; ``text``: a str body is sent as text/plain.
    The configured ``latency_after_ms`` is kept for ``sleep_latency_after``."""
    decision = get_state().faults.decide(namespace or vendor)
    if decision.delay_s > 0:
        time.sleep(decision.delay_s)
    setattr(g, LATENCY_AFTER, g.get(LATENCY_AFTER, 0.0) + decision.after_s)
    fault = decision.answer
    if fault is None:
        return None
    headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
    body = fault.body if fault.body is not None else fault_body(fault.status)
    if text and isinstance(body, str):
        return text_answer(vendor, fault.status, body, json_body=json_body, headers=headers)
    return answer(vendor, fault.status, body, json_body=json_body, headers=headers)


def throttled(
    vendor: str, key: str, json_body: Any, throttle_body: Any, *, namespace: str | None = None, text: bool = False
) -> Response | None:
    """Count the request against ``key``'s window (limits of ``namespace``, default ``vendor``); a recorded
    429 with Retry-After when over the limit. ``throttle_body`` may depend on the seconds to wait."""
    retry_after = get_state().limits.hit(namespace or vendor, key)
    if retry_after is None:
        return None
    body = throttle_body(retry_after) if callable(throttle_body) else throttle_body
    headers = {"Retry-After": str(retry_after)}
    if text and isinstance(body, str):
        return text_answer(vendor, 429, body, json_body=json_body, headers=headers)
    return answer(vendor, 429, body, json_body=json_body, headers=headers)


def note_arrival() -> None:
    """``before_request`` hook: when the request arrived (recorded with it)."""
    g.sandbox_arrived_at = time.time()


def message_store(key: str, state: SandboxState | None = None) -> MessageStore:
    """The message store registered under ``key`` (Slack's, Twilio's) of ``state`` (default: this app's)."""
    found = (state or get_state()).stores[key]
    assert isinstance(found, MessageStore)
    return found
