"""Reconciliation, without a worker: the pure decision table (every combination of local state, delivered
status and PagerDuty status) and the PagerDuty REST client against the sandbox over real HTTP."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
import requests

from clients.http import VendorError
from clients.pagerduty_rest import PagerDutyRestClient
from switchboard.config import load_config
from switchboard.reconcile import (
    ACKNOWLEDGE_LOCAL,
    RESEND_RESOLVE,
    RESEND_TRIGGER,
    RESOLVE_LOCAL,
    Correction,
    decide,
    pagerduty_routes,
    resend_alert,
)
from tests.helpers import ROOT
from tests.posting import Sandbox
from vendor_sandbox.credentials import PAGERDUTY_API_TOKEN

STATES = ("detected", "acknowledged", "resolved", "suppressed")
DELIVERED = ("firing", "resolved", None)
VENDOR = ("triggered", "acknowledged", "resolved", None)
FORWARD = {"detected": 0, "acknowledged": 1, "resolved": 2}


@pytest.mark.parametrize(("state", "delivered", "vendor", "expected"), [
    ("detected", "firing", "triggered", None),
    ("detected", "firing", "acknowledged", ACKNOWLEDGE_LOCAL),
    ("detected", "firing", "resolved", RESOLVE_LOCAL),            # a human resolved it
    ("acknowledged", "firing", "resolved", RESOLVE_LOCAL),
    ("acknowledged", "firing", "acknowledged", None),
    ("acknowledged", "firing", "triggered", None),                # not a transition of the machine
    ("detected", "firing", None, RESEND_TRIGGER),                 # the trigger was lost
    ("acknowledged", "firing", None, RESEND_TRIGGER),
    ("resolved", "resolved", "triggered", RESEND_RESOLVE),        # the resolve was lost
    ("resolved", "resolved", "acknowledged", RESEND_RESOLVE),
    ("resolved", "resolved", "resolved", None),
    ("resolved", "resolved", None, None),                         # PagerDuty ignores a resolve it never needed
    ("resolved", "firing", "resolved", None),                     # already corrected: a human resolved it
    ("resolved", "firing", None, None),
    ("suppressed", "firing", None, None),                         # never paged
    ("suppressed", None, "triggered", None),
    ("detected", None, None, None),                               # nothing delivered yet
])
def test_decision_table(state: str, delivered: str | None, vendor: str | None, expected: str | None) -> None:
    correction = decide({"state": state, "status": delivered}, vendor)
    assert (correction.action if correction else None) == expected
    if correction:
        assert correction.reason


def _after(record: dict[str, Any], vendor: str | None, correction: Correction) -> tuple[dict[str, Any], str | None]:
    """The world once a correction took effect (the local write, or the re-send reaching PagerDuty)."""
    if correction.local_state:
        return {**record, "state": correction.local_state}, vendor
    return record, "resolved" if correction.action == RESEND_RESOLVE else "triggered"


@pytest.mark.parametrize(("state", "delivered", "vendor"), list(itertools.product(STATES, DELIVERED, VENDOR)))
def test_every_correction_converges_and_never_moves_state_backwards(state: str, delivered: str | None,
                                                                    vendor: str | None) -> None:
    record = {"state": state, "status": delivered}
    correction = decide(record, vendor)
    if correction is None:
        return
    if correction.local_state:
        assert FORWARD[correction.local_state] > FORWARD[state]
    else:  # a re-send delivers what we last delivered, never something new
        assert correction.resend_status == delivered
    assert decide(*_after(record, vendor, correction)) is None  # a second pass finds nothing to do


def test_only_pagerduty_routes_are_reconciled_and_resends_keep_the_dedup_key() -> None:
    targets = load_config(ROOT / "config").targets
    pd = next(name for name, cfg in targets.items() if cfg["kind"] == "pagerduty")
    other = next(name for name, cfg in targets.items() if cfg["kind"] != "pagerduty")
    alert = {"event_id": "e1", "alert_key": "k1", "status": "firing",
             "routes": [{"target": other, "priority": "default"}, {"target": pd, "priority": "critical"}]}
    assert pagerduty_routes(alert, targets) == [{"target": pd, "priority": "critical"}]
    assert pagerduty_routes({**alert, "routes": [alert["routes"][0]]}, targets) == []
    again = resend_alert(alert, Correction(RESEND_RESOLVE, "lost"), "reconcile-k1-1", "2026-01-01T00:00:00Z")
    assert (again["event_id"], again["alert_key"], again["status"]) == ("reconcile-k1-1", "k1", "resolved")
    assert alert["event_id"] == "e1"  # the record's alert is not changed
    with pytest.raises(ValueError):
        resend_alert(alert, Correction(RESOLVE_LOCAL, "human"), "x", "2026-01-01T00:00:00Z")


# --- the REST client against the sandbox --------------------------------------------------------------------

RK = "rk-reconcile-client"


def _event(sb: Sandbox, action: str, dedup_key: str, routing_key: str = RK) -> None:
    body: dict[str, Any] = {"routing_key": routing_key, "event_action": action, "dedup_key": dedup_key}
    if action == "trigger":
        body["payload"] = {"summary": "trunk down", "source": "t1", "severity": "critical"}
    assert requests.post(f"{sb.url}/v2/enqueue", json=body, timeout=5).status_code == 202


def _human(sb: Sandbox, dedup_key: str, status: str) -> None:
    sb.send("PUT", f"/_sandbox/pagerduty/alerts/{dedup_key}", {"status": status})


def test_incident_status_follows_events_and_humans(sb: Sandbox) -> None:
    client = PagerDutyRestClient(sb.url, PAGERDUTY_API_TOKEN)
    assert client.incident_status("k-client") is None
    _event(sb, "trigger", "k-client")
    assert client.incident_status("k-client") == "triggered"
    _human(sb, "k-client", "acknowledged")
    assert client.incident_status("k-client") == "acknowledged"
    _human(sb, "k-client", "resolved")
    assert client.incident_status("k-client") == "resolved"
    _event(sb, "trigger", "k-client")  # a new incident; the old one stays resolved
    assert client.incident_status("k-client") == "triggered"
    request = sb.requests("/incidents")[-1]
    assert request["headers"]["authorization"] == f"Token token={PAGERDUTY_API_TOKEN}"
    assert request["headers"]["accept"] == "application/vnd.pagerduty+json;version=2"


def test_incident_status_reads_every_page(sb: Sandbox) -> None:
    sb.send("POST", "/_sandbox/ratelimit/pagerduty", {"limit": 1000, "window_s": 60})
    for _ in range(101):
        _event(sb, "trigger", "k-paged")
        _event(sb, "resolve", "k-paged")
    _event(sb, "trigger", "k-paged")  # the 102nd incident, on the second page, is the open one
    client = PagerDutyRestClient(sb.url, PAGERDUTY_API_TOKEN)
    assert len(client.incidents("k-paged")) == 102
    assert client.incident_status("k-paged") == "triggered"


def test_incident_status_errors_are_classified(sb: Sandbox) -> None:
    with pytest.raises(VendorError) as denied:
        PagerDutyRestClient(sb.url, "not-the-token").incident_status("k")
    assert denied.value.status == 401 and not denied.value.retryable
    sb.faults("pagerduty_api", script=[{"status": 503, "count": 1, "retry_after": 3}])
    with pytest.raises(VendorError) as down:
        PagerDutyRestClient(sb.url, PAGERDUTY_API_TOKEN).incident_status("k")
    assert down.value.retryable and down.value.retry_after_s == 3
