"""Test helpers: real services on loopback (receiver thread, Celery worker subprocess), env builders."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import uuid
from pathlib import Path
from typing import Any

from werkzeug.serving import make_server

from switchboard.config import Config
from switchboard.dev_defaults import sandbox_vendor_environment
from switchboard.settings import load_settings
from switchboard.waiting import wait_for

# Parallel local runs each point this at their own redis-server; CI uses the machine's 6379.
REDIS_PORT = int(os.environ.get("SWITCHBOARD_TEST_REDIS_PORT", "6379"))

ROOT = Path(__file__).resolve().parent.parent
QUEUES = "ingest,dispatch.critical,dispatch.default,dispatch.bulk"
SECRETS = {
    "SWITCHBOARD_SECRET_GENESYS": "genesys-test-secret,genesys-old-secret",
    "SWITCHBOARD_SECRET_CXONE": "cxone-test-secret",
    "SWITCHBOARD_SECRET_ZTP": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    "SWITCHBOARD_SECRET_IOT": "whsec_dGVzdC1pb3Qtc2VjcmV0LWtleQ==",
    "SWITCHBOARD_SECRET_GENERIC": "generic-test-secret",
    "SWITCHBOARD_PD_KEY_DEFAULT": "rk-default",
    "SWITCHBOARD_PD_KEY_VOICE_NETWORK": "rk-voice",
    "SWITCHBOARD_PD_KEY_CC_OPS": "rk-ccops",
}


PAYLOAD_TOKEN = "payload-test-token"
FAST_RETRY = "retry: {max_attempts: 4, base_s: 0.05, cap_s: 0.2}"
PD_LIMIT = "{rate: 1.9, burst: 2, per: routing_key, max_in_window: {count: 120, window_s: 60}}"


ALERTING_OFF = "dedupe: {window_s: 0}\nflapping: {cooldown_s: 0}\ngrouping: {window_s: 0}\n"


def config_copy(directory: Path, changes: dict[str, list[tuple[str, str]]] | None = None, *,
                alerting: bool = False) -> Path:
    """A copy of ``config/`` in ``directory`` with fast retries and ``changes`` ({file: [(old, new)]}: each
    ``old`` must be there, so a config edit that makes a test's change silently miss fails loudly).
    Alert intelligence (dedupe window, flapping, grouping) is off unless ``alerting``: most tests post the
    same samples again and again and count every dispatch; tests/test_alert_intelligence.py turns it on."""
    directory.mkdir(parents=True, exist_ok=True)
    for path in (ROOT / "config").glob("*.yaml"):
        text = path.read_text()
        if path.name == "targets.yaml":
            text = re.sub(r"retry: \{[^}]*\}", FAST_RETRY, text)
        if path.name == "mappings.yaml":
            # Tests page thousands of made-up (unmapped) entities: their config-audit chat messages would
            # flood the Slack emulator the fallback tests read. tests/test_enrichment.py turns it back on.
            text = re.sub(r"^audit_notify_every_s: \d+", "audit_notify_every_s: 0", text, flags=re.M)
        if path.name == "alerting.yaml" and not alerting:
            text = ALERTING_OFF
        if path.name == "routing.yaml" and not alerting:
            text = re.sub(r"^    suppress_for_s: \d+\n", "", text, flags=re.M)
        for old, new in (changes or {}).get(path.name, []):
            assert old in text, f"{path.name} no longer contains {old!r}"
            text = text.replace(old, new, 1)
        (directory / path.name).write_text(text)
    return directory


def queued_event_ids(broker: Any, queue: str = "ingest") -> list[str]:
    """The event ids of the messages waiting on a Redis broker's ``queue`` (a redis.Redis on its database)."""
    return [json.loads(m)["headers"]["event_id"] for m in broker.lrange(queue, 0, -1)]


def service_env(broker_url: str, redis_url: str, pagerduty_url: str, prefix: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHBOARD_")}
    env.update(SECRETS)
    env.update({"SWITCHBOARD_BROKER_URL": broker_url, "SWITCHBOARD_REDIS_URL": redis_url,
                "SWITCHBOARD_KEY_PREFIX": prefix})
    env.update(sandbox_vendor_environment(pagerduty_url, {}))
    env["SWITCHBOARD_PAYLOAD_TOKEN"] = PAYLOAD_TOKEN
    env.update(extra)
    return env


class ReceiverServer:
    """The Flask receiver on a real loopback port, in a thread."""

    def __init__(self, env: dict[str, str], config: Config | None = None) -> None:
        from webhook_app import create_app

        self.settings = load_settings(env)
        self.app = create_app(self.settings, config)
        self.state = self.app.extensions["switchboard"]
        self.server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> ReceiverServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def stop_process(proc: subprocess.Popen, timeout: float = 20) -> None:
    """SIGTERM (a clean shutdown), then SIGKILL if it has not ended within ``timeout`` seconds."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class WorkerProcess:
    """A real ``celery worker`` subprocess consuming every Switchboard queue."""

    def __init__(self, env: dict[str, str], log_dir: Path, queues: str = QUEUES, concurrency: int = 2,
                 beat: bool = False) -> None:
        self.name = f"test-{uuid.uuid4().hex[:8]}@%h"
        self.log_path = log_dir / f"worker-{uuid.uuid4().hex[:8]}.log"
        self.env = env
        self.cmd = [sys.executable, "-m", "celery", "-A", "tasks.app", "worker", "-Q", queues, "-n", self.name,
                    "-c", str(concurrency), "-E", "-l", "info", "--without-gossip", "--without-mingle"]
        if beat:  # the embedded scheduler: releases held events, like the Procfile's beat process
            self.cmd += ["-B", "-s", str(log_dir / f"beat-{uuid.uuid4().hex[:8]}")]

    def __enter__(self) -> WorkerProcess:
        self.log = self.log_path.open("a")
        # Own session: ``kill()`` can SIGKILL the main process and its pool children together.
        self.proc = subprocess.Popen(self.cmd, env=self.env, cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        wait_for(lambda: " ready." in self.log_path.read_text() or self.proc.poll() is not None, 60, 0.1,
                 "celery worker ready")
        if self.proc.poll() is not None:
            raise RuntimeError(f"worker exited: {self.log_path.read_text()[-3000:]}")
        return self

    def kill(self) -> None:
        """SIGKILL the whole worker (main process and pool), as a crashed machine would stop."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def kill_pool(self) -> int:
        """SIGKILL every pool child (the processes running tasks), as the OOM killer would, leaving the
        consumer process to see them lost and respawn them. Returns how many were killed."""
        found = subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True).stdout
        children = [int(pid) for pid in found.split()]
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        return len(children)

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is not None:
            self.log.close()
            return
        stop_process(self.proc)
        self.log.close()
