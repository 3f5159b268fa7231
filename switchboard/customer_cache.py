"""The customer cache: CRM records in Redis, shared by enrich (which warms it) and dispatch (which reads it).

One implementation for every caller, so a burst of alerts for one customer costs one CRM lookup and the
call placed at dispatch finds the record the enrich step fetched. Contact data (the phone number) lives
here only, never in the alert that travels through the broker, the ledger and the dead letters.
The CRM itself is passed in as ``fetch`` (``clients.crm.CRMClient.customer``): this module does no HTTP.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import redis

from switchboard.metrics import CRM_CACHE

Fetch = Callable[[str], dict[str, Any] | None]
# An unknown customer is remembered briefly only: the CRM may be updated soon.
UNKNOWN_TTL_S = 60


class CustomerCache:
    def __init__(self, client: redis.Redis, prefix: str, ttl_s: int) -> None:
        self.redis = client
        self.prefix = f"{prefix}crm:"
        self.ttl_s = ttl_s

    def key(self, customer_id: str) -> str:
        return self.prefix + customer_id

    def cached(self, customer_id: str) -> tuple[bool, dict[str, Any] | None]:
        """(True, record-or-None) when the cache knows the customer (None: the CRM said unknown)."""
        raw = self.redis.get(self.key(customer_id))
        return (False, None) if raw is None else (True, json.loads(raw))

    def store(self, customer_id: str, customer: dict[str, Any] | None) -> None:
        if not self.ttl_s:  # cache_s 0: caching is off
            return
        ttl = self.ttl_s if customer is not None else min(self.ttl_s, UNKNOWN_TTL_S)
        self.redis.set(self.key(customer_id), json.dumps(customer), ex=ttl)

    def lookup(self, customer_id: str, fetch: Fetch, *, caller: str) -> dict[str, Any] | None:
        """The record from the cache, or from ``fetch`` (the CRM) on a miss, then cached.
        A CRM error propagates (nothing is cached): the caller decides whether it matters."""
        hit, customer = self.cached(customer_id)
        CRM_CACHE.labels(caller, "hit" if hit else "miss").inc()
        if hit:
            return customer
        return self.refresh(customer_id, fetch)

    def refresh(self, customer_id: str, fetch: Fetch) -> dict[str, Any] | None:
        """Ask the CRM whatever the cache holds and store the answer (``switchboard crm prefetch``)."""
        customer = fetch(customer_id)
        self.store(customer_id, customer)
        return customer
