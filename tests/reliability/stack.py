"""The service under test for one fault scenario: its own broker (a Redis DB or a RabbitMQ vhost, or a
dedicated redis-server), its own key prefix, the receiver, real Celery workers, and the vendor sandbox
with its rate limits lifted (the scenarios count actions, they do not test flow control).

Also a dedicated ``redis-server`` process that a scenario may crash and restart (never the machine's)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from switchboard.config import Config, load_config
from switchboard.ledger import Ledger
from switchboard.runner import free_port
from switchboard.store import Keys
from switchboard.waiting import wait_for
from tests.helpers import PD_LIMIT, REDIS_PORT, config_copy, service_env
from tests.posting import Sandbox

BROKER_DB = 7  # no other test uses it: a scenario's broker is emptied before and after
QUEUES = ("ingest", "dispatch.critical", "dispatch.default", "dispatch.bulk")
# Retries that ride out a few seconds of vendor trouble (the tests' default gives up after ~0.5 s).
STORM_RETRY = "retry: {max_attempts: 10, base_s: 0.1, cap_s: 1.0}"
FAST_RETRY = "retry: {max_attempts: 4, base_s: 0.05, cap_s: 0.2}"


def reliability_config(directory: Path, changes: dict[str, list[tuple[str, str]]] | None = None) -> Path:
    """config/ with alert intelligence off (every event is a distinct entity and must act once), PagerDuty's
    per-key pace lifted, and retries that outlast a short vendor storm."""
    base = {"targets.yaml": [(PD_LIMIT, "{rate: 500, burst: 100, per: routing_key}"),
                             (FAST_RETRY, STORM_RETRY), (FAST_RETRY, STORM_RETRY)]}  # pagerduty, genesys_workitem
    for name, edits in (changes or {}).items():
        base.setdefault(name, []).extend(edits)
    return config_copy(directory, base)


def rabbitmqctl(*args: str, timeout: float = 60) -> str:
    done = subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, text=True, timeout=timeout)
    return done.stdout


@dataclass
class Stack:
    """Where a scenario's service lives; ``env`` is what its receiver and workers run with."""

    kind: str            # broker: redis | rabbitmq
    broker_url: str
    redis_url: str
    env: dict[str, str]
    config_dir: Path
    logs: Path
    sandbox: Sandbox
    vhost: str = ""
    cleanups: list[Any] = field(default_factory=list)
    node: Any = None  # a dedicated RabbitMQServer, when the broker is one

    @property
    def keys(self) -> Keys:
        return Keys(self.env["SWITCHBOARD_KEY_PREFIX"])

    @property
    def config(self) -> Config:
        return load_config(self.config_dir)

    def redis(self) -> redis.Redis:
        return redis.Redis.from_url(self.redis_url, decode_responses=True, socket_connect_timeout=2, socket_timeout=5)

    def ledger(self) -> Ledger:
        return Ledger(self.redis(), self.keys, 86400)

    def broker_messages(self) -> int:
        """Messages anywhere in the broker, ready or delivered-not-acked (so 0 means nothing can still run)."""
        if self.node is not None:
            return self.node.messages()
        if self.kind == "rabbitmq":
            out = rabbitmqctl("list_queues", "-p", self.vhost, "name", "messages", "--no-table-headers")
            return sum(int(line.split()[-1]) for line in out.splitlines() if line.strip())
        client = redis.Redis.from_url(self.broker_url, socket_connect_timeout=2, socket_timeout=5)
        total = client.hlen("unacked")
        for key in client.scan_iter(count=1000):
            # kombu's queue lists: the queue name, or name + "\x06\x16" + priority
            if key.split(b"\x06")[0].decode(errors="replace") in QUEUES and client.type(key) == b"list":
                total += client.llen(key)
        return total

    def close(self) -> None:
        for cleanup in reversed(self.cleanups):
            cleanup()


def build_stack(tmp_path: Path, kind: str, sandbox_url: str, *, redis_url: str | None = None,
                broker_url: str | None = None, config_changes: dict | None = None, visibility_s: int = 4,
                **extra_env: str) -> Stack:
    """A fresh prefix and broker on this machine's Redis/RabbitMQ (or on the given URLs). ``visibility_s``:
    on Redis, when a message held by a killed worker comes back; it must stay above every countdown a
    task may wait (a held countdown task would otherwise be delivered a second time while it waits)."""
    label = uuid.uuid4().hex[:8]
    cleanups: list[Any] = []
    vhost = ""
    if broker_url is None and kind == "redis":
        client = redis.Redis(host="127.0.0.1", port=REDIS_PORT, db=BROKER_DB)
        client.flushdb()
        cleanups.append(client.flushdb)
        broker_url = f"redis://127.0.0.1:{REDIS_PORT}/{BROKER_DB}"
    elif broker_url is None:
        vhost = f"sb-test-rel-{label}"
        rabbitmqctl("add_vhost", vhost)
        rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
        cleanups.append(lambda: rabbitmqctl("delete_vhost", vhost))
        broker_url = f"amqp://guest:guest@127.0.0.1:5672/{vhost}"
    redis_url = redis_url or f"redis://127.0.0.1:{REDIS_PORT}/11"
    prefix = f"trel{label}:"
    config_dir = reliability_config(tmp_path / "config", config_changes)
    env = service_env(broker_url, redis_url, sandbox_url, prefix, SWITCHBOARD_CONFIG_DIR=str(config_dir),
                      SWITCHBOARD_REDIS_VISIBILITY_TIMEOUT_S=str(visibility_s), **extra_env)
    sandbox = Sandbox(sandbox_url)
    sandbox.send("DELETE", "/_sandbox/requests")
    for vendor in ("pagerduty", "genesys"):
        sandbox.send("POST", f"/_sandbox/ratelimit/{vendor}", {"limit": 1_000_000, "window_s": 60})
    logs = tmp_path / "logs"
    logs.mkdir(exist_ok=True)
    stack = Stack(kind, broker_url, redis_url, env, config_dir, logs, sandbox, vhost, cleanups)

    def drop_prefix() -> None:
        client = stack.redis()
        for key in client.scan_iter(f"{prefix}*", count=1000):
            client.delete(key)
    cleanups.insert(0, drop_prefix)
    return stack


