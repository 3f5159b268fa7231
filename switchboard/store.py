"""One Redis client per process and the key-prefix convention for every piece of Switchboard state."""

from __future__ import annotations

import redis

_clients: dict[str, redis.Redis] = {}


def redis_client(url: str) -> redis.Redis:
    """A pooled client for ``url``, shared within the process (fork-safe: redis-py resets pools)."""
    client = _clients.get(url)
    if client is None:
        client = redis.Redis.from_url(
            url, decode_responses=True, socket_connect_timeout=2, socket_timeout=5, health_check_interval=30
        )
        _clients[url] = client
    return client


class Keys:
    """Key names under one prefix, so tests and deployments can share a Redis without colliding."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def idem(self, source: str, kind: str, value: str) -> str:
        return f"{self.prefix}idem:{source}:{kind}:{value}"

    def ledger(self, event_id: str) -> str:
        return f"{self.prefix}ledger:{event_id}"

    @property
    def inflight(self) -> str:
        """Sorted set of accepted events without an outcome yet, scored by their last step (the stalled sweep)."""
        return f"{self.prefix}inflight"

    def ledger_stages(self, event_id: str) -> str:
        return f"{self.prefix}ledger:{event_id}:stages"

    def dispatch_state(self, event_id: str, target: str) -> str:
        return f"{self.prefix}dispatch:{event_id}:{target}"

    def credential_alerted(self, vendor: str) -> str:
        return f"{self.prefix}credential-alerted:{vendor}"

    def counter(self, name: str) -> str:
        return f"{self.prefix}count:{name}"

    @property
    def dead_letters(self) -> str:
        return f"{self.prefix}dlq"
