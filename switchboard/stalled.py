"""Stalled events (pure): which accepted events lost their broker message, and what to publish again.

Why: kombu's Redis transport takes a message with BRPOP and only then records it as unacknowledged
(kombu #305). A worker killed between the two loses that message: the event was accepted (202) and
nothing will ever run it again. RabbitMQ keeps unacknowledged messages on the server and has no such
window. The sweep (``tasks/stalled_sweep.py``, beat) closes the gap by proving an event's message is
gone before publishing it again:

- every accepted event without an outcome is in the in-flight index, scored by its last step (accepted,
  a stage, a dispatch run, a release or replay); a step publishes its next message within moments of it;
- Redis lists are FIFO (LPUSH, BRPOP from the other end): if the oldest message still queued was
  published after the event's last step + ``stall_after_s``, every message the event published is out of
  the queues (the sweep reads a few hundred messages at the consuming end, not one: kombu hands a dead
  worker's held messages back there, not in publish order); if it is not in the ``unacked`` hash either
  (held by a live worker, or waiting for the visibility timeout after a crash), no copy of it exists;
- an event that made no step for ``stall_after_s`` is also required, so the BRPOP-to-unacked window of a
  live worker (microseconds) is never mistaken for a loss.

Publishing again is safe because every stage and dispatch already accepts a second copy of a message
(redelivery): dedupe recognises the event itself, a dispatch's state and lease keep the vendor to one action.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

PUBLISHED_AT = "published_at"  # header stamped on every task message (tasks/app.py)

REPUBLISH_INGEST = "republish_ingest"
REPUBLISH_DISPATCH = "republish_dispatch"
GIVE_UP = "give_up"
SETTLE = "settle"  # every target has its result but the outcome was never set (a crash between the two)
SETTLED = "settled"  # an outcome arrived since the index was read: nothing to do


def sweep_cut(now: float, stall_after_s: float, oldest_queued_at: float | None) -> float:
    """Events whose last step is older than this are stalled candidates. ``oldest_queued_at`` is the publish
    time of the oldest message still in a queue (None: every queue is empty)."""
    cut = now - stall_after_s
    if oldest_queued_at is not None:
        cut = min(cut, oldest_queued_at - stall_after_s)
    return cut


def _message(raw: bytes | str) -> dict[str, Any] | None:
    """A kombu Redis message: the queued JSON, or an ``unacked`` entry ``[message, exchange, routing_key]``."""
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    if isinstance(data, list) and data:
        data = data[0]
    return data if isinstance(data, dict) else None


def oldest_published_at(tails: Iterable[bytes | str | None]) -> float | None:
    """The oldest publish time among the messages read at the consuming end of the queue lists (None if
    there are none). A message without the stamp (published before it existed) counts as published at 0: nothing
    is swept until it has been consumed."""
    times = []
    for raw in tails:
        if raw is None:
            continue
        message = _message(raw) or {}
        try:
            times.append(float((message.get("headers") or {}).get(PUBLISHED_AT, 0.0)))
        except (TypeError, ValueError):
            times.append(0.0)
    return min(times) if times else None


def held_event_ids(unacked: Iterable[bytes | str]) -> set[str]:
    """Event ids of the messages kombu holds as delivered but not acknowledged."""
    found = set()
    for raw in unacked:
        message = _message(raw) or {}
        event_id = (message.get("headers") or {}).get("event_id")
        if event_id:
            found.add(str(event_id))
        else:  # a message published without the header: look in the body's first argument
            found |= _body_event_ids(message)
    return found


def _body_event_ids(message: dict[str, Any]) -> set[str]:
    try:
        body = message["body"]
        if (message.get("properties") or {}).get("body_encoding") == "base64":
            body = base64.b64decode(body)
        args = json.loads(body)[0]
        first = args[0] if args else {}
        return {str(first["event_id"])} if isinstance(first, dict) and first.get("event_id") else set()
    except (KeyError, IndexError, TypeError, ValueError):
        return set()


@dataclass(frozen=True)
class Plan:
    """What to do with one stalled event: ``action``, and for a dispatch the routes still without a result."""

    action: str
    reason: str
    routes: list[dict[str, Any]] = field(default_factory=list)


def plan(record: dict[str, str], max_sweeps: int) -> Plan:
    """Decide from the event's ledger hash (``body``, ``routed``, ``target:<name>`` results, ``sweeps``)."""
    if record.get("outcome"):
        return Plan(SETTLED, f"outcome {record['outcome']}")
    sweeps = int(record.get("sweeps") or 0)
    if sweeps >= max_sweeps:
        return Plan(GIVE_UP, f"stalled: published again {sweeps} times without reaching an outcome")
    if record.get("routed"):
        alert = json.loads(record["routed"])
        routes = [r for r in alert.get("routes", []) if f"target:{r['target']}" not in record]
        if routes:
            return Plan(REPUBLISH_DISPATCH, "a dispatch message was lost", routes)
        return Plan(SETTLE, "every target has a result but the event has no outcome")
    if record.get("body"):
        return Plan(REPUBLISH_INGEST, "its ingest message was lost")
    return Plan(GIVE_UP, "stalled, and nothing to publish it again from (accepted before the sweep existed?)")
