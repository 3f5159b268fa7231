"""Ingest tasks: one Celery task per pure stage (grain "chain") or one task running all (grain "fused").

Each stage is timed and written to the ledger. A stage that returns an ``Outcome`` ends the event:
the outcome is recorded and the remaining links pass the marker through untouched. The last link,
``route``, fans out one ``switchboard.dispatch`` per target onto ``dispatch.<priority>``.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from celery.signals import worker_process_shutdown

from switchboard.logs import log_context
from switchboard.metrics import STAGE_SECONDS
from switchboard.stages import STAGE_ORDER, Outcome
from switchboard.stages.dedupe import dedupe
from switchboard.stages.gate import gate
from switchboard.stages.normalize import normalize
from switchboard.stages.route import route
from tasks.app import DISPATCH_QUEUES, app
from tasks.enrichment import enrich_stage  # the pure enrich + its CRM cache and config audit
from tasks.kept_publisher import KeptPublisher
from tasks.runtime import runtime
from tasks.store_outage import STORE_DOWN, requeue_after_outage

log = logging.getLogger("switchboard.pipeline")
STAGES = {"normalize": normalize, "dedupe": dedupe, "enrich": enrich_stage, "gate": gate, "route": route}
ENDED = "_ended"
# One producer kept per pool process (a prefork child publishes one message at a time): apply_async's producer
# pool re-binds and re-routes on every publish (tasks/kept_publisher.py). Retries follow the app's publish policy.
dispatch_publisher = KeptPublisher(app, DISPATCH_QUEUES, keep=2)


@worker_process_shutdown.connect
def _close_dispatch_publisher(**_: Any) -> None:
    dispatch_publisher.close()  # RabbitMQ then logs a closed connection, not a client that vanished


def run_stage(name: str, data: dict[str, Any], timings: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run one stage on ``data`` and record it; return the next link's input. With ``timings`` (a fused
    task), the stage's result and duration go there for the task's one log line instead of a line each."""
    if data.get(ENDED):
        return data
    with log_context(event_id=data["event_id"], alert_key=data.get("alert_key"), source=data.get("source")):
        result = _run_stage(name, data, timings)
    return result


def _run_stage(name: str, data: dict[str, Any], timings: dict[str, Any] | None = None) -> dict[str, Any]:
    rt = runtime()
    event_id = data["event_id"]
    if name == STAGE_ORDER[0] and not rt.ledger.take(event_id):
        # The receiver answered 503 for it (its publish was reported failed, yet the broker had the message):
        # the sender sends it again as a new event, so this copy must not run.
        log.warning("event %s was not accepted (or un-accepted after a failed publish): message dropped", event_id)
        return {"event_id": event_id, ENDED: True}
    started = time.time()
    try:
        result = STAGES[name](data, rt.stage_context())
    except STORE_DOWN:
        raise  # not the event's fault: the task hands its message back (run_guarded)
    except Exception as exc:
        # A bug or an unexpected payload must not lose the event: it ends dead-lettered, with the error.
        log.exception("stage %s failed for event %s", name, event_id)
        rt.dead_letters.add(event_id=event_id, target=f"stage:{name}", request={}, attempts=1,
                            error=f"{type(exc).__name__}: {exc}", alert=data)
        ms = (time.time() - started) * 1000
        rt.ledger.stage(event_id, name, started, ms, result="error")
        rt.ledger.set_outcome(event_id, "dead_lettered", f"stage {name} failed: {type(exc).__name__}")
        if timings is not None:
            timings["stages"][name] = round(ms, 3)
            timings.update(stage=name, outcome="dead_lettered", reason=type(exc).__name__,
                           alert_key=data.get("alert_key"))
        return {"event_id": event_id, ENDED: True}
    ms = (time.time() - started) * 1000
    STAGE_SECONDS.labels(name).observe(ms / 1000)
    kind = result.kind if isinstance(result, Outcome) else "ok"
    alert_key = None if isinstance(result, Outcome) else result.get("alert_key") or data.get("alert_key")
    if timings is not None:
        timings["stages"][name] = round(ms, 3)
        timings.update(stage=name, outcome=kind, reason=getattr(result, "reason", None),
                       alert_key=alert_key or data.get("alert_key"))
    else:
        log.info("stage %s: %s", name, kind, extra={"stage": name, "outcome": kind, "duration_ms": round(ms, 3),
                                                     "alert_key": alert_key})
    if isinstance(result, Outcome):
        note = {}
        if result.kind == "deferred" and result.release_at is not None:
            # Held, not dropped: the deferral store gives this stage's input back at release time.
            held = result.hold_data if result.hold_data is not None else data
            released = rt.deferrals.hold(event_id, stage=name, data=held, release_at=result.release_at,
                                         reason=result.reason)
            note["release_at"] = released
        rt.ledger.stage(event_id, name, started, ms, result=result.kind, reason=result.reason, **note)
        rt.ledger.set_outcome(event_id, result.kind, result.reason)
        return {"event_id": event_id, ENDED: True}
    if name == "normalize":
        rt.ledger.set_fields(event_id, alert_key=result["alert_key"])
    rt.ledger.stage(event_id, name, started, ms, result="ok")
    if name == "route":
        fan_out(result)
    return result


