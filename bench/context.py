"""One broker's bench run: URLs, the run directory, a fresh environment (config copy, key prefix) per
phase, the sandbox's control API, and broker helpers (queue depths, purge, publishing no-ops)."""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
import requests
from celery import Celery

from bench.scenario import NULL_VENDOR_LIMIT, service_env, write_config
from switchboard.broker import queue_depths
from switchboard.ledger import Ledger
from switchboard.settings import load_settings
from switchboard.store import Keys
from tasks.app import ALL_QUEUES, make_celery

NULL_VENDOR = {"limit": 10_000_000, "window_s": 1}  # the sandbox answers at once and never throttles


@dataclass
class BenchContext:
    broker: str          # "redis" | "rabbitmq"
    broker_url: str
    redis_url: str       # state (idempotency, ledger, rate limits)
    sandbox_url: str
    log_dir: Path
    quick: bool
    grain: str           # the grain under test for every phase but the grain comparison
    _celery: dict[str, Celery] = field(default_factory=dict)

    def env(self, grain: str | None = None, pd_limit: str = NULL_VENDOR_LIMIT) -> dict[str, str]:
        """A fresh environment: its own config copy and key prefix (phases never see each other's state)."""
        tag = uuid.uuid4().hex[:8]
        config_dir = write_config(self.log_dir / f"config-{tag}", grain=grain or self.grain, pd_limit=pd_limit)
        return service_env(dict(os.environ), self.broker_url, self.redis_url, self.sandbox_url, f"bench{tag}:",
                           config_dir)

    def celery(self) -> Celery:
        if "app" not in self._celery:
            self._celery["app"] = make_celery(load_settings({"SWITCHBOARD_BROKER_URL": self.broker_url,
                                                             "SWITCHBOARD_REDIS_URL": self.redis_url}))
        return self._celery["app"]

    def depths(self, queues: tuple[str, ...] = ALL_QUEUES) -> dict[str, int]:
        return queue_depths(self.celery(), queues)

    def purge(self) -> None:
        """Empty every Switchboard queue (what a phase left behind must not feed the next)."""
        with self.celery().connection_for_write() as conn:
            channel = conn.default_channel
            for name in ALL_QUEUES:
                try:
                    channel.queue_purge(name)
                except Exception:  # noqa: BLE001 - a queue never declared has nothing to purge
                    pass

    def publish_noops(self, count: int, queues: tuple[str, ...]) -> None:
        """``count`` no-op tasks spread over ``queues`` (published before the pools start)."""
        app = self.celery()
        with app.producer_or_acquire() as producer:
            for i in range(count):
                app.send_task("bench.noop", args=(i,), queue=queues[i % len(queues)], producer=producer)

    def ledger(self, env: dict[str, str]) -> Ledger:
        client = redis.Redis.from_url(self.redis_url, decode_responses=True)
        return Ledger(client, Keys(env["SWITCHBOARD_KEY_PREFIX"]), 3600)

    # The vendor sandbox's control API
    def sandbox(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        r = requests.request(method, self.sandbox_url + path, json=body, timeout=120)
        r.raise_for_status()
        return r.json() if r.content else None

    def reset_sandbox(self, limit: dict[str, Any] = NULL_VENDOR) -> None:
        self.sandbox("DELETE", "/_sandbox/requests")
        self.sandbox("POST", "/_sandbox/ratelimit/pagerduty", limit)

    def arrivals(self) -> list[dict[str, Any]]:
        """PagerDuty requests the sandbox received (also the rejected ones), in arrival order."""
        return self.sandbox("GET", "/_sandbox/requests?path=/v2/enqueue&all=1")

    def wait_dispatched(self, env: dict[str, str], count: int, timeout_s: float) -> None:
        """Wait until ``count`` events of ``env``'s prefix are dispatched (the ledger's counter: cheap to
        poll, unlike the sandbox's record, which is read once at the end)."""
        ledger = self.ledger(env)
        deadline = time.time() + timeout_s
        while (done := ledger.counts()["dispatched"]) < count:
            if time.time() > deadline:
                raise TimeoutError(f"{done}/{count} events dispatched within {timeout_s:.0f} s")
            time.sleep(0.1)
