"""Fault: a Celery worker SIGKILLed twice under steady load, each time while a vendor call is in flight
(the vendor acted, the answer has not arrived).

- RabbitMQ: the whole worker (consumer process and pool) is killed and replaced by a fresh one. With the
  production settings (acks_late, reject_on_worker_lost) the killed tasks are redelivered and every
  accepted event ends with one outcome and one vendor action.
- Redis: kombu's Redis transport takes a message with BRPOP and only then records it as unacknowledged, so
  a kill between the two loses that one message (kombu #305; RabbitMQ holds unacknowledged messages
  server-side and has no such window); measured before the stalled sweep: 1 event lost in ~1 run of 3.
  The sweep (beat, ``tasks/stalled_sweep.py``) publishes such an event again once it has proved its message
  is gone, so the scenario runs with beat and a short ``stall_after_s`` and must lose nothing.
- Both brokers: killing only the pool children (the OOM-killer case; the consumer lives) loses nothing.
  It lost 1-2 events a run until the worker-lost retry stopped waiting Celery's default 180 s.

The deliberately broken variant (the same app with acks_late off, ``tests.reliability.broken_app``) must
lose events in the RabbitMQ scenario: the test below asserts that it does, so the invariant is shown to
catch it."""

from __future__ import annotations

from pathlib import Path

from tests.helpers import ReceiverServer
from tests.reliability.accounting import Report, assert_holds, settle_and_check
from tests.reliability.scenario import load, wait_vendor_call_in_flight, worker
from tests.reliability.stack import build_stack
from vendor_sandbox.server import SandboxServer

KILLS = 2
# The stalled sweep at test speed (production: 120 s / 30 s): longer than any step-to-publish gap here.
STALL = {"service.yaml": [("stall_after_s: 120", "stall_after_s: 3"),
                          ("stall_sweep_every_s: 30", "stall_sweep_every_s: 1")]}


def _kill_scenario(broker_kind: str, sandbox: SandboxServer, tmp_path: Path, app: str, name: str,
                   drain_s: float, whole_worker: bool = True, beat: bool = True) -> tuple[Report, object]:
    stack = build_stack(tmp_path, broker_kind, sandbox.url, config_changes=STALL)
    try:
        # Each vendor answers 300 ms after acting, so a kill can land between the action and the answer.
        for vendor in ("pagerduty", "genesys"):
            stack.sandbox.faults(vendor, latency_after_ms=300)
        with ReceiverServer(stack.env) as server:
            current = worker(stack, app=app, beat=beat)
            gen = load(server.url, stack).start()
            try:
                for _ in range(KILLS):
                    wait_vendor_call_in_flight(sandbox, within_s=0.1)
                    if whole_worker:
                        current.kill()
                        current = worker(stack, app=app, beat=beat)
                    else:
                        assert current.kill_pool() >= 1
                gen.join()
                for vendor in ("pagerduty", "genesys"):
                    stack.sandbox.send("DELETE", f"/_sandbox/faults/{vendor}")
                report = settle_and_check(stack, gen, name, drain_s)
            finally:
                current.__exit__(None, None, None)
        return report, gen
    finally:
        stack.close()


def test_worker_sigkill_mid_call_loses_nothing(broker_kind: str, fault_sandbox: SandboxServer, tmp_path: Path) -> None:
    report, gen = _kill_scenario(broker_kind, fault_sandbox, tmp_path, "tasks.app",
                                 f"worker SIGKILL x{KILLS} mid-call ({broker_kind})", drain_s=90)
    gen.assert_only_allowed_answers()
    assert report.accepted == report.events_sent
    assert_holds(report)
    # the kills did land mid-call: some dispatch was redelivered after the vendor had acted
    assert report.resent + report.verified_existing >= 1, report


def test_pool_children_sigkill_mid_call_loses_nothing(broker_kind: str, fault_sandbox: SandboxServer,
                                                      tmp_path: Path) -> None:
    """The OOM-killer case: the pool processes die, the consumer lives and has their tasks tried again
    (task_retry_on_worker_lost, 1 s later: ``tasks.app.WORKER_LOST_RETRY_S``)."""
    report, gen = _kill_scenario(broker_kind, fault_sandbox, tmp_path, "tasks.app",
                                 f"pool children SIGKILL x{KILLS} mid-call ({broker_kind})", drain_s=90,
                                 whole_worker=False)
    gen.assert_only_allowed_answers()
    assert report.accepted == report.events_sent
    assert_holds(report)
    assert report.resent + report.verified_existing >= 1, report


def test_broken_variant_acks_early_loses_events(fault_sandbox: SandboxServer, tmp_path: Path) -> None:
    """acks_late off: the tasks killed mid-call were acknowledged when they started, so their events never
    reach an outcome; the invariant must report them lost (this is the check that can fail)."""
    report, gen = _kill_scenario("rabbitmq", fault_sandbox, tmp_path, "tests.reliability.broken_app",
                                 "BROKEN VARIANT acks_late off: worker SIGKILL (rabbitmq)", drain_s=8)
    gen.assert_only_allowed_answers()
    assert report.lost >= 1, report
    assert any("without an outcome" in p for p in report.problems)
