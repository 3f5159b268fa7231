"""CRM emulator (vendor ``crm``): the customer lookup of seed 004.

``GET /api/v1/customers/<customerId>``: injected latency/faults (the client's timeout is 2 s: use
``latency_ms`` to exceed it) -> ``Authorization: Bearer <token>`` (401) -> rate limit per token (429 +
Retry-After, 600 per 60 s) -> 200 ``{customerId, phone, timezone, doNotDisturb, name}`` or 404
``{"error": "not found"}``. Seeded with the customers of ``samples/crm-customers.json``.

Control: ``GET /_sandbox/crm/customers``; ``PUT /_sandbox/crm/customers/<id>`` ``{phone, timezone,
doNotDisturb, name?}`` adds a customer, or merges the given fields into an existing one;
``DELETE /_sandbox/crm/customers/<id>`` removes one. Reset restores the seed."""

from __future__ import annotations

import copy
import hmac
import threading
from typing import Any

from flask import Blueprint, Response, jsonify, request

from .common import SandboxState, answer, bearer_token, get_state, injected_fault, throttled
from .credentials import CRM_TOKEN
from .schemas import make_validator, schema_errors

VENDOR = "crm"
STORE = "crm.customers"
DEFAULT_LIMIT, DEFAULT_WINDOW_S = 600, 60.0

# The same three customers as samples/crm-customers.json (kept here so the installed package is complete).
SEED_CUSTOMERS: dict[str, dict[str, Any]] = {
    "CUST-9981": {
        "phone": "+15551234567",
        "timezone": "America/New_York",
        "doNotDisturb": False,
        "name": "Acme Cold Storage",
    },
    "CUST-4410": {
        "phone": "+14155550123",
        "timezone": "America/Los_Angeles",
        "doNotDisturb": True,
        "name": "Bayview Clinic",
    },
    "CUST-7302": {
        "phone": "+442071234567",
        "timezone": "Europe/London",
        "doNotDisturb": False,
        "name": "Thames Logistics",
    },
}

CUSTOMER_VALIDATOR = make_validator(
    {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Sandbox CRM customer",
        "type": "object",
        "additionalProperties": False,
        "required": ["phone", "timezone", "doNotDisturb"],
        "properties": {
            "customerId": {"type": "string"},
            "phone": {"type": "string"},
            "timezone": {"type": "string"},
            "doNotDisturb": {"type": "boolean"},
            "name": {"type": "string"},
        },
    }
)

blueprint = Blueprint("crm", __name__)


class CustomerStore:
    """Thread-safe customers by id; ``clear`` restores the seed."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._customers: dict[str, dict[str, Any]] = copy.deepcopy(SEED_CUSTOMERS)

    def get(self, customer_id: str) -> dict[str, Any] | None:
        with self._lock:
            found = self._customers.get(customer_id)
            return None if found is None else {"customerId": customer_id, **copy.deepcopy(found)}

    def put(self, customer_id: str, customer: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self._customers[customer_id] = {k: v for k, v in copy.deepcopy(customer).items() if k != "customerId"}
        return self.get(customer_id) or {}

    def delete(self, customer_id: str) -> bool:
        with self._lock:
            return self._customers.pop(customer_id, None) is not None

    def all(self) -> list[dict[str, Any]]:
        with self._lock:
            return [{"customerId": cid, **copy.deepcopy(c)} for cid, c in self._customers.items()]

    def clear(self) -> None:
        with self._lock:
            self._customers = copy.deepcopy(SEED_CUSTOMERS)


def init_state(state: SandboxState) -> None:
    """Register the CRM's rate limit and seeded customer store on a fresh sandbox state."""
    state.limits.set_default(VENDOR, DEFAULT_LIMIT, DEFAULT_WINDOW_S)
    state.stores.setdefault(STORE, CustomerStore())


def customer_store(state: SandboxState | None = None) -> CustomerStore:
    found = (state or get_state()).stores[STORE]
    assert isinstance(found, CustomerStore)
    return found


@blueprint.get("/api/v1/customers/<customer_id>")
def get_customer(customer_id: str) -> Response:
    fault = injected_fault(VENDOR, fault_body=lambda status: {"error": f"injected HTTP {status}"})
    if fault is not None:
        return fault
    token = bearer_token()
    if token is None or not hmac.compare_digest(token.encode(), CRM_TOKEN.encode()):
        return answer(VENDOR, 401, {"error": "unauthorized"}, headers={"WWW-Authenticate": "Bearer"})
    limited = throttled(VENDOR, token, None, {"error": "rate limited"})
    if limited is not None:
        return limited
    customer = customer_store().get(customer_id)
    if customer is None:
        return answer(VENDOR, 404, {"error": "not found"})
    return answer(VENDOR, 200, customer)


@blueprint.get("/_sandbox/crm/customers")
def sandbox_customers() -> Response:
    return jsonify(customer_store().all())


@blueprint.put("/_sandbox/crm/customers/<customer_id>")
def sandbox_put_customer(customer_id: str) -> Response | tuple[Response, int]:
    """Set a customer; for an existing one the given fields are merged into it (e.g. ``{"doNotDisturb": true}``)."""
    changes = request.get_json(silent=True)
    if not isinstance(changes, dict):
        return jsonify({"error": "body must be a JSON object"}), 400
    customer = {**(customer_store().get(customer_id) or {}), **changes}
    errors = schema_errors(CUSTOMER_VALIDATOR, customer)
    if errors:
        return jsonify({"error": "invalid customer", "errors": errors}), 400
    return jsonify(customer_store().put(customer_id, customer))


@blueprint.delete("/_sandbox/crm/customers/<customer_id>")
def sandbox_delete_customer(customer_id: str) -> Response | tuple[Response, int]:
    if not customer_store().delete(customer_id):
        return jsonify({"error": "not found"}), 404
    return jsonify({"deleted": customer_id})
