"""Live config reload across processes: a ``ConfigHolder`` wired to Redis, a ticker thread, SIGHUP.

- ``<prefix>config:generation`` (a counter): ``switchboard config reload``, or SIGHUP to a worker's main
  process or to beat, increments it; every process reads it at most once a second and, when it moved,
  looks at its own files again (works across machines; each machine reads its own files).
- ``<prefix>config:versions`` (a hash, ``<hostname>:<pid>`` -> JSON ``{version, role, seen}``): each
  service process says which config version it runs, refreshed every ``REPORT_EVERY_S``; readers drop
  entries not refreshed for ``STALE_AFTER_S`` (a process that died cannot delete its own entry).
- The ticker thread checks once a second, so an idle process (a pool child with no task) still reloads
  and reports; without it a process checks when it next asks for its config.

Signal handlers only set flags and wake the ticker: Redis I/O or logging inside a handler could deadlock
on a lock the interrupted main thread holds.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import weakref
from typing import Any

import redis

from switchboard.config import Config
from switchboard.config_reload import ConfigHolder
from switchboard.settings import Settings, load_settings
from switchboard.store import redis_client

log = logging.getLogger("switchboard.config")
TICK_S = 1.0
REPORT_EVERY_S = 30.0
STALE_AFTER_S = 120.0  # four missed refreshes: the process is gone
VERSIONS_TTL_S = 86400  # the whole hash goes when nothing reported for a day


def generation_key(prefix: str) -> str:
    return f"{prefix}config:generation"


def versions_key(prefix: str) -> str:
    return f"{prefix}config:versions"


def request_reload(client: redis.Redis, prefix: str) -> int:
    """Ask every process sharing this Redis prefix to look at its config files again."""
    return int(client.incr(generation_key(prefix)))


def read_versions(client: redis.Redis, prefix: str, now: float | None = None) -> list[dict[str, Any]]:
    """Which config version each live process runs (stale entries are deleted on the way)."""
    now = time.time() if now is None else now
    out, stale = [], []
    for process, raw in sorted(client.hgetall(versions_key(prefix)).items()):
        try:
            entry = json.loads(raw)
        except ValueError:
            stale.append(process)
            continue
        if now - float(entry.get("seen", 0)) > STALE_AFTER_S:
            stale.append(process)
            continue
        out.append({"process": process, **entry})
    if stale:
        client.hdel(versions_key(prefix), *stale)
    return out


class Watcher:
    """One process's (or one receiver app's) config: holder + Redis generation + version reports."""

    def __init__(self, settings: Settings, client: redis.Redis, role: str | None = None) -> None:
        self.client, self.prefix = client, settings.key_prefix
        self.holder = ConfigHolder(settings.config_dir, generation=self._read_generation)
        self.role = role  # None: this process does not report (a CLI command)
        self._ticker_role: str | None = None
        self._reset_process_state()
        _watchers.add(self)

    def _reset_process_state(self) -> None:
        self._wake = threading.Event()
        self._broadcast = False
        self._thread_pid: int | None = None
        self._reported: tuple[str, float] | None = None  # (version, when)

    @property
    def version(self) -> str:
        return self.holder.version

    def current(self) -> Config:
        """The config to use now; checks and reports when due, restarts the ticker in a forked child."""
        if self._ticker_role is not None and self._thread_pid != os.getpid():
            self.start_ticker(self._ticker_role)
        config = self.holder.current()
        self._report()
        return config

    def request(self, broadcast: bool) -> None:
        """Reload here; with ``broadcast``, everywhere (the ticker bumps the generation). Signal-safe."""
        self._broadcast = self._broadcast or broadcast
        self.holder.request()
        self._wake.set()

    def start_ticker(self, role: str) -> None:
        """Check and report once a second in a daemon thread of this process (idempotent per process)."""
        self.role = self._ticker_role = role
        if self._thread_pid == os.getpid():
            return
        self._thread_pid = os.getpid()
        threading.Thread(target=self._tick, name="config-watch", daemon=True).start()

    def after_fork(self) -> None:
        """In a forked child: no thread, no pending request, a fresh lock; the last valid config stays."""
        self.holder.after_fork()
        self._reset_process_state()

    def _tick(self) -> None:
        while True:
            self._wake.wait(TICK_S)
            self._wake.clear()
            try:
                if self._broadcast:
                    self._broadcast = False
                    self._bump()
                self.current()
            except Exception:  # noqa: BLE001 - the ticker must outlive any one failure
                log.exception("config watch tick failed")

    def _bump(self) -> None:
        try:
            generation = request_reload(self.client, self.prefix)
        except redis.RedisError as exc:
            log.warning("config reload not passed on to other processes (Redis: %s); reloading here only",
                        type(exc).__name__)
            return
        self.holder.note_generation(str(generation))  # our own bump is not a second request
        log.info("config reload requested for every process (generation %s)", generation)

    def _read_generation(self) -> str | None:
        value = self.client.get(generation_key(self.prefix))
        return None if value is None else str(value)

    def _report(self) -> None:
        if self.role is None:
            return
        now, version = time.time(), self.holder.version
        if self._reported and self._reported[0] == version and now - self._reported[1] < REPORT_EVERY_S:
            return
        self._reported = (version, now)  # set first: a Redis outage is not retried on every call
        entry = json.dumps({"version": version, "role": self.role, "seen": now})
        try:
            pipe = self.client.pipeline(transaction=False)
            pipe.hset(versions_key(self.prefix), f"{socket.gethostname()}:{os.getpid()}", entry)
            pipe.expire(versions_key(self.prefix), VERSIONS_TTL_S)
            pipe.execute()
        except redis.RedisError as exc:
            log.warning("config version not reported (Redis: %s)", type(exc).__name__)


_watchers: weakref.WeakSet[Watcher] = weakref.WeakSet()
_process: Watcher | None = None
_process_lock = threading.Lock()


def process_watcher() -> Watcher:
    """This process's watcher (workers, beat, CLI), built on first use from the environment."""
    global _process
    if _process is None:
        with _process_lock:
            if _process is None:
                settings = load_settings()
                _process = Watcher(settings, redis_client(settings.redis_url))
    return _process


def _after_fork_in_child() -> None:
    global _process_lock
    _process_lock = threading.Lock()
    for watcher in list(_watchers):
        watcher.after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)
