"""Beat task ``switchboard.sweep_stalled``: publish again the events whose broker message was lost.

With Redis as the broker a worker killed between BRPOP and kombu's ``unacked`` record loses the message it
was taking (kombu #305; ``switchboard/stalled.py`` explains the proof that a message is gone). Every
``stall_sweep_every_s`` this task reads the oldest queued message's publish time and the event ids held
unacknowledged, takes the in-flight events whose last step is before the cut, and for each one not held:

- routed (its dispatches were published): publishes ``switchboard.dispatch`` again for each target
  without a result, from the routed alert kept in the ledger;
- not routed yet: publishes its ingest again from the body kept in the ledger;
- every target finished but no outcome (a crash between the two): settles the outcome;
- published again ``stall_max_sweeps`` times already, or nothing to publish from: dead-letters it (each
  pending target, or ``stage:normalize`` with the envelope), so it still ends in one recorded outcome and
  ``switchboard dlq replay`` can take it from there.

Each is logged at WARNING with its event id and counted in ``switchboard_stalled_events_total{action}``.
RabbitMQ keeps unacknowledged messages on the server, so the sweep does nothing there. Never two runs at
once (a Redis lock).
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from typing import Any

import redis
from celery import Celery
from kombu.transport.redis import Channel

from switchboard.logs import log_context
from switchboard.metrics import STALLED_EVENTS
from switchboard.stalled import (
    GIVE_UP,
    REPUBLISH_DISPATCH,
    REPUBLISH_INGEST,
    SETTLE,
    SETTLED,
    held_event_ids,
    oldest_published_at,
    plan,
    sweep_cut,
)
from tasks.app import ALL_QUEUES, app
from tasks.dispatch import dead_letter, settle
from tasks.pipeline import ingest_signature
from tasks.runtime import Runtime, runtime

log = logging.getLogger("switchboard.stalled")
BATCH = 500  # stalled candidates looked at per run; the rest wait for the next run
TAIL = 200  # messages read at the consuming end of each queue list (more than a worker pool ever holds)


def broker_client(url: str) -> redis.Redis | None:
    """A client on the Redis broker's database, or None when the broker is not Redis."""
    if not url.startswith(("redis://", "rediss://", "unix://")):
        return None
    return redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=10)


def queue_lists(queues: tuple[str, ...]) -> list[str]:
    """kombu's Redis list names for each queue: one per priority step (the name alone for priority 0)."""
    return [name if step == 0 else f"{name}{Channel.sep}{step}" for name in queues for step in Channel.priority_steps]


def broker_view(client: redis.Redis) -> tuple[dict[str, float | None], set[str]]:
    """(per queue, the publish time of its oldest queued message; event ids held unacknowledged), read in one
    round trip."""
    pipe = client.pipeline(transaction=False)
    lists = {queue: queue_lists((queue,)) for queue in ALL_QUEUES}
    for names in lists.values():
        for name in names:
            # BRPOP takes from the right: the tail holds the next messages out, the oldest. Not only the last
            # one: kombu hands a dead worker's messages back (visibility timeout) by RPUSH, one after another,
            # so the few at the tail can be out of publish order among themselves.
            pipe.lrange(name, -TAIL, -1)
    pipe.hvals(Channel.unacked_key)
    *tails, unacked = pipe.execute()
    oldest, at = {}, 0
    for queue, names in lists.items():
        oldest[queue] = oldest_published_at(m for messages in tails[at:at + len(names)] for m in messages)
        at += len(names)
    return oldest, held_event_ids(unacked)


@app.task(name="switchboard.sweep_stalled")
def sweep_stalled() -> dict[str, int]:
    """One pass; returns counts per action (and skipped-* when it did not run)."""
    client = broker_client(app.conf.broker_url or "")
    if client is None:
        return {"skipped-broker": 1}
    return sweep(runtime(), client, app)


