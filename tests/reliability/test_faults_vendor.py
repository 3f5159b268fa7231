"""Faults at the vendors, under steady load: a 5xx storm, timeouts (the vendor acts but answers after our
read timeout; or is slow before acting), a 429 storm with Retry-After. Each is a scripted burst of bad
answers from the sandbox to the next N requests of PagerDuty and of Genesys, after which they recover.

Dispatch must retry (backoff, Retry-After, AIMD on 429), resolve uncertain attempts by its ``on_uncertain``
policy (PagerDuty: resend, deduplicated by dedup_key; Genesys work items: look the item up by its
externalTag), and every accepted event must end with one outcome and one vendor action. Broker: Redis
(the vendor path does not depend on the broker; both brokers are covered by the worker and Redis scenarios)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from switchboard.waiting import wait_for
from tests.helpers import ReceiverServer
from tests.reliability.accounting import assert_holds, settle_and_check
from tests.reliability.scenario import load, worker
from tests.reliability.stack import build_stack
from vendor_sandbox.server import SandboxServer

TIMEOUT = "timeout: {connect_s: 3.05, read_s: 10}"
SHORT_TIMEOUT = "timeout: {connect_s: 1, read_s: 1}"
STORMS: dict[str, dict[str, Any]] = {
    "5xx storm": {"pagerduty": [{"status": 503, "count": 40}], "genesys": [{"status": 500, "count": 40}]},
    # PagerDuty: slow before acting (the retry is sent while the first is still being handled); Genesys:
    # acts, then answers after our timeout (the retry must find the work item, not create another).
    "timeouts": {"pagerduty": [{"pass": True, "count": 15, "latency_ms": 1500}],
                 "genesys": [{"pass": True, "count": 15, "latency_after_ms": 1500}]},
    "429 storm": {"pagerduty": [{"status": 429, "count": 40, "retry_after": 1}],
                  "genesys": [{"status": 429, "count": 40, "retry_after": 1}]},
}


@pytest.mark.parametrize("storm", list(STORMS))
def test_vendor_storm_under_load(storm: str, fault_sandbox: SandboxServer, tmp_path: Path) -> None:
    # read timeouts of 1 s for the two targets under load (pagerduty and genesys_workitem come first)
    # 429s slow the schedule down: countdowns of several seconds must not outlive the visibility timeout
    stack = build_stack(tmp_path, "redis", fault_sandbox.url, visibility_s=60,
                        config_changes={"targets.yaml": [(TIMEOUT, SHORT_TIMEOUT), (TIMEOUT, SHORT_TIMEOUT)]})
    try:
        with ReceiverServer(stack.env) as receiver:
            current = worker(stack)
            try:
                gen = load(receiver.url, stack).start()
                wait_for(lambda: len(gen.events) >= 10, 10, 0.02, "load under way")
                for vendor, script in STORMS[storm].items():
                    stack.sandbox.faults(vendor, script=script)
                gen.join()
                # the storm is over once every scripted answer was given
                wait_for(lambda: all(not stack.sandbox.get(f"/_sandbox/faults/{v}")["script"]
                                     for v in STORMS[storm]), 60, 0.2, "the storm to blow over")
                report = settle_and_check(stack, gen, f"vendor {storm} (PagerDuty + Genesys)")
            finally:
                current.__exit__(None, None, None)
        gen.assert_only_allowed_answers()
        assert_holds(report)
        assert report.outcomes == {"dispatched": report.accepted}, report  # retries outlasted the storm
    finally:
        stack.close()
