"""PagerDuty REST API v2 emulator, the read Switchboard's reconciliation needs: ``GET /incidents``.

The incidents are the alerts the Events v2 emulator keeps (``pagerduty_alerts``): one per (routing_key,
dedup_key) trigger, ``incident_key`` = the dedup_key. Filters ``incident_key``, ``statuses[]``; classic
pagination (``limit`` default 25, max 100, ``offset``, ``more``, ``total`` with ``total=true``, offset+limit
<= 10000); ``sort_by`` ``created_at``/``incident_number`` with ``:asc``/``:desc``. Everything is kept, so
``since``/``until``/``date_range`` are accepted and ignored.

Auth as the docs state it: ``Authorization: Token token=<api token>`` (``credentials.PAGERDUTY_API_TOKEN``)
and ``Accept: application/vnd.pagerduty+json;version=2``, else 401 ``{"error": {"message", "code": 2006}}``.
(The real API falls back to the token's default version without that Accept header; the emulator insists on
it so a client that forgets to pin version 2 fails here, not in production.) Faults and a rate limit (960
per 60 s per token) under the name ``pagerduty_api``.

Control: ``PUT /_sandbox/pagerduty/alerts/<dedup_key>`` ``{"status": "acknowledged"|"resolved"|"triggered",
"routing_key"?}`` changes the open incident as a human would in the web UI (404 if none is open)."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Response, jsonify, request

from .common import SandboxState, answer, injected_fault, throttled
from .credentials import PAGERDUTY_API_TOKEN
from .pagerduty import alert_store
from .pagerduty_alerts import HUMAN_STATUSES

VENDOR = "pagerduty_api"
ACCEPT = "application/vnd.pagerduty+json;version=2"
DEFAULT_LIMIT, MAX_LIMIT, MAX_WINDOW = 25, 100, 10_000
SORTS = {"created_at": "opened_at", "incident_number": "incident_number"}

blueprint = Blueprint("pagerduty_rest", __name__)


def init_state(state: SandboxState) -> None:
    """PagerDuty's REST limit: 960 requests per minute per token."""
    state.limits.set_default(VENDOR, 960, 60.0)


def _error(status: int, message: str, code: int, errors: list[str] | None = None) -> Response:
    body: dict[str, Any] = {"error": {"message": message, "code": code}}
    if errors:
        body["error"]["errors"] = errors
    return answer(VENDOR, status, body)


def _authorized() -> bool:
    scheme, _, token = request.headers.get("Authorization", "").partition(" token=")
    accept = request.headers.get("Accept", "").replace(" ", "")
    return (scheme == "Token" and hmac.compare_digest(token.encode(), PAGERDUTY_API_TOKEN.encode())
            and ACCEPT in accept.split(","))


def _iso(epoch: float | None) -> str | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def service_id(routing_key: str) -> str:
    """A stable service id per integration key (the key itself is a secret and never shown)."""
    return "P" + hashlib.sha256(routing_key.encode()).hexdigest()[:6].upper()


def incident(alert: dict[str, Any], number: int, base: str) -> dict[str, Any]:
    """The REST API's incident object for one emulator alert."""
    title = alert.get("summary") or alert["dedup_key"]
    service = service_id(alert["routing_key"])
    by_human = alert.get("changed_by") == "web_ui"
    return {
        "id": alert["id"], "type": "incident", "summary": f"[#{number}] {title}",
        "self": f"{base}/incidents/{alert['id']}", "html_url": f"https://sandbox.pagerduty.com/incidents/{alert['id']}",
        "incident_number": number, "title": title, "status": alert["status"], "incident_key": alert["dedup_key"],
        "urgency": "high", "created_at": _iso(alert["opened_at"]), "updated_at": _iso(alert["last_status_change_at"]),
        "last_status_change_at": _iso(alert["last_status_change_at"]),
        "last_status_change_by": {"id": "PSANDBX" if by_human else service,
                                  "type": "user_reference" if by_human else "service_reference"},
        "resolved_at": _iso(alert["last_status_change_at"]) if alert["status"] == "resolved" else None,
        "service": {"id": service, "type": "service_reference", "summary": f"sandbox service {service}",
                    "self": f"{base}/services/{service}"},
        "assignments": [], "alert_counts": {"all": 1, "triggered": int(alert["status"] != "resolved"),
                                            "resolved": int(alert["status"] == "resolved")},
    }


def _paging() -> tuple[int, int] | str:
    try:
        limit = int(request.args.get("limit", DEFAULT_LIMIT))
        offset = int(request.args.get("offset", 0))
    except ValueError:
        return "limit and offset must be integers"
    if not 1 <= limit <= MAX_LIMIT or offset < 0:
        return f"limit must be 1..{MAX_LIMIT} and offset >= 0"
    if offset + limit > MAX_WINDOW:
        return f"offset + limit must not exceed {MAX_WINDOW}"
    return limit, offset


@blueprint.get("/incidents")
def list_incidents() -> Response:
    fault = injected_fault(VENDOR, fault_body=lambda status: {"error": {"message": f"injected {status}", "code": 2000}})
    if fault is not None:
        return fault
    if not _authorized():
        return _error(401, "Authentication failed", 2006)
    limited = throttled(VENDOR, PAGERDUTY_API_TOKEN, None, {"error": {"message": "Rate Limit Exceeded", "code": 2020}})
    if limited is not None:
        return limited
    paging = _paging()
    statuses = request.args.getlist("statuses[]")
    field, _, direction = request.args.get("sort_by", "created_at:asc").partition(":")
    problems = [f"Invalid status {s!r}" for s in statuses if s not in HUMAN_STATUSES]
    if isinstance(paging, str):
        problems.append(paging)
    if field not in SORTS or direction not in ("", "asc", "desc"):
        problems.append(f"sort_by must be one of {', '.join(SORTS)} with :asc or :desc")
    if problems or isinstance(paging, str):
        return _error(400, "Invalid Input Provided", 2001, problems)
    limit, offset = paging
    numbered = [{**a, "incident_number": n} for n, a in enumerate(alert_store().alerts(), start=1)]
    key = request.args.get("incident_key")
    found = [a for a in numbered
             if (key is None or a["dedup_key"] == key) and (not statuses or a["status"] in statuses)]
    found.sort(key=lambda a: a[SORTS[field]], reverse=direction == "desc")
    base = request.host_url.rstrip("/")
    page = [incident(a, a["incident_number"], base) for a in found[offset:offset + limit]]
    total = len(found) if request.args.get("total", "").lower() == "true" else None
    return answer(VENDOR, 200, {"incidents": page, "limit": limit, "offset": offset,
                                "more": offset + limit < len(found), "total": total})


@blueprint.put("/_sandbox/pagerduty/alerts/<dedup_key>")
def human_status_change(dedup_key: str) -> Response | tuple[Response, int]:
    """Acknowledge / resolve the open incident of ``dedup_key`` as a responder in the web UI would."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("status"), str):
        return jsonify({"error": 'body must be {"status": "acknowledged"|"resolved"|"triggered"}'}), 400
    try:
        changed = alert_store().set_status(dedup_key, body["status"], body.get("routing_key"))
    except ValueError as exc:
        return jsonify({"error": str(exc)}), 400
    if changed is None:
        return jsonify({"error": f"no open alert with dedup_key {dedup_key!r}"}), 404
    return jsonify(changed)
