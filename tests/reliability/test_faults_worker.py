"""Fault: the Celery worker SIGKILLed (main process and pool) twice under steady load, each time while a
vendor call is in flight (the vendor acted, the answer has not arrived), and replaced by a fresh worker.

With the production settings (acks_late, reject_on_worker_lost) the killed tasks are redelivered and every
accepted event ends with one outcome and one vendor action. The deliberately broken variant (the same
app with acks_late off, ``tests.reliability.broken_app``) must lose events in the same scenario: the
test below asserts that it does, so the invariant is shown to catch it."""

from __future__ import annotations

from pathlib import Path

from tests.helpers import ReceiverServer
from tests.reliability.accounting import Report, assert_holds, settle_and_check
from tests.reliability.scenario import load, wait_vendor_call_in_flight, worker
from tests.reliability.stack import build_stack
from vendor_sandbox.server import SandboxServer

KILLS = 2


def _kill_scenario(broker_kind: str, sandbox: SandboxServer, tmp_path: Path, app: str, name: str,
                   drain_s: float) -> tuple[Report, object]:
    stack = build_stack(tmp_path, broker_kind, sandbox.url)
    try:
        # Each vendor answers 300 ms after acting, so a kill can land between the action and the answer.
        for vendor in ("pagerduty", "genesys"):
            stack.sandbox.faults(vendor, latency_after_ms=300)
        with ReceiverServer(stack.env) as server:
            current = worker(stack, app=app)
            gen = load(server.url, stack).start()
            try:
                for _ in range(KILLS):
                    wait_vendor_call_in_flight(sandbox, within_s=0.1)
                    current.kill()
                    current = worker(stack, app=app)
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


def test_broken_variant_acks_early_loses_events(fault_sandbox: SandboxServer, tmp_path: Path) -> None:
    """acks_late off: the tasks killed mid-call were acknowledged when they started, so their events never
    reach an outcome; the invariant must report them lost (this is the check that can fail)."""
    report, gen = _kill_scenario("rabbitmq", fault_sandbox, tmp_path, "tests.reliability.broken_app",
                                 "BROKEN VARIANT acks_late off: worker SIGKILL (rabbitmq)", drain_s=8)
    gen.assert_only_allowed_answers()
    assert report.lost >= 1, report
    assert any("without an outcome" in p for p in report.problems)
