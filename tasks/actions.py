"""What dispatching an alert to a target means, per target kind: the request, how to send it, and how
to check whether an interrupted earlier attempt already acted (``verify``).

Bodies come from the pure builders in ``switchboard.payloads``; clients from ``tasks.vendors``. I/O here
is limited to the CRM lookup (through the Redis cache shared with enrich, ``tasks.customers``) that
decides between a call and a follow-up work item.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from clients.http import VendorError
from switchboard.call_throttle import decide as decide_call
from switchboard.dialing import plan_call
from switchboard.overflow import choose_queue, workitem_priority
from switchboard.payloads.chat import chat_text
from switchboard.payloads.cxone import dial_body
from switchboard.payloads.genesys import callback_body, due_after, external_tag, workitem_body
from switchboard.payloads.orchestrator import resolution_body
from switchboard.payloads.pagerduty import pagerduty_event
from tasks.customers import lookup_customer
from tasks.occupancy import queue_occupancy, record
from tasks.runtime import Runtime


@dataclass
class Prepared:
    request: dict[str, Any]
    send: Callable[[], dict[str, Any]]
    verify: Callable[[], dict[str, Any] | None] | None = None
    overflow: bool = False  # some context did not fit: the full alert must be stored under payload_ref
    action: str = ""        # what was chosen, e.g. "callback" or "workitem (outside the dialing window)"
    after: Callable[[], None] | None = None  # run once the vendor acted (e.g. count a call against the cap)


def vendor_of(target_cfg: dict[str, Any]) -> str:
    kind = target_cfg["kind"]
    if kind == "call":
        return "cxone" if target_cfg["call"]["via"] == "cxone_dial" else "genesys"
    return {"genesys_workitem": "genesys", "orchestrator_resolution": "orchestrator", "chat": "slack"}.get(kind, kind)


def prepare(alert: dict[str, Any], route: dict[str, Any], rt: Runtime, now: datetime | None = None) -> Prepared:
    now = now or datetime.now(UTC)
    target = route["target"]
    cfg = rt.config.targets[target]
    kind = cfg["kind"]
    if kind == "pagerduty":
        return _pagerduty(alert, target, rt, route.get("escalation_minutes"))
    if kind == "genesys_workitem":
        return _routed_workitem(alert, route, rt, now)
    if kind == "chat":
        text = chat_text(alert, route.get("rule"), route.get("escalation_minutes"))
        slack = rt.vendors.chat(target)

        def post() -> dict[str, Any]:
            slack.post(text)
            return {"status": "posted"}  # an incoming webhook answers a bare "ok"
        return Prepared({"text": text}, post, action="chat")
    if kind == "call":
        return _call(alert, route, rt, now)
    if kind == "orchestrator_resolution":
        try:
            body = resolution_body(alert)
        except ValueError as exc:
            raise VendorError(str(exc), retryable=False) from exc
        client = rt.vendors.orchestrator(target)
        return Prepared(body, lambda: client.send_resolution(body), action="resolution")
    raise VendorError(f"unknown target kind {kind!r}", retryable=False)


def _pagerduty(alert: dict[str, Any], target: str, rt: Runtime, escalation_minutes: int | None) -> Prepared:
    env_name = alert.get("routing_key_env") or rt.config.mappings["default_routing_key_env"]
    routing_key = rt.settings.secret(env_name)
    if not routing_key:
        raise VendorError(f"PagerDuty routing key: environment variable {env_name} is not set", retryable=False)
    body = pagerduty_event(alert, routing_key, escalation_minutes)
    client = rt.vendors.pagerduty(target)
    return Prepared(body, lambda: client.enqueue(body), action=body["event_action"])


def _ids(rt: Runtime, table: str, names: list[str]) -> list[str]:
    known = rt.config.vendors["genesys"][table]
    return [known[n] for n in names]


def _routed_workitem(alert: dict[str, Any], route: dict[str, Any], rt: Runtime, now: datetime) -> Prepared:
    """The route's work item: its queue (or the overflow queue when the primary is too busy), priority and
    due date (``escalation_minutes`` when the route sets it, else the target's ``due_minutes`` by severity)."""
    target = route["target"]
    wi = rt.config.targets[target]["workitem"]
    primary = route.get("queue") or wi["default_queue"]
    overflow = route.get("overflow")
    choice = choose_queue(primary, overflow, queue_occupancy(rt, target, primary) if overflow else None)
    if overflow:
        record(rt, choice, primary)
    base = route.get("workitem_priority")
    if base is None:
        base = wi["priority"].get(alert["severity"])
    minutes = route.get("escalation_minutes") or wi["due_minutes"].get(alert["severity"])
    return _workitem(alert, target, rt, queue=choice.queue, skills=route.get("skills") or [],
                     due=due_after(now, minutes),
                     priority=workitem_priority(base, route.get("priority_delta", 0), choice.priority_delta),
                     action=f"workitem ({choice.note})" if choice.note else "workitem")


def _workitem(alert: dict[str, Any], target: str, rt: Runtime, *, queue: str, skills: list[str],
              due: datetime | None, description: str | None = None, action: str = "workitem",
              as_severity: str | None = None, priority: int | None = None) -> Prepared:
    wi = rt.config.targets[target]["workitem"]
    if priority is None:
        priority = wi["priority"].get(as_severity or alert["severity"])
    body, overflow = workitem_body(
        alert, target=target, type_id=wi["type_id"], queue_id=_ids(rt, "queues", [queue])[0],
        skill_ids=_ids(rt, "skills", skills), priority=priority,
        date_due=due,
        limit=rt.config.vendors["genesys"]["custom_attribute_limit"], description=description)
    client = rt.vendors.genesys(target)
    tag = external_tag(alert["event_id"], target)

    def verify() -> dict[str, Any] | None:
        found = client.find_workitems(tag)
        return found[0] if found else None

    return Prepared(body, lambda: client.create_workitem(body), verify=verify, overflow=overflow, action=action)


class Slowed(Exception):  # noqa: N818 - not an error: the dispatch is re-queued, not counted as an attempt
    """The call waits: its queue is busy (``switchboard.call_throttle``)."""

    def __init__(self, countdown_s: float, reason: str) -> None:
        super().__init__(reason)
        self.countdown_s = countdown_s


def _call(alert: dict[str, Any], route: dict[str, Any], rt: Runtime, now: datetime) -> Prepared:
    target = route["target"]
    call = rt.config.targets[target]["call"]
    customer_id = (alert.get("attributes") or {}).get("customer_id")
    customer = lookup_customer(rt, customer_id) if customer_id else None
    calls_key = f"{rt.keys.prefix}calls:{customer_id}"
    recent = rt.redis.zcount(calls_key, now.timestamp() - 86400, "+inf") if customer_id else 0
    plan = plan_call(customer, now, rt.config.windows["dialing"], calls_last_24h=recent,
                     business_unit=alert.get("business_impact"))
    if not plan.call:
        # Never dropped: a non-urgent work item scheduled for the next time a call would be allowed.
        return _workitem(alert, target, rt, queue=call["outside_window_queue"], skills=[], due=plan.next_allowed,
                         description=f"Call the customer back from {plan.next_allowed:%Y-%m-%d %H:%M} UTC: "
                                     f"{plan.reason}. Alert {alert['event_id']}.",
                         action=f"workitem [{plan.rule}] ({plan.reason})", as_severity="low")  # non-urgent
    assert customer is not None
    busy = _busy_queue(alert, route, rt, call)
    if busy is not None:
        return _workitem(alert, target, rt, queue=call["outside_window_queue"], skills=[], due=None,
                         description=f"Call the customer when the queue has room: {busy}. Alert {alert['event_id']}.",
                         action=f"workitem [occupancy] ({busy})")

    def count_call() -> None:
        pipe = rt.redis.pipeline()
        pipe.zadd(calls_key, {alert["event_id"]: now.timestamp()})
        pipe.zremrangebyscore(calls_key, "-inf", now.timestamp() - 86400)
        pipe.expire(calls_key, 2 * 86400)
        pipe.execute()

    limit = rt.config.vendors["genesys"]["custom_attribute_limit"]
    action = f"[{plan.rule}] ({plan.reason})"
    if call["via"] == "genesys_callback":
        body, overflow = callback_body(alert, queue_id=_ids(rt, "queues", [call["queue"]])[0],
                                       phone=customer["phone"], customer_name=customer.get("name"), limit=limit)
        client = rt.vendors.genesys(target)
        return Prepared(body, lambda: client.create_callback(body), overflow=overflow, action=f"callback {action}",
                        after=count_call)
    body = dial_body(call["dial_body"], phone=customer["phone"], skill=call["cxone_skill"], alert=alert)
    cx = rt.vendors.cxone(target)
    return Prepared(body, lambda: cx.dial(body), action=f"dial {action}", after=count_call)


def _busy_queue(alert: dict[str, Any], route: dict[str, Any], rt: Runtime, call: dict[str, Any]) -> str | None:
    """None: place the call. Else why it becomes a work item; raises ``Slowed`` when it should wait."""
    throttle = call.get("occupancy_throttle")
    if throttle is None or call["via"] != "genesys_callback" or route.get("priority") == "critical":
        return None
    from tasks.occupancy import queue_occupancy

    ledger_key = rt.keys.ledger(alert["event_id"])
    slowed = int(rt.redis.hget(ledger_key, f"slowed:{route['target']}") or 0)
    decision = decide_call(queue_occupancy(rt, route["target"], call["queue"]), route.get("priority", "default"),
                           slowed, throttle)
    if decision.action == "slow":
        rt.redis.hincrby(ledger_key, f"slowed:{route['target']}", 1)
        raise Slowed(throttle["slow_s"], decision.reason)
    return decision.reason if decision.action == "workitem" else None
