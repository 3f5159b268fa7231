"""Fixtures: the real Redis and RabbitMQ of this machine, isolated per run (own DBs, key prefixes,
vhosts), the vendor sandbox as a real HTTP server, the receiver on a real port, real Celery workers."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from clients.genesys import GenesysClient
from clients.oauth import TokenManager
from switchboard.rabbitmq_policy import rabbitmqctl
from switchboard.runner import free_port
from switchboard.store import Keys
from tests.client_support import genesys_tokens
from tests.helpers import PD_LIMIT, REDIS_PORT, ReceiverServer, WorkerProcess, config_copy, service_env
from tests.posting import Sandbox
from vendor_sandbox.server import SandboxServer

REDIS_STATE_URL = f"redis://127.0.0.1:{REDIS_PORT}/11"
REDIS_BROKER_DBS = {"receiver": 12, "pipeline": 13}


def _rabbitmqctl(*args: str) -> None:
    rabbitmqctl(args)


# This session's id: every state-DB key prefix a test makes starts with t<RUN_ID> (``made_prefix``, the fixtures
# below), and the keys under it are deleted when the session ends.
RUN_ID = uuid.uuid4().hex[:10]


def made_prefix(label: str) -> str:
    """A fresh state-DB key prefix for a test that makes its own (no fixture), cleaned up with the session's."""
    return f"t{RUN_ID}{label}{uuid.uuid4().hex[:8]}:"


@pytest.fixture(scope="session", autouse=True)
def _delete_run_keys() -> Iterator[None]:
    yield
    client = redis.Redis.from_url(REDIS_STATE_URL)
    for key in client.scan_iter(f"t{RUN_ID}*", count=1000):
        client.delete(key)


@pytest.fixture(scope="session")
def run_id() -> str:
    return RUN_ID


@pytest.fixture(scope="session")
def state_redis() -> redis.Redis:
    client = redis.Redis.from_url(REDIS_STATE_URL, decode_responses=True)
    client.ping()
    return client  # its keys (t<run_id>...) go with _delete_run_keys


def own_broker(kind: str, redis_db: int, label: str, run_id: str, cleanups: list) -> str:
    """A broker no other fixture's worker consumes from: its own Redis DB (emptied now and after) or, on
    RabbitMQ, its own vhost."""
    if kind == "redis":
        client = redis.Redis(host="127.0.0.1", port=REDIS_PORT, db=redis_db)
        client.flushdb()
        cleanups.append(client.flushdb)
        return f"redis://127.0.0.1:{REDIS_PORT}/{redis_db}"
    return _broker_url("rabbitmq", label, run_id, cleanups)


@pytest.fixture
def publish_broker(broker_kind: str, run_id: str) -> Iterator[tuple[str, str]]:
    """``(kind, url)``: a broker of this test's own (Redis DB 9, or a vhost) for tests that publish and read back."""
    cleanups: list = []
    url = own_broker(broker_kind, 9, f"pub{uuid.uuid4().hex[:6]}", run_id, cleanups)
    yield broker_kind, url
    for cleanup in reversed(cleanups):
        cleanup()


def redis_broker_env(run_id: str, redis_db: int, label: str, sandbox_url: str, config_dir: Path,
                     cleanups: list, **extra: str) -> tuple[dict[str, str], str]:
    """A service environment on its own Redis broker DB and key prefix (the vendor sandbox's requests cleared):
    ``(env, broker_url)``."""
    from tests.helpers import service_env
    from tests.posting import Sandbox

    tag = uuid.uuid4().hex[:6]
    broker_url = own_broker("redis", redis_db, f"{label}{tag}", run_id, cleanups)
    env = service_env(broker_url, REDIS_STATE_URL, sandbox_url, f"t{run_id}{label}{tag}:",
                      SWITCHBOARD_CONFIG_DIR=str(config_dir), **extra)
    Sandbox(sandbox_url).send("DELETE", "/_sandbox/requests")
    return env, broker_url


def _broker_url(kind: str, role: str, run_id: str, cleanups: list) -> str:
    if kind == "redis":
        db = REDIS_BROKER_DBS[role]
        client = redis.Redis(host="127.0.0.1", port=REDIS_PORT, db=db)
        client.flushdb()
        cleanups.append(client.flushdb)
        return f"redis://127.0.0.1:{REDIS_PORT}/{db}"
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
    config_dir = config_copy(tmp_path_factory.mktemp(f"config-{broker_kind}"), {
        # tests send bursts to one routing key; the real ~2/s per key would only make them slow
        "targets.yaml": [(PD_LIMIT, "{rate: 200, burst: 50, per: routing_key}"),
                         ("{above: 0.8, slow_s: 30, max_slowdowns: 3}", "{above: 0.8, slow_s: 1, max_slowdowns: 2}")],
        # route one IoT alert type through CXone, so both call vendors are exercised end to end, and two
        # through Genesys at non-critical priorities (the occupancy throttle leaves critical calls alone)
        "routing.yaml": [("rules:\n", "rules:\n  - name: iot-via-cxone\n"
                                     "    match: {kind: [iot], metric_type: [test_cxone_dial]}\n"
                                     "    targets: [{target: iot_call_cxone, priority: critical}]\n"
                                     "  - name: iot-default-call\n"
                                     "    match: {kind: [iot], metric_type: [test_default_call]}\n"
                                     "    targets: [{target: iot_call, priority: default}]\n"
                                     "  - name: iot-bulk-call\n"
                                     "    match: {kind: [iot], metric_type: [test_bulk_call]}\n"
                                     "    targets: [{target: iot_call, priority: bulk}]\n")]})
    metrics_dir = tmp_path_factory.mktemp(f"metrics-{broker_kind}")
    env = service_env(broker, REDIS_STATE_URL, sandbox.url, prefix, SWITCHBOARD_CONFIG_DIR=str(config_dir),
                      PROMETHEUS_MULTIPROC_DIR=str(metrics_dir), SWITCHBOARD_WORKER_METRICS_PORT=str(free_port()))
    logs = tmp_path_factory.mktemp(f"logs-{broker_kind}")
    with WorkerProcess(env, logs) as worker, ReceiverServer(env) as server:
        yield {"env": env, "server": server, "url": server.url, "keys": Keys(prefix), "worker": worker,
               "broker": broker_kind, "config_dir": Path(config_dir)}
    for cleanup in reversed(cleanups):
        cleanup()


# --- client tests: a reset sandbox, a key prefix, the state Redis URL, a Genesys client ------------------


@pytest.fixture
def sb(clean_sandbox: SandboxServer) -> Sandbox:
    return Sandbox(clean_sandbox.url)


@pytest.fixture
def prefix(run_id: str, state_redis: redis.Redis) -> Iterator[str]:
    key_prefix = f"t{run_id}cl{uuid.uuid4().hex[:6]}:"
    yield key_prefix
    for key in state_redis.scan_iter(f"{key_prefix}*", count=1000):
        state_redis.delete(key)


@pytest.fixture
def redis_url(state_redis: redis.Redis) -> str:
    kw = state_redis.connection_pool.connection_kwargs
    return f"redis://{kw.get('host', '127.0.0.1')}:{kw.get('port', REDIS_PORT)}/{kw.get('db', 0)}"


@pytest.fixture
def genesys(sb: Sandbox, state_redis: redis.Redis, prefix: str) -> tuple[GenesysClient, TokenManager]:
    tokens = genesys_tokens(state_redis, prefix, sb.url)
    return GenesysClient(sb.url, tokens), tokens