def fan_out(alert: dict[str, Any]) -> None:
    """Publish one dispatch per routed target (a redelivered route re-publishes; dispatch is idempotent)."""
    rt = runtime()
    # Inside the task's ledger batch (both grains), the incident record and the routing join the stages' one
    # round trip (three before: bench/pipeline_cpu.py counts them)
    rt.incidents.record_delivery(alert, pipe=rt.ledger.batch_pipe())
    # routed: what the stalled sweep publishes again if a dispatch message is lost (tasks/stalled_sweep.py)
    rt.ledger.route_once(alert["event_id"], [r["target"] for r in alert["routes"]], alert)
    rt.ledger.flush()  # the stages are recorded before any dispatch can record its own
    for r in alert["routes"]:
        # argsrepr: a short form for Flower (the event id, what operators search for) instead of a repr of
        # the whole alert on every publish
        shown = repr(({"event_id": alert["event_id"], "alert_key": alert.get("alert_key")}, {"target": r["target"]}))
        dispatch_publisher.publish(
            app.signature("switchboard.dispatch", args=(alert, r), queue=f"dispatch.{r['priority']}"),
            headers={"event_id": alert["event_id"]}, argsrepr=shown)


def _make_stage_task(name: str) -> Any:
    @app.task(name=f"switchboard.stage.{name}")
    def stage_task(data: dict[str, Any]) -> dict[str, Any]:
        def run() -> dict[str, Any]:
            with runtime().ledger.batched():  # the stage's ledger writes in one round trip
                return run_stage(name, data)
        return run_guarded(run)

    stage_task.__doc__ = f"Pipeline stage {name!r} (see switchboard.stages.{name})."
    return stage_task


stage_tasks = {name: _make_stage_task(name) for name in STAGE_ORDER}


@app.task(name="switchboard.ingest")
def ingest(envelope: dict[str, Any]) -> dict[str, Any]:
    """Every stage in one task (grain "fused"); each is still timed and traced by name."""
    def run_all() -> dict[str, Any]:
        data = envelope
        # One log line for the five stages, with each one's duration: a line per stage was ~8% of an ingest
        # pool's CPU (bench/profile.py); the ledger keeps each stage's own entry either way.
        timings: dict[str, Any] = {"stages": {}}
        with runtime().ledger.batched():  # every stage's ledger writes in one round trip
            for name in STAGE_ORDER:
                data = run_stage(name, data, timings)
        _log_ingest(envelope, timings)
        # Nothing reads a fused task's result; the whole alert would be pickled to the pool's main process
        # and repr'd into its task-succeeded event (bench/profile.py).
        return {"event_id": data["event_id"]}
    return run_guarded(run_all)


def _log_ingest(envelope: dict[str, Any], timings: dict[str, Any]) -> None:
    if not timings["stages"]:
        return  # dropped before the first stage ran (Ledger.take), already logged
    stage, outcome = timings["stage"], timings["outcome"]
    ended = f"{outcome} at {stage}" + (f" ({timings['reason']})" if timings.get("reason") else "")
    total = round(sum(timings["stages"].values()), 3)
    with log_context(event_id=envelope["event_id"], source=envelope.get("source"), alert_key=timings["alert_key"]):
        log.info("ingest: %s in %.3f ms", "routed" if outcome == "ok" else ended, total,
                 extra={"stage": stage, "outcome": outcome, "duration_ms": total, "stages": timings["stages"]})


def run_guarded(body: Any) -> dict[str, Any]:
    """Run a stage task's body; if Redis is unreachable, the message goes back to the broker (a failed
    task would be acknowledged and its event never reach an outcome). Stages are safe to run again."""
    try:
        return body()
    except STORE_DOWN as exc:
        requeue_after_outage(exc, runtime().redis.ping)