def sweep(rt: Runtime, client: redis.Redis, celery_app: Celery, now: float | None = None) -> dict[str, int]:
    """One pass over the in-flight events with ``rt``'s store, ``client`` on the Redis broker; publishes
    through ``celery_app``. Returns counts: held, maybe-queued and each action taken."""
    service = rt.config.service
    lock = f"{rt.keys.prefix}stalled:lock"
    if not rt.redis.set(lock, "1", nx=True, ex=max(5, int(service["stall_sweep_every_s"] * 4))):
        return {"skipped-running": 1}
    try:
        # The index is read before the broker: an event that steps (and publishes) in between has a newer
        # score than the cut, so it cannot be taken for lost.
        now = time.time() if now is None else now
        candidates = rt.redis.zrangebyscore(rt.keys.inflight, "-inf", now - service["stall_after_s"],
                                            start=0, num=BATCH, withscores=True)
        if not candidates:
            return {}
        oldest, held = broker_view(client)
        counts: Counter = Counter()
        for event_id, score in candidates:
            if event_id in held:
                counts["held"] += 1
                continue
            counts[_handle(rt, celery_app, event_id, score, now, oldest)] += 1
        return dict(counts)
    finally:
        rt.redis.delete(lock)


def _handle(rt: Runtime, celery_app: Celery, event_id: str, score: float, now: float,
            oldest: dict[str, float | None]) -> str:
    record = rt.redis.hgetall(rt.keys.ledger(event_id))
    if not record:  # the ledger entry expired: nothing left to account for
        rt.redis.zrem(rt.keys.inflight, event_id)
        return "expired"
    service = rt.config.service
    decision = plan(record, service["stall_max_sweeps"])
    if decision.action == SETTLED:
        rt.redis.zrem(rt.keys.inflight, event_id)
        return SETTLED
    # Where its next message would be: a routed event's on its pending targets' dispatch queues; any other
    # (ingest, or an internal event published straight to dispatch) on any queue.
    queues = ({f"dispatch.{r['priority']}" for r in decision.routes} if decision.action == REPUBLISH_DISPATCH
              else set(ALL_QUEUES))
    queued = [oldest[q] for q in queues if oldest.get(q) is not None]
    if score >= sweep_cut(now, service["stall_after_s"], min(queued) if queued else None):
        return "maybe-queued"
    STALLED_EVENTS.labels(decision.action).inc()
    with log_context(event_id=event_id):
        log.warning("event %s stalled (no step for %.0f s, no message in the broker): %s -> %s", event_id,
                    now - score, decision.reason, decision.action)
    if decision.action == SETTLE:
        settle(event_id)
        return SETTLE
    if decision.action == GIVE_UP:
        _give_up(rt, event_id, record, decision.reason)
        return GIVE_UP
    pipe = rt.redis.pipeline(transaction=False)
    pipe.hincrby(rt.keys.ledger(event_id), "sweeps", 1)
    rt.ledger.touch(event_id, pipe)  # the next run waits stall_after_s for the new message to make progress
    pipe.execute()
    rt.ledger.stage(event_id, "sweep_stalled", time.time(), 0.0, result=decision.action, reason=decision.reason)
    if decision.action == REPUBLISH_DISPATCH:
        alert = json.loads(record["routed"])
        for route in decision.routes:
            celery_app.signature("switchboard.dispatch", args=(alert, route),
                                 queue=f"dispatch.{route['priority']}").apply_async(headers={"event_id": event_id})
    elif decision.action == REPUBLISH_INGEST:
        ingest_signature(celery_app, _envelope(event_id, record), service["pipeline_grain"]).apply_async(
            headers={"event_id": event_id})
    return decision.action


def _envelope(event_id: str, record: dict[str, str]) -> dict[str, Any]:
    """The ingest message the receiver published (webhook_app/receiver.py), rebuilt from the ledger."""
    return {"event_id": event_id, "source": record["source"], "received_at": float(record["received_at"]),
            "payload": json.loads(record["body"])}


def _give_up(rt: Runtime, event_id: str, record: dict[str, str], reason: str) -> None:
    """Dead-letter what is left, so the event still ends in one outcome (and can be replayed)."""
    if record.get("routed"):
        alert = json.loads(record["routed"])
        for route in alert.get("routes", []):
            if f"target:{route['target']}" not in record:
                dead_letter(alert, route, {}, 0, reason)
        return
    alert = _envelope(event_id, record) if record.get("body") else {"event_id": event_id}
    rt.dead_letters.add(event_id=event_id, target="stage:normalize", request={}, attempts=0, error=reason,
                        alert=alert)
    rt.ledger.set_outcome(event_id, "dead_lettered", reason)