class RedisServer:
    """A dedicated redis-server on a free loopback port, persisting every write (appendfsync always), so a
    SIGKILL and a restart on the same port and directory lose nothing acknowledged, like a real store."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def start(self) -> RedisServer:
        exe = shutil.which("redis-server")
        assert exe, "redis-server is not installed"
        self.proc = subprocess.Popen(
            [exe, "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.dir), "--save", "",
             "--appendonly", "yes", "--appendfsync", "always", "--logfile", str(self.dir / "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)
        wait_for(lambda: client.ping(), 15, 0.05, f"redis-server on {self.port}")
        return self

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class RabbitMQServer:
    """A dedicated RabbitMQ node (``sbtest-<label>@localhost``) on free loopback ports with its own data
    directory, so a scenario can stop and restart a real broker without touching the machine's node.

    ``rabbitmq-server`` drops to the ``rabbitmq`` user when started as root, so the directory lives outside
    pytest's (root-only) tmp tree and belongs to that user. Queues are durable and Celery's messages
    persistent: a restart keeps what the broker had confirmed, as in production."""

    def __init__(self) -> None:
        self.label = uuid.uuid4().hex[:8]
        self.node = f"sbtest-{self.label}@localhost"
        self.port = free_port()
        self.dist_port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix=f"sb-rabbitmq-{self.label}-"))
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}//"

    def _env(self) -> dict[str, str]:
        d = self.dir
        return {**os.environ, "RABBITMQ_NODENAME": self.node, "RABBITMQ_CONFIG_FILE": str(d / "rabbitmq.conf"),
                "RABBITMQ_DIST_PORT": str(self.dist_port), "RABBITMQ_MNESIA_BASE": str(d / "mnesia"),
                "RABBITMQ_MNESIA_DIR": str(d / "mnesia" / self.node), "RABBITMQ_LOG_BASE": str(d / "log"),
                "RABBITMQ_FEATURE_FLAGS_FILE": str(d / "feature_flags"), "RABBITMQ_PID_FILE": str(d / "pid"),
                "RABBITMQ_ENABLED_PLUGINS_FILE": str(d / "enabled_plugins"),
                "RABBITMQ_QUORUM_DIR": str(d / "mnesia" / "quorum"),
                "RABBITMQ_STREAM_DIR": str(d / "mnesia" / "stream"),
                "RABBITMQ_PLUGINS_EXPAND_DIR": str(d / "plugins-expand")}

    def start(self) -> RabbitMQServer:
        exe = shutil.which("rabbitmq-server")
        assert exe, "rabbitmq-server is not installed"
        (self.dir / "rabbitmq.conf").write_text(f"listeners.tcp.local = 127.0.0.1:{self.port}\n")
        (self.dir / "enabled_plugins").write_text("[].\n")
        for sub in ("mnesia", "log"):
            (self.dir / sub).mkdir(exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.dir, "rabbitmq", "rabbitmq")
            for path in self.dir.rglob("*"):
                shutil.chown(path, "rabbitmq", "rabbitmq")
        self.proc = subprocess.Popen([exe], env=self._env(), stdout=(self.dir / "out.log").open("ab"),
                                     stderr=subprocess.STDOUT, start_new_session=True)
        wait_for(self._answers, 90, 0.2, f"RabbitMQ node {self.node} on {self.port}")
        return self

    def _answers(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise RuntimeError(f"RabbitMQ node exited: {(self.dir / 'out.log').read_text()[-2000:]}")
        import socket

        try:
            socket.create_connection(("127.0.0.1", self.port), 0.5).close()
        except OSError:
            return False
        return True

    def stop(self) -> None:
        """Stop the node as a restart would (the broker closes every connection, unacked messages stay queued)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        subprocess.run(["rabbitmqctl", "-q", "-n", self.node, "stop"], env=self._env(), capture_output=True,
                       timeout=60)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, 9)
            self.proc.wait(timeout=10)

    def messages(self) -> int:
        out = subprocess.run(["rabbitmqctl", "-q", "-n", self.node, "list_queues", "name", "messages",
                              "--no-table-headers"], env=self._env(), capture_output=True, text=True, timeout=60,
                             check=True).stdout
        return sum(int(line.split()[-1]) for line in out.splitlines() if line.strip())

    def __enter__(self) -> RabbitMQServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
