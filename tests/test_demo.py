"""The whole service as an operator runs it: ``switchboard demo`` starts the Procfile (gunicorn, a worker
per queue, beat, Flower, embedded Valkey, sandbox), posts every sample and checks each outcome, and
queries Flower's HTTP API for the workers and an event's tasks."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.helpers import ROOT


@pytest.mark.slow
def test_make_demo_passes() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SWITCHBOARD_", "PORT", "FLOWER_", "SANDBOX_"))}
    result = subprocess.run([sys.executable, "-m", "switchboard.cli", "demo"], env=env, cwd=ROOT,
                            capture_output=True, text=True, timeout=240)
    out = result.stdout
    assert result.returncode == 0, out + result.stderr + (ROOT / "var" / "demo-up.log").read_text()[-4000:]
    assert "demo passed" in out
    # pipeline_grain fused (config/service.yaml): switchboard.ingest and switchboard.dispatch
    assert "Flower lists workers ['bulk@" in out and "and 2 task kinds" in out
    from switchboard.demo_scenario import DUPLICATES, FIRST_WAVE, SECOND_WAVE

    assert len(FIRST_WAVE) + len(SECOND_WAVE) == 10  # every sample in samples/
    assert out.count(" OK") == len(FIRST_WAVE) + len(SECOND_WAVE) + len(DUPLICATES)


@pytest.mark.slow
def test_up_send_trace_and_clean_shutdown(tmp_path) -> None:
    import json
    import signal
    import socket

    import requests

    from switchboard.demo import METRICS_PORTS
    from switchboard.runner import free_port
    from switchboard.waiting import wait_for

    ports = {name: str(free_port()) for name in ("PORT", "FLOWER_PORT", "SANDBOX_PORT",
                                                 "SWITCHBOARD_EMBEDDED_REDIS_PORT", *METRICS_PORTS)}
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SWITCHBOARD_", "PORT", "FLOWER_", "SANDBOX_"))}
    env.update(ports, METRICS_DIR=str(tmp_path / "metrics"))
    log = (tmp_path / "up.log").open("w")
    up = subprocess.Popen([sys.executable, "-m", "switchboard.cli", "up"], env=env, cwd=ROOT, stdout=log,
                          stderr=subprocess.STDOUT, start_new_session=True)
    try:
        base = f"http://127.0.0.1:{ports['PORT']}"
        wait_for(lambda: requests.get(f"{base}/readyz", timeout=2).status_code == 200, 90, 0.3, "readyz")
        cli_env = {k: v for k, v in env.items() if k != "SWITCHBOARD_EMBEDDED_REDIS_PORT"}
        sent = subprocess.run([sys.executable, "-m", "switchboard.cli", "send", "genesys",
                               str(ROOT / "samples" / "genesys-trunk-down.json")],
                              env=cli_env, cwd=ROOT, capture_output=True, text=True, timeout=30)
        assert sent.returncode == 0 and sent.stdout.startswith("202 "), sent.stdout + sent.stderr
        event_id = json.loads(sent.stdout.split(" ", 1)[1])["event_id"]

        def traced() -> dict | None:
            out = subprocess.run([sys.executable, "-m", "switchboard.cli", "trace", event_id], env=cli_env,
                                 cwd=ROOT, capture_output=True, text=True, timeout=30)
            data = json.loads(out.stdout) if out.returncode == 0 else None
            return data if data and data["outcome"] else None

        trace = wait_for(traced, 60, 0.5, "trace with an outcome")
        assert trace["outcome"] == "dispatched" and trace["targets"]["pagerduty"]["result"] == "dispatched"
        # /metrics sums every gunicorn worker; the critical pool's endpoint sums its prefork children
        web = requests.get(f"{base}/metrics", timeout=5).text
        assert 'switchboard_webhooks_total{source="genesys",status="202"} 1.0' in web
        pool = f"http://127.0.0.1:{ports['CRITICAL_METRICS_PORT']}/metrics"
        assert 'switchboard_dispatch_attempts_total{result="dispatched",target="pagerduty"} 1.0' in wait_for(
            lambda: requests.get(pool, timeout=2).text, 10, 0.3, "the critical pool's metrics")
    finally:
        os.killpg(up.pid, signal.SIGINT)  # what Ctrl-C does to the foreground process group
        up.wait(timeout=40)
        log.close()
    # everything it started is gone: the embedded Valkey and the receiver no longer listen
    for port in (ports["SWITCHBOARD_EMBEDDED_REDIS_PORT"], ports["PORT"]):
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", int(port))) != 0
    assert not (ROOT / "var" / "runtime.json").exists()
