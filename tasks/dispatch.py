"""Dispatch: one task per (event, target) on ``dispatch.<priority>``; retries, dead letters, outcome.

Retry policy (DESIGN.md "Retries"): 429/5xx/timeouts retry through Celery with full-jitter exponential
backoff, or the vendor's Retry-After when longer, up to the target's ``max_attempts``; other 4xx and
exhausted retries go to the dead-letter stream (and to the fallback notifier for critical routes). A
credential rejection is its own alert, not a retry loop.

Exactly-once towards the vendor rests on a dispatch state per (event, target) in Redis: ``inflight``
before the call, ``done`` after it. A vendor that answered (any HTTP status) did not act on an error,
so ``inflight`` is cleared; a timeout or a killed worker leaves it set, and the next attempt follows
the target's ``on_uncertain`` policy: verify (look the work item up), resend (the vendor deduplicates)
or dead_letter (never risk a second phone call).
"""

from __future__ import annotations

import logging
import random
import re
import time
from typing import Any

from celery import Task

from clients.http import VendorError
from clients.oauth import CredentialError
from switchboard.deferrals import epoch
from switchboard.dispatch_lease import DONE, decide, held, lease_seconds
from switchboard.logs import log_context
from switchboard.metrics import DISPATCH_ATTEMPTS, END_TO_END_SECONDS, RATE_LIMIT_WAITS
from switchboard.payloads.fallback import credential_text, dead_letter_text
from tasks.actions import Prepared, Slowed, prepare, vendor_of
from tasks.app import SwitchboardTask, app
from tasks.runtime import runtime
from tasks.store_outage import STORE_DOWN, requeue_after_outage

log = logging.getLogger("switchboard.dispatch")
MAX_COUNTDOWN_S = 300  # longer waits belong in the deferral store, not in broker ETAs (DESIGN.md)
# A run that finds another copy calling the vendor waits here this long, polling, before it comes back
# through the broker when that call's lease ends (switchboard/dispatch_lease.py).
TURN_INLINE_WAIT_S, TURN_POLL_S = 2.0, 0.05


def backoff_s(attempt: int, base_s: float, cap_s: float) -> float:
    """Full jitter: uniform in [0, min(cap, base * 2**attempt)]."""
    return random.uniform(0, min(cap_s, base_s * (2 ** attempt)))


def finish(event_id: str, target: str, result: str, detail: str) -> None:
    """Record the target's result; the last target to finish sets the event's one outcome (one script)."""
    runtime().ledger.finish(event_id, target, result, detail)


def settle(event_id: str) -> None:
    """Every target has finished: set the event's one outcome from their results."""
    runtime().ledger.settle(event_id)


def dead_letter(alert: dict[str, Any], route: dict[str, Any], request: dict[str, Any], attempts: int,
                error: str, *, notify: bool = True) -> None:
    """Write the dead letter (credentials and phone numbers masked), record the target, maybe notify."""
    rt = runtime()
    target = route["target"]
    rt.dead_letters.add(event_id=alert["event_id"], target=target, request=redact(request), attempts=attempts,
                        error=error, alert=alert, route=route)
    finish(alert["event_id"], target, "dead_lettered", error[:300])
    wants = rt.config.targets.get(target, {}).get("fallback")
    if notify and (wants or (wants is None and route.get("priority") == "critical")):
        app.signature("switchboard.notify", args=(dead_letter_text(alert, target, error), alert["event_id"]),
                      queue="dispatch.critical").apply_async()


def credential_alert(vendor: str, error: VendorError) -> None:
    """A rejected credential: counted, logged, and told to a human at most once per period."""
    rt = runtime()
    rt.redis.incr(rt.keys.counter(f"credential_failure:{vendor}"))
    log.error("CREDENTIAL FAILURE: %s rejected our credentials (HTTP %s); dispatches to it dead-letter until fixed",
              vendor, error.status)
    every = rt.config.vendors["fallback"]["credential_alert_every_s"]
    if rt.redis.set(rt.keys.credential_alerted(vendor), "1", nx=True, ex=every):
        app.signature("switchboard.notify", args=(credential_text(vendor, str(error)), None),
                      queue="dispatch.critical").apply_async()


class DispatchTask(SwitchboardTask):
    def on_failure(self, exc: BaseException, task_id: str, args: tuple, kwargs: dict, einfo: Any) -> None:
        # An unexpected error (not a vendor answer) must still end in a recorded outcome.
        alert, route = args[0], args[1]
        dead_letter(alert, route, {}, int(kwargs.get("attempt", 1)), f"{type(exc).__name__}: {exc}")


