"""Fault: a gunicorn worker of the receiver SIGKILLed under steady load, the receiver run as in production
(``gunicorn webhook_app.wsgi:app`` with the Procfile's worker class, 2 workers, as its ``web``). The master replaces it.

Requests the killed worker had open end without an answer (a connection reset, at most one per sender
thread): like any platform, the load generator sends them again with the same idempotency key. Every
other request is answered 202/200/503, and the invariant holds: a request cut off after its publish is
answered 200 duplicate on the retry and is not processed twice; one cut off before it is accepted anew."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from switchboard.runner import free_port
from switchboard.waiting import wait_for
from tests.helpers import ROOT
from tests.reliability.accounting import assert_holds, settle_and_check
from tests.reliability.scenario import load, worker
from tests.reliability.stack import Stack, build_stack
from vendor_sandbox.server import SandboxServer

THREADS = 4


def _workers(master: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(master)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


@pytest.fixture
def gunicorn(fault_sandbox: SandboxServer, tmp_path: Path) -> Iterator[tuple[Stack, str, subprocess.Popen]]:
    stack = build_stack(tmp_path, "redis", fault_sandbox.url)
    port = free_port()
    env = {**stack.env, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics")}
    os.makedirs(env["PROMETHEUS_MULTIPROC_DIR"])
    log = (tmp_path / "gunicorn.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", "2",
                             "--timeout", "30", "--graceful-timeout", "5",
                             "--worker-class", "webhook_app.gunicorn_worker.DeadlineSyncWorker",
                             "webhook_app.wsgi:app"],
                            env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: requests.get(f"{url}/healthz", timeout=1).ok and len(_workers(proc.pid)) == 2, 30, 0.1,
                 "gunicorn up with 2 workers")
        yield stack, url, proc
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()
        stack.close()


def test_gunicorn_worker_sigkill_under_load(gunicorn: tuple[Stack, str, subprocess.Popen]) -> None:
    stack, url, master = gunicorn
    current = worker(stack)
    try:
        gen = load(url, stack, threads=THREADS).start()
        wait_for(lambda: len(gen.events) >= 40, 10, 0.02, "load under way")
        victim = _workers(master.pid)[0]
        os.kill(victim, signal.SIGKILL)
        wait_for(lambda: victim not in _workers(master.pid) and len(_workers(master.pid)) == 2, 30, 0.05,
                 "gunicorn to replace the killed worker")
        gen.join()
        report = settle_and_check(stack, gen, "gunicorn worker SIGKILL (receiver)")
    finally:
        current.__exit__(None, None, None)
    gen.assert_only_allowed_answers(dropped_allowed=THREADS)
    assert_holds(report)
