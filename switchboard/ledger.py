"""The outcome ledger: every accepted event's stages and its one terminal outcome, in Redis.

``accepted`` is counted at the receiver; each event then gets exactly one of ``dispatched``,
``duplicate``, ``suppressed``, ``deferred``, ``dead_lettered`` (HSETNX: a second attempt to set an
outcome is ignored and reported). The accounting check is: accepted == sum of outcome counters.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import redis

from switchboard import fast_json
from switchboard import ledger_scripts as scripts
from switchboard.metrics import OUTCOMES as OUTCOMES_METRIC
from switchboard.metrics import reason_class
from switchboard.store import Keys

OUTCOMES = ("dispatched", "duplicate", "suppressed", "deferred", "dead_lettered")


@dataclass
class _Batch:
    """The open batch of this task (``Ledger.batched``): field writes wait in ``pipe``, stage records in
    ``stages`` (per event, in order) until it is sent."""
    pipe: Any
    stages: dict[str, list[str]] = field(default_factory=dict)


_batch: ContextVar[_Batch | None] = ContextVar("switchboard_ledger_batch", default=None)


class Ledger:
    def __init__(self, client: redis.Redis, keys: Keys, ttl_s: int) -> None:
        self.r = client
        self.keys = keys
        self.ttl_s = ttl_s
        self._set_outcome = client.register_script(scripts.SET_OUTCOME)
        self._reopen = client.register_script(scripts.REOPEN)
        self._withdraw = client.register_script(scripts.WITHDRAW)
        self._finish_target = client.register_script(scripts.FINISH_TARGET)
        self._finish = client.register_script(scripts.FINISH)
        self._settle = client.register_script(scripts.SETTLE_SCRIPT)
        self._unaccept = client.register_script(scripts.UNACCEPT)
        self._take = client.register_script(scripts.TAKE)
        self._route_once = client.register_script(scripts.ROUTE_ONCE)

    def accept(self, event_id: str, source: str, received_at: float, idempotency: list[str]) -> None:
        key = self.keys.ledger(event_id)
        pipe = self.r.pipeline()
        pipe.hset(key, mapping={"event_id": event_id, "source": source, "received_at": received_at,
                                "idempotency_keys": fast_json.dumps(idempotency)})
        pipe.expire(key, self.ttl_s)
        pipe.incr(self.keys.counter("accepted"))
        pipe.zadd(self.keys.inflight, {event_id: received_at})
        pipe.execute()

    def accept_internal(self, event_id: str, source: str, origin: str) -> bool:
        """An event the service itself creates (an incident update, a reconciliation re-send): it is
        accounted like an accepted one (and counted as ``internal`` too, so accepted - internal = 202s).
        False if it already exists (a re-run of the creating task must not count it twice)."""
        key = self.keys.ledger(event_id)
        if not self.r.hsetnx(key, "event_id", event_id):
            return False
        pipe = self.r.pipeline()
        pipe.hset(key, mapping={"source": source, "received_at": time.time(), "origin": origin,
                                "idempotency_keys": "[]"})
        pipe.expire(key, self.ttl_s)
        pipe.incr(self.keys.counter("accepted"))
        pipe.incr(self.keys.counter("internal"))
        pipe.zadd(self.keys.inflight, {event_id: time.time()})
        pipe.execute()
        return True

    def accepted(self, event_id: str) -> bool:
        """Whether ``event_id`` is accepted (its record exists; an un-accepted or never accepted one has none)."""
        return bool(self.r.exists(self.keys.ledger(event_id)))

    def unaccept(self, event_id: str, idempotency_keys: list[str]) -> bool:
        """Undo ``accept`` (and the idempotency claims) for an event whose publish failed, so the sender's retry
        is a new event; False if a worker has already taken it (the broker had it: it stays accepted)."""
        keys = [self.keys.ledger(event_id), self.keys.counter("accepted"), self.keys.inflight, *idempotency_keys]
        return bool(self._unaccept(keys=keys, args=[event_id]))

    def take(self, event_id: str) -> bool:
        """A worker starts ``event_id``: False if it was never accepted or was un-accepted (drop the message)."""
        return bool(self._take(keys=[self.keys.ledger(event_id)]))

    @contextmanager
    def batched(self) -> Iterator[Any]:
        """Inside the block, ``stage`` and ``set_fields`` are sent together in one round trip: when the block
        ends, or at ``flush`` (also before an outcome is set, so a reader who sees the outcome sees the
        stages). A fused ingest task writes its five stages this way (bench/: ~7 round trips fewer). The
        stages of one event go as one RPUSH with one EXPIRE and one in-flight touch, not three commands per
        stage (``python -m bench.redis_commands``: 90 -> 76 commands per event, with dispatch's use of this).
        Yields the pipeline, so the caller can add its own writes to the same round trip."""
        batch = _Batch(self.r.pipeline(transaction=False))
        token = _batch.set(batch)
        try:
            yield batch.pipe
        except BaseException:
            try:  # the stages that did run are still recorded; a store that is down is the caller's error
                self._send(batch)
            except redis.RedisError:
                pass
            raise
        else:
            self._send(batch)
        finally:
            _batch.reset(token)

    def flush(self) -> None:
        """Send what the open batch holds now (nothing to do outside ``batched``)."""
        batch = _batch.get()
        if batch is not None:
            self._send(batch)

    def _send(self, batch: _Batch, then: tuple[str, list[str], list[Any]] | None = None) -> Any:
        """Send the batch; with ``then`` (a script's text, keys, args), that script runs last in the same round
        trip and its answer is returned."""
        pipe = batch.pipe
        for event_id, entries in batch.stages.items():
            key = self.keys.ledger_stages(event_id)
            pipe.rpush(key, *entries)
            pipe.expire(key, self.ttl_s)
        if batch.stages:
            # progress: the stalled sweep waits anew (XX: only while the event is still in flight)
            pipe.zadd(self.keys.inflight, dict.fromkeys(batch.stages, time.time()), xx=True)
            batch.stages.clear()
        if then is not None:
            script, keys, args = then
            pipe.eval(script, len(keys), *keys, *args)  # the text, not EVALSHA: see IncidentStore.record_delivery
        if len(pipe):
            answers = pipe.execute()
            return answers[-1] if then is not None else None
        return None

    def stage(self, event_id: str, stage: str, started: float, duration_ms: float, **note: Any) -> None:
        entry = fast_json.dumps({"stage": stage, "at": started, "ms": round(duration_ms, 3), **note}, default=str)
        batch = _batch.get()
        if batch is not None:
            batch.stages.setdefault(event_id, []).append(entry)
            return
        key = self.keys.ledger_stages(event_id)
        pipe = self.r.pipeline()
        pipe.rpush(key, entry)
        pipe.expire(key, self.ttl_s)
        pipe.zadd(self.keys.inflight, {event_id: time.time()}, xx=True)  # progress: the stalled sweep waits anew
        pipe.execute()

    def touch(self, event_id: str, pipe: Any = None) -> None:
        """The event made progress now (only while it has no outcome): the stalled sweep leaves it alone for
        ``stall_after_s`` more. With ``pipe``, the write joins the caller's round trip."""
        (pipe if pipe is not None else self.r).zadd(self.keys.inflight, {event_id: time.time()}, xx=True)

    def set_fields(self, event_id: str, **fields: Any) -> None:
        batch = _batch.get()
        (self.r if batch is None else batch.pipe).hset(
            self.keys.ledger(event_id),
            mapping={k: v if isinstance(v, str | int | float) else fast_json.dumps(v) for k, v in fields.items()})

    def batch_pipe(self) -> Any:
        """The open batch's pipeline (``batched``), for a caller's own writes in its round trip; else None."""
        batch = _batch.get()
        return None if batch is None else batch.pipe

    def route_once(self, event_id: str, targets: list[str], routed: dict[str, Any]) -> None:
        """Record ``event_id``'s targets (``pending``: how many) and its routed alert, unless a route already
        did. Inside ``batched``, joins the batch's round trip (as EVAL with the script's text: see
        ``IncidentStore.record_delivery``)."""
        key = self.keys.ledger(event_id)
        args = [len(targets), fast_json.dumps(targets), fast_json.dumps(routed)]
        pipe = self.batch_pipe()
        if pipe is None:
            self._route_once(keys=[key], args=args)
        else:
            pipe.eval(scripts.ROUTE_ONCE, 1, key, *args)

    def expect_targets(self, event_id: str, targets: list[str]) -> None:
        self.r.hset(self.keys.ledger(event_id), mapping={"pending": len(targets), "targets": fast_json.dumps(targets)})

    def finish_target(self, event_id: str, target: str, result: str, detail: str = "") -> int:
        """Record one target's terminal result; return how many targets are still pending, or -1 if this
        target's result was already recorded (by another run: nothing changes)."""
        entry = fast_json.dumps({"result": result, "detail": detail, "at": time.time()})
        return int(self._finish_target(keys=[self.keys.ledger(event_id)], args=[target, entry]))

    def finish(self, event_id: str, target: str, result: str, detail: str = "") -> str | None:
        """Record one target's terminal result and, if no target is pending any more, set the event's one
        outcome from their results (``settle``), in one script. Returns the outcome set, else None (targets
        still pending, this target already recorded, or the event already had an outcome). Inside ``batched``,
        the batch is sent with it, in one round trip."""
        entry = fast_json.dumps({"result": result, "detail": detail, "at": time.time()})
        keys, args = self._settle_keys(event_id), [target, entry, time.time(), event_id]
        batch = _batch.get()
        if batch is None:
            answer = self._finish(keys=keys, args=args)
        else:  # the batch's writes, then this script, in one round trip: the stages still precede the outcome
            answer = self._send(batch, then=(scripts.FINISH, keys, args))
        return self._settled(answer[1:]) if int(answer[0]) == 0 else None

    def settle(self, event_id: str) -> str | None:
        """Every target has finished: set the event's one outcome from their results (dead_lettered if any is
        not dispatched). Returns it, or None if the event already had one."""
        self.flush()
        return self._settled(self._settle(keys=self._settle_keys(event_id), args=[time.time(), event_id]))

    def _settle_keys(self, event_id: str) -> list[str]:
        return [self.keys.ledger(event_id), self.keys.counter("outcome:dispatched"),
                self.keys.counter("outcome:dead_lettered"), self.keys.inflight]

    @staticmethod
    def _settled(answer: list[Any]) -> str | None:
        outcome, reason, recorded = answer
        if not int(recorded):
            return None
        OUTCOMES_METRIC.labels(outcome, reason_class(reason)).inc()
        return outcome

    def target_results(self, event_id: str) -> dict[str, dict[str, Any]]:
        data = self.r.hgetall(self.keys.ledger(event_id))
        return {k.split(":", 1)[1]: json.loads(v) for k, v in data.items() if k.startswith("target:")}

    def set_outcome(self, event_id: str, outcome: str, reason: str) -> bool:
        """Record the terminal outcome; False if the event already had one (it is never overwritten)."""
        if outcome not in OUTCOMES:
            raise ValueError(f"unknown outcome {outcome!r}")
        self.flush()
        recorded = bool(self._set_outcome(keys=[self.keys.ledger(event_id), self.keys.counter(f"outcome:{outcome}"),
                                                self.keys.inflight],
                                          args=[outcome, reason, time.time(), event_id]))
        if recorded:
            OUTCOMES_METRIC.labels(outcome, reason_class(reason)).inc()
        return recorded

    def reopen_target(self, event_id: str, target: str) -> bool:
        """Make a dead-lettered target pending again for a replay; False if it was not dead-lettered.

        ``target=""`` reopens an event that dead-lettered in a pipeline stage (before any target)."""
        return bool(self._reopen(keys=[self.keys.ledger(event_id), self.keys.counter("outcome:dead_lettered"),
                                       self.keys.inflight], args=[target, time.time(), event_id]))

    def withdraw_outcome(self, event_id: str, outcome: str) -> bool:
        """Take back ``outcome`` (e.g. ``deferred`` on release); False if the event no longer has it."""
        return bool(self._withdraw(keys=[self.keys.ledger(event_id), self.keys.counter(f"outcome:{outcome}"),
                                         self.keys.inflight], args=[outcome, time.time(), event_id]))

    def outcome(self, event_id: str) -> str | None:
        return self.r.hget(self.keys.ledger(event_id), "outcome")

    def trace(self, event_id: str) -> dict[str, Any] | None:
        data = self.r.hgetall(self.keys.ledger(event_id))
        if not data:
            return None
        stages = [json.loads(s) for s in self.r.lrange(self.keys.ledger_stages(event_id), 0, -1)]
        out: dict[str, Any] = {
            "event_id": event_id,
            "source": data.get("source"),
            "received_at": float(data["received_at"]) if "received_at" in data else None,
            "alert_key": data.get("alert_key"),
            "outcome": data.get("outcome"),
            "reason": data.get("reason"),
            "finished_at": float(data["finished_at"]) if "finished_at" in data else None,
            "targets": self.target_results(event_id),
            "replays": int(data.get("replays", 0)),
            "releases": int(data.get("releases", 0)),
            "stages": stages,
        }
        if data.get("origin"):  # not a webhook: an incident update, a re-send by reconciliation (and what it redoes)
            out.update(origin=data["origin"], **({"reconciles": data["reconciles"]} if "reconciles" in data else {}))
        return out

    def counts(self) -> dict[str, int]:
        names = ["accepted", *(f"outcome:{o}" for o in OUTCOMES)]
        values = self.r.mget([self.keys.counter(n) for n in names])
        return {n.removeprefix("outcome:"): int(v or 0) for n, v in zip(names, values, strict=True)}