# A reserved slot (or the vendor's window freeing up) at most this far ahead is waited for in the worker:
# a re-queue costs a broker round trip and an ETA the pool may serve late (the slot then goes unused), so
# the drain fell to ~0.64 of the limit; waiting holds a pool process at most this long (bench/flow.py).
INLINE_WAIT_S = 0.5

# Every re-queue (vendor retries, rate-limit waits, worker-lost redeliveries) counts here; a task that
# keeps coming back this often is a loop, and ends in the dead-letter stream instead.
MAX_REQUEUES = 1000


@app.task(bind=True, base=DispatchTask, name="switchboard.dispatch", max_retries=MAX_REQUEUES)
def dispatch(self: Task, alert: dict[str, Any], route: dict[str, Any], attempt: int = 1,
             slot: bool = False) -> str:
    """Deliver ``alert`` to ``route``'s target. ``attempt`` counts vendor attempts only; ``slot`` says
    this run holds a reserved rate-limit slot (a rate-limit wait is not an attempt)."""
    with log_context(event_id=alert["event_id"], alert_key=alert.get("alert_key"), source=alert.get("source"),
                     target=route["target"]):
        try:
            return _dispatch(self, alert, route, attempt, slot)
        except STORE_DOWN as exc:  # failing would ack the message: hand it back instead
            requeue_after_outage(exc, runtime().redis.ping)


def _throttle(self: Task, rt: Any, alert: dict[str, Any], route: dict[str, Any], attempt: int) -> None:
    """Take a slot of the target's rate limit; if it is not now, re-queue for exactly then."""
    name = rt.config.targets[route["target"]].get("rate_limit")
    if not name:
        return
    cfg = rt.config.vendors["rate_limits"][name]
    slot = rt.rate_limiter.acquire(name, limit_key(cfg, alert, rt), cfg, critical=route.get("priority") == "critical")
    if slot.reserved and slot.wait_s <= INLINE_WAIT_S:
        _wait_inline(name, slot.wait_s)
        return
    # Unreserved: come back once the horizon moved, spread out so a backlog does not return at once.
    countdown = slot.wait_s if slot.reserved else slot.wait_s + random.uniform(0, max(1.0, slot.wait_s * 0.2))
    _requeue(self, rt, alert, route, attempt, name, countdown, "reserved" if slot.reserved else "later")


def _admit(self: Task, rt: Any, alert: dict[str, Any], route: dict[str, Any], attempt: int) -> None:
    """Immediately before the request goes out: the vendor's own window must have room (else re-queue,
    keeping the slot). Checked this late so nothing between the check and the send can bunch requests."""
    name = rt.config.targets[route["target"]].get("rate_limit")
    if not name:
        return
    cfg = rt.config.vendors["rate_limits"][name]
    key = limit_key(cfg, alert, rt)
    wait = rt.rate_limiter.admit(name, key, cfg)
    waited = 0.0
    while 0 < wait and waited + wait <= INLINE_WAIT_S:
        # the window frees up within a moment: wait here (jittered, so two processes do not retry in step)
        pause = wait + random.uniform(0, 0.005)
        _wait_inline(name, pause)
        waited += pause
        wait = rt.rate_limiter.admit(name, key, cfg)
    if wait > 0:
        _requeue(self, rt, alert, route, attempt, name, wait + random.uniform(0, 0.02), "window")


def _wait_inline(limit: str, wait_s: float) -> None:
    if wait_s > 0.001:
        RATE_LIMIT_WAITS.labels(limit, "inline").observe(wait_s)
        time.sleep(wait_s)


def _requeue(self: Task, rt: Any, alert: dict[str, Any], route: dict[str, Any], attempt: int, limit: str,
             countdown: float, kind: str) -> None:
    RATE_LIMIT_WAITS.labels(limit, kind).observe(countdown)
    rt.redis.hincrby(rt.keys.ledger(alert["event_id"]), f"throttled:{route['target']}", 1)
    # "reserved"/"window": the slot is booked for then; otherwise it asks for a slot again when it returns
    raise self.retry(countdown=min(countdown, MAX_COUNTDOWN_S),
                     kwargs={"attempt": attempt, "slot": kind in ("reserved", "window")})


def limit_key(cfg: dict[str, Any], alert: dict[str, Any], rt: Any) -> str:
    """Which schedule of a rate limit: one per routing key (by its variable's name, never the key) or one."""
    if cfg["per"] == "routing_key":
        return alert.get("routing_key_env") or rt.config.mappings["default_routing_key_env"]
    return "all"


