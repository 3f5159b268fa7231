"""Per-process worker context: settings, validated config, Redis, ledger, clients (built lazily).

``runtime()`` follows the process's current config (``switchboard.config_watch``): when a reload swaps
it, the pieces built from config values are built again; the Redis client and its pool are kept."""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import cached_property

import redis

from switchboard.config import Config
from switchboard.config_watch import process_watcher
from switchboard.dead_letters import DeadLetters
from switchboard.deferrals import Deferrals
from switchboard.dispatch_lease import DispatchLease
from switchboard.incidents import IncidentStore
from switchboard.ledger import Ledger
from switchboard.payload_store import PayloadStore
from switchboard.rate_limit import RateLimiter
from switchboard.settings import Settings, load_settings
from switchboard.stages import StageContext
from switchboard.store import Keys, redis_client
from tasks.vendors import Vendors


@dataclass
class Runtime:
    settings: Settings
    config: Config
    redis: redis.Redis
    keys: Keys
    ledger: Ledger
    dead_letters: DeadLetters
    payloads: PayloadStore
    deferrals: Deferrals
    rate_limiter: RateLimiter

    @cached_property
    def vendors(self) -> Vendors:
        return Vendors(self.settings, self.config, self.redis)

    @cached_property
    def lease(self) -> DispatchLease:
        return DispatchLease(self.redis)

    @cached_property
    def incidents(self) -> IncidentStore:
        return IncidentStore(self.redis, self.settings.key_prefix, self.config.service["ledger_ttl_s"])

    def stage_context(self) -> StageContext:
        return StageContext(config=self.config, env=self.settings.env, now=time.time(), incidents=self.incidents,
                            writes=self.ledger.batch_pipe())


_current: Runtime | None = None


def runtime() -> Runtime:
    """This process's Runtime for its current config (a task that keeps its ``rt`` keeps one config)."""
    global _current
    config = process_watcher().current()
    rt = _current
    if rt is None or rt.config is not config:
        rt = _current = _build(config)
    return rt


def _build(config: Config) -> Runtime:
    return build_runtime(load_settings(), config)


def build_runtime(settings: Settings, config: Config) -> Runtime:
    """A Runtime for ``settings`` and ``config`` (tests and tools that run a task's body in their own process)."""
    client = redis_client(settings.redis_url)
    keys = Keys(settings.key_prefix)
    return Runtime(settings=settings, config=config, redis=client, keys=keys,
                   ledger=Ledger(client, keys, config.service["ledger_ttl_s"]),
                   dead_letters=DeadLetters(client, keys),
                   payloads=PayloadStore(client, settings.key_prefix, config.vendors["payload_ref_ttl_s"]),
                   deferrals=Deferrals(client, settings.key_prefix, config.windows["deferral"]["max_hold_s"]),
                   rate_limiter=RateLimiter(client, settings.key_prefix))
