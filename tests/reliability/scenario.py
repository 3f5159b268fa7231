"""Pieces shared by the fault scenarios: workers (optionally of another Celery app), the moment a vendor
call is in flight, and the steady load every scenario runs under."""

from __future__ import annotations

import time
from typing import Any

from switchboard.waiting import wait_for
from tests.helpers import WorkerProcess
from tests.reliability.load import LoadGenerator
from tests.reliability.stack import Stack
from vendor_sandbox.server import SandboxServer

# The steady load: 20 webhooks/s (half PagerDuty pages, half Genesys work items) for at most 6 s.
RATE, MAX_EVENTS, DURATION_S = 20.0, 120, 6.0


def worker(stack: Stack, *, app: str = "tasks.app", concurrency: int = 4, beat: bool = False) -> WorkerProcess:
    """A started worker on every queue; ``app`` swaps the Celery app (the broken variant); ``beat`` embeds
    the scheduler (the stalled sweep, releases)."""
    process = WorkerProcess(stack.env, stack.logs, concurrency=concurrency, beat=beat)
    process.cmd[process.cmd.index("tasks.app")] = app
    return process.__enter__()


def load(url: str, stack: Stack, **overrides: Any) -> LoadGenerator:
    options = {"rate": RATE, "max_events": MAX_EVENTS, "max_duration_s": DURATION_S, **overrides}
    return LoadGenerator(url, stack.config, **options)  # type: ignore[arg-type]


def vendor_call_in_flight(sandbox: SandboxServer, within_s: float) -> bool:
    """A vendor request arrived less than ``within_s`` ago: with an answer delay longer than that, the
    vendor has acted (it records as it handles) and the worker is still waiting for the answer."""
    entries = sandbox.state.recorder.entries(include_rejected=True)
    return bool(entries) and time.time() - entries[-1]["at"] < within_s and entries[-1]["vendor"] in (
        "pagerduty", "genesys")


def wait_vendor_call_in_flight(sandbox: SandboxServer, within_s: float = 0.1, timeout: float = 10) -> None:
    wait_for(lambda: vendor_call_in_flight(sandbox, within_s), timeout, 0.01, "a vendor call in flight")