def _dispatch(self: Task, alert: dict[str, Any], route: dict[str, Any], attempt: int, slot: bool) -> str:
    rt = runtime()
    event_id, target = alert["event_id"], route["target"]
    state_key = rt.keys.dispatch_state(event_id, target)
    stage = f"dispatch:{target}"
    started = time.time()
    pipe = rt.redis.pipeline(transaction=False)
    pipe.get(state_key)
    rt.ledger.touch(event_id, pipe)  # progress, in the same round trip (the stalled sweep waits anew)
    state = pipe.execute()[0]
    if state == DONE:
        return _already_dispatched(rt, event_id, target, started)
    cfg = rt.config.targets[target]
    ttl = rt.config.service["ledger_ttl_s"]
    if not slot:
        _throttle(self, rt, alert, route, attempt)
    prepared: Prepared | None = None
    lease, sending = "", False
    try:
        prepared = prepare(alert, route, rt)
        state = _wait_for_turn(self, rt, state_key, state, alert, route, attempt)
        if state == DONE:
            return _already_dispatched(rt, event_id, target, started)
        _admit(self, rt, alert, route, attempt)
        lease = held(attempt, time.time() + lease_seconds(cfg["timeout"]))
        if not rt.lease.take(state_key, state, lease, ttl):  # another copy took it since we looked
            lease = ""
            _requeue_for_turn(self, rt, alert, route, attempt, 0.2)
        answer = None
        if state is not None:  # an earlier call ended or died without an answer
            answer = _after_uncertain_attempt(prepared, rt.config.on_uncertain(target))
        if answer is None:
            if prepared.overflow:
                rt.payloads.put(alert["payload_ref"], alert)
            sending = True
            answer = prepared.send()
            if prepared.after is not None:
                prepared.after()
    except Slowed as slowed:
        # The contact center is busy: wait (jittered so a burst does not come back at once), no attempt spent.
        rt.ledger.stage(event_id, stage, started, (time.time() - started) * 1000, result="slowed",
                        reason=str(slowed))
        _requeue(self, rt, alert, route, attempt, "occupancy", slowed.countdown_s * random.uniform(1.0, 1.2),
                 "occupancy")
    except VendorError as exc:
        ms = (time.time() - started) * 1000
        if exc.status is not None and sending:
            rt.redis.delete(state_key)  # the vendor answered our request with an error: it did not act
        elif lease:
            rt.lease.release_uncertain(state_key, lease, ttl)  # no answer: uncertain, but our call is over
        if isinstance(exc, CredentialError):
            credential_alert(vendor_of(cfg), exc)
        if exc.status == 429 and cfg.get("rate_limit"):
            limit = rt.config.vendors["rate_limits"][cfg["rate_limit"]]
            rate = rt.rate_limiter.penalize(cfg["rate_limit"], limit_key(limit, alert, rt), limit)
            log.warning("%s answered 429: %s rate lowered to %.2f/s", target, cfg["rate_limit"], rate)
        retry_cfg = cfg["retry"]
        request = prepared.request if prepared else {}
        if exc.retryable and attempt < retry_cfg["max_attempts"]:
            countdown = max(exc.retry_after_s or 0.0, backoff_s(attempt, retry_cfg["base_s"], retry_cfg["cap_s"]))
            countdown = min(countdown, MAX_COUNTDOWN_S)
            DISPATCH_ATTEMPTS.labels(target, "retry").inc()
            rt.ledger.stage(event_id, stage, started, ms, result="retry", attempt=attempt, error=str(exc)[:300],
                            countdown_s=round(countdown, 3))
            raise self.retry(exc=exc, countdown=countdown, kwargs={"attempt": attempt + 1, "slot": False}) from exc
        DISPATCH_ATTEMPTS.labels(target, "dead_lettered").inc()
        log.warning("dead-lettered event %s for %s after %d attempts: %s", event_id, target, attempt, exc,
                    extra={"stage": stage, "outcome": "dead_lettered", "duration_ms": round(ms, 3)})
        rt.ledger.stage(event_id, stage, started, ms, result="dead_lettered", attempt=attempt, error=str(exc)[:300])
        dead_letter(alert, route, request, attempt, str(exc))
        return "dead_lettered"
    verified = isinstance(answer, _Verified)
    DISPATCH_ATTEMPTS.labels(target, "verified-existing" if verified else "dispatched").inc()
    if alert.get("received_at"):
        END_TO_END_SECONDS.labels(target).observe(max(0.0, time.time() - epoch(alert["received_at"])))
    # done, the stage that says so and the target's result (the outcome, if it was the last), in one round trip
    with rt.ledger.batched() as pipe:
        pipe.set(state_key, DONE, ex=ttl)
        rt.ledger.stage(event_id, stage, started, (time.time() - started) * 1000,
                        result="verified-existing" if verified else "dispatched", attempt=attempt,
                        action=prepared.action, vendor_answer=_summary(answer))
        finish(event_id, target, "dispatched", f"{prepared.action}: {_summary(answer)}"[:300])
    log.info("dispatched event %s to %s (%s)", event_id, target, prepared.action.split(" (")[0],
             extra={"stage": stage, "outcome": "dispatched", "duration_ms": round((time.time() - started) * 1000, 3)})
    return "dispatched"


