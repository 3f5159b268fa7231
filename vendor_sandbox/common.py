"""Shared plumbing for vendor emulators: the per-app ``SandboxState`` and the request pipeline helpers
every vendor blueprint uses (read a JSON body, injected faults and latency, rate limits, recorded
answers). A new vendor module needs a ``blueprint`` and an ``init_state(state)`` and nothing else."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from flask import Response, current_app, jsonify, request

from .faults import Faults, RateLimiter
from .recorder import Recorder

EXTENSION = "vendor_sandbox"


class Clearable(Protocol):
    def clear(self) -> None: ...


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


def answer(
    vendor: str, status: int, body: Any, *, json_body: Any = None, headers: Mapping[str, str] | None = None
) -> Response:
    """Record the current request with ``status`` and return ``body`` as JSON with that status."""
    response = jsonify(body)
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    get_state().recorder.record(
        vendor=vendor,
        path=request.path,
        method=request.method,
        headers=dict(request.headers.items()),
        json_body=json_body,
        status=status,
    )
    return response


def injected_fault(vendor: str, json_body: Any = None) -> Response | None:
    """Sleep the configured latency, then return the scripted/random fault answer if one is due."""
    decision = get_state().faults.decide(vendor)
    if decision.delay_s > 0:
        time.sleep(decision.delay_s)
    fault = decision.answer
    if fault is None:
        return None
    headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
    body = fault.body
    if body is None:
        body = {"status": "error", "message": f"Sandbox injected fault: HTTP {fault.status}"}
    return answer(vendor, fault.status, body, json_body=json_body, headers=headers)


def throttled(vendor: str, key: str, json_body: Any, throttle_body: Any) -> Response | None:
    """Count the request against ``key``'s window; a recorded 429 with Retry-After when over the limit."""
    retry_after = get_state().limits.hit(vendor, key)
    if retry_after is None:
        return None
    return answer(vendor, 429, throttle_body, json_body=json_body, headers={"Retry-After": str(retry_after)})
