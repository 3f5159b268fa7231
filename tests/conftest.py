"""Fixtures: the real Redis and RabbitMQ of this machine, isolated per run (own DBs, key prefixes,
vhosts), the vendor sandbox as a real HTTP server, the receiver on a real port, real Celery workers."""

from __future__ import annotations

import re
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from switchboard.runner import free_port
from switchboard.store import Keys
from tests.helpers import ROOT, ReceiverServer, WorkerProcess, service_env
from vendor_sandbox.server import SandboxServer

REDIS_STATE_URL = "redis://127.0.0.1:6379/11"
REDIS_BROKER_DBS = {"receiver": 12, "pipeline": 13}


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="session")
def run_id() -> str:
    return uuid.uuid4().hex[:10]


@pytest.fixture(scope="session")
def state_redis(run_id: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(REDIS_STATE_URL, decode_responses=True)
    client.ping()
    yield client
    for key in client.scan_iter(f"t{run_id}*", count=1000):
        client.delete(key)


def _broker_url(kind: str, role: str, run_id: str, cleanups: list) -> str:
    if kind == "redis":
        db = REDIS_BROKER_DBS[role]
        client = redis.Redis(host="127.0.0.1", port=6379, db=db)
        client.flushdb()
        cleanups.append(client.flushdb)
        return f"redis://127.0.0.1:6379/{db}"
    vhost = f"sb-test-{role}-{run_id}"
    _rabbitmqctl("add_vhost", vhost)
    _rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
    cleanups.append(lambda: _rabbitmqctl("delete_vhost", vhost))
    return f"amqp://guest:guest@127.0.0.1:5672/{vhost}"


@pytest.fixture(scope="session", params=["redis", "rabbitmq"])
def broker_kind(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="session")
def sandbox() -> Iterator[SandboxServer]:
    with SandboxServer() as server:
        yield server


@pytest.fixture
def clean_sandbox(sandbox: SandboxServer) -> SandboxServer:
    import requests

    requests.delete(f"{sandbox.url}/_sandbox/requests", timeout=5).raise_for_status()
    return sandbox


@pytest.fixture
def url(clean_sandbox: SandboxServer) -> str:
    """The freshly reset sandbox's base URL (the emulator tests talk to it over HTTP)."""
    return clean_sandbox.url


@pytest.fixture(scope="session")
def receiver_only(broker_kind: str, run_id: str, sandbox: SandboxServer, state_redis: redis.Redis) -> Iterator[dict]:
    """A receiver on a broker that no worker consumes, so tests can count what was enqueued."""
    cleanups: list = []
    broker = _broker_url(broker_kind, "receiver", run_id, cleanups)
    prefix = f"t{run_id}r{broker_kind}:"
    env = service_env(broker, REDIS_STATE_URL, sandbox.url, prefix)
    with ReceiverServer(env) as server:
        yield {"env": env, "server": server, "url": server.url, "keys": Keys(prefix), "broker": broker_kind}
    for cleanup in reversed(cleanups):
        cleanup()


@pytest.fixture(scope="session")
def pipeline(broker_kind: str, run_id: str, sandbox: SandboxServer, state_redis: redis.Redis,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """Receiver + a real Celery worker on every queue, with fast retries, dispatching to the sandbox."""
    cleanups: list = []
    broker = _broker_url(broker_kind, "pipeline", run_id, cleanups)
    prefix = f"t{run_id}p{broker_kind}:"
    config_dir = tmp_path_factory.mktemp(f"config-{broker_kind}")
    for path in (ROOT / "config").glob("*.yaml"):
        text = path.read_text()
        if path.name == "targets.yaml":
            text = re.sub(r"retry: \{[^}]*\}", "retry: {max_attempts: 4, base_s: 0.05, cap_s: 0.2}", text)
            assert "base_s: 0.05" in text
            # tests send bursts to one routing key; the real ~2/s per key would only make them slow
            text = text.replace("{rate: 1.9, burst: 2, per: routing_key, max_in_window: {count: 120, window_s: 60}}",
                                "{rate: 200, burst: 50, per: routing_key}")
            assert "rate: 200" in text
        if path.name == "routing.yaml":
            # Route one IoT alert type through CXone, so both call vendors are exercised end to end.
            text = text.replace("rules:\n", "rules:\n  - name: iot-via-cxone\n"
                                "    match: {kind: [iot], metric_type: [test_cxone_dial]}\n"
                                "    targets: [{target: iot_call_cxone, priority: critical}]\n", 1)
            assert "iot-via-cxone" in text
        (config_dir / path.name).write_text(text)
    metrics_dir = tmp_path_factory.mktemp(f"metrics-{broker_kind}")
    env = service_env(broker, REDIS_STATE_URL, sandbox.url, prefix, SWITCHBOARD_CONFIG_DIR=str(config_dir),
                      PROMETHEUS_MULTIPROC_DIR=str(metrics_dir), SWITCHBOARD_WORKER_METRICS_PORT=str(free_port()))
    logs = tmp_path_factory.mktemp(f"logs-{broker_kind}")
    with WorkerProcess(env, logs) as worker, ReceiverServer(env) as server:
        yield {"env": env, "server": server, "url": server.url, "keys": Keys(prefix), "worker": worker,
               "broker": broker_kind, "config_dir": Path(config_dir)}
    for cleanup in reversed(cleanups):
        cleanup()