def _already_dispatched(rt: Any, event_id: str, target: str, started: float) -> str:
    DISPATCH_ATTEMPTS.labels(target, "already-dispatched").inc()
    rt.ledger.stage(event_id, f"dispatch:{target}", started, 0.0, result="already-dispatched")
    _record_if_missing(rt, event_id, target)
    return "already-dispatched"


def _wait_for_turn(self: Task, rt: Any, state_key: str, state: str | None, alert: dict[str, Any],
                   route: dict[str, Any], attempt: int) -> str | None:
    """The dispatch state once no other run is calling the vendor for this target: absent, ``done``, or an
    ended/expired lease. A live lease is waited for here briefly, then by coming back when it ends."""
    deadline = time.monotonic() + TURN_INLINE_WAIT_S
    turn = decide(state, time.time())
    while turn.kind == "wait":
        if time.monotonic() >= deadline:
            _requeue_for_turn(self, rt, alert, route, attempt, turn.wait_s)
        time.sleep(min(TURN_POLL_S, turn.wait_s))
        state = rt.redis.get(state_key)
        turn = decide(state, time.time())
    return state


def _requeue_for_turn(self: Task, rt: Any, alert: dict[str, Any], route: dict[str, Any], attempt: int,
                      wait_s: float) -> None:
    """Another copy of this dispatch holds the vendor call: come back when its lease ends (no attempt spent)."""
    target = route["target"]
    DISPATCH_ATTEMPTS.labels(target, "waited-for-another-copy").inc()
    rt.ledger.stage(alert["event_id"], f"wait:{target}", time.time(), 0.0,
                    result="another copy of this dispatch is calling the vendor", retry_in_s=round(wait_s, 3))
    raise self.retry(countdown=min(wait_s + random.uniform(0, 0.2), MAX_COUNTDOWN_S),
                     kwargs={"attempt": attempt, "slot": False})


def _record_if_missing(rt: Any, event_id: str, target: str) -> None:
    """An earlier run was killed (or lost Redis) between marking the target done and recording it in the
    ledger: record it now, or the event would never reach its outcome."""
    if target not in rt.ledger.target_results(event_id):
        finish(event_id, target, "dispatched", "recorded on redelivery")
    elif rt.ledger.outcome(event_id) is None and int(rt.redis.hget(rt.keys.ledger(event_id), "pending") or 0) <= 0:
        settle(event_id)


class _Verified(dict):
    """The vendor already had what an interrupted attempt created."""


def _after_uncertain_attempt(prepared: Prepared, policy: str) -> dict[str, Any] | None:
    """An earlier attempt died mid-call. Return the existing result, or None to send (again)."""
    if prepared.verify is not None and policy != "resend":
        found = prepared.verify()
        return _Verified(found) if found is not None else None
    if policy == "resend":
        return None
    raise VendorError("an earlier attempt was interrupted mid-call and the vendor may have acted; not "
                      "risking a second action (check, then `switchboard dlq replay`)", retryable=False)


def _summary(answer: dict[str, Any] | None) -> str:
    if not answer:
        return ""
    for key in ("dedup_key", "id", "contactId", "status"):
        if answer.get(key):
            return f"{key}={answer[key]}"
    conversation = answer.get("conversation") or {}
    return f"conversation={conversation.get('id', '')}"


# Anything shaped like a phone number, wherever a (configurable) dial template put it.
PHONE_LIKE = re.compile(r"^\+?[0-9][0-9 ().-]{5,}[0-9]$")


def redact(request: dict[str, Any]) -> dict[str, Any]:
    """Dead letters are shown to operators: keep the request's shape, not its credentials or phone numbers."""
    out = _mask_phones(request)
    if "routing_key" in out:
        out["routing_key"] = "***"
    return out


def _mask_phones(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _mask_phones(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask_phones(v) for v in value]
    if isinstance(value, str) and PHONE_LIKE.match(value):
        return mask_phone(value)
    return value


def mask_phone(number: str) -> str:
    return number[:2] + "*" * max(0, len(number) - 4) + number[-2:] if len(number) > 4 else "***"
