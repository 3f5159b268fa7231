"""Dispatch: one task per (event, target) on ``dispatch.<priority>``; retries, dead letters, outcome.

Retry policy (DESIGN.md "Retries"): 429/5xx/timeouts retry through Celery with full-jitter exponential
backoff, or the vendor's Retry-After when longer, up to the target's ``max_attempts``; other 4xx and
exhausted retries go to the dead-letter stream. A done-marker per (event, target) keeps a redelivered
dispatch from acting twice.
"""

from __future__ import annotations

import logging
import random
import time
from typing import Any

from celery import Task

from clients.http import VendorError
from clients.pagerduty import PagerDutyClient
from switchboard.payloads.pagerduty import pagerduty_event
from tasks.app import app
from tasks.runtime import runtime

log = logging.getLogger("switchboard.dispatch")
MAX_COUNTDOWN_S = 300  # longer waits belong in the deferral store, not in broker ETAs (DESIGN.md)


def backoff_s(attempt: int, base_s: float, cap_s: float) -> float:
    """Full jitter: uniform in [0, min(cap, base * 2**attempt)]."""
    return random.uniform(0, min(cap_s, base_s * (2 ** attempt)))


def build_request(alert: dict[str, Any], target: str) -> dict[str, Any]:
    rt = runtime()
    kind = rt.config.targets[target]["kind"]
    if kind == "pagerduty":
        env_name = alert.get("routing_key_env") or rt.config.mappings["default_routing_key_env"]
        routing_key = rt.settings.secret(env_name)
        if not routing_key:
            raise VendorError(f"PagerDuty routing key: environment variable {env_name} is not set",
                              retryable=False)
        return pagerduty_event(alert, routing_key)
    raise VendorError(f"unknown target kind {kind!r}", retryable=False)


def send(target: str, request: dict[str, Any]) -> dict[str, Any]:
    rt = runtime()
    cfg = rt.config.targets[target]
    if cfg["kind"] == "pagerduty":
        client = PagerDutyClient(rt.settings.pagerduty_url, connect_s=cfg["timeout"]["connect_s"],
                                 read_s=cfg["timeout"]["read_s"])
        return client.enqueue(request)
    raise VendorError(f"unknown target kind {cfg['kind']!r}", retryable=False)


def finish(event_id: str, target: str, result: str, detail: str) -> None:
    """Record the target's result; the last target to finish sets the event's one outcome."""
    rt = runtime()
    if rt.ledger.finish_target(event_id, target, result, detail) > 0:
        return
    results = rt.ledger.target_results(event_id)
    failed = sorted(t for t, r in results.items() if r["result"] != "dispatched")
    if failed:
        rt.ledger.set_outcome(event_id, "dead_lettered", f"undeliverable to {', '.join(failed)}")
    else:
        rt.ledger.set_outcome(event_id, "dispatched", f"delivered to {', '.join(sorted(results))}")


def dead_letter(alert: dict[str, Any], target: str, request: dict[str, Any], attempts: int, error: str) -> None:
    """Write the dead letter (credentials redacted) and record the target as undeliverable."""
    runtime().dead_letters.add(event_id=alert["event_id"], target=target, request=_redact(request),
                               attempts=attempts, error=error, alert=alert)
    finish(alert["event_id"], target, "dead_lettered", error[:300])


class DispatchTask(Task):
    def on_failure(self, exc: BaseException, task_id: str, args: tuple, kwargs: dict, einfo: Any) -> None:
        # An unexpected error (not a vendor answer) must still end in a recorded outcome.
        alert, route = args[0], args[1]
        dead_letter(alert, route["target"], {}, self.request.retries + 1, f"{type(exc).__name__}: {exc}")


@app.task(bind=True, base=DispatchTask, name="switchboard.dispatch", max_retries=None)
def dispatch(self: Task, alert: dict[str, Any], route: dict[str, Any]) -> str:
    rt = runtime()
    event_id, target = alert["event_id"], route["target"]
    done_key = rt.keys.dispatch_done(event_id, target)
    started = time.time()
    if rt.redis.exists(done_key):
        rt.ledger.stage(event_id, f"dispatch:{target}", started, 0.0, result="already-dispatched")
        return "already-dispatched"
    retry_cfg = rt.config.targets[target]["retry"]
    attempt = self.request.retries + 1
    request: dict[str, Any] = {}
    try:
        request = build_request(alert, target)
        answer = send(target, request)
    except VendorError as exc:
        ms = (time.time() - started) * 1000
        if exc.retryable and attempt < retry_cfg["max_attempts"]:
            countdown = max(exc.retry_after_s or 0.0, backoff_s(attempt, retry_cfg["base_s"], retry_cfg["cap_s"]))
            countdown = min(countdown, MAX_COUNTDOWN_S)
            rt.ledger.stage(event_id, f"dispatch:{target}", started, ms, result="retry", attempt=attempt,
                            error=str(exc)[:300], countdown_s=round(countdown, 3))
            raise self.retry(exc=exc, countdown=countdown) from exc
        rt.ledger.stage(event_id, f"dispatch:{target}", started, ms, result="dead_lettered", attempt=attempt,
                        error=str(exc)[:300])
        dead_letter(alert, target, request, attempt, str(exc))
        return "dead_lettered"
    rt.redis.set(done_key, "1", ex=rt.config.service["ledger_ttl_s"])
    rt.ledger.stage(event_id, f"dispatch:{target}", started, (time.time() - started) * 1000,
                    result="dispatched", attempt=attempt, vendor_answer=answer)
    finish(event_id, target, "dispatched", str(answer.get("dedup_key", "")))
    log.info("dispatched event %s to %s", event_id, target)
    return "dispatched"


def _redact(request: dict[str, Any]) -> dict[str, Any]:
    """Dead letters are listed to operators: keep the request's shape, not its credentials."""
    out = dict(request)
    if "routing_key" in out:
        out["routing_key"] = "***"
    return out
