"""Customer records for the worker: the shared Redis cache (``switchboard.customer_cache``) in front of the
CRM client. Enrich warms it, dispatch reads it before a call, ``switchboard crm prefetch`` fills it ahead."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from clients.http import VendorError
from switchboard.customer_cache import CustomerCache, Fetch
from tasks.runtime import Runtime

log = logging.getLogger("switchboard.customers")


def customer_cache(rt: Runtime) -> CustomerCache:
    return CustomerCache(rt.redis, rt.keys.prefix, rt.config.vendors["crm"]["cache_s"])


def fetch_from_crm(rt: Runtime, customer_id: str) -> dict[str, Any] | None:
    """The CRM's answer (None: unknown customer); the client is built only when the cache missed."""
    return rt.vendors.crm().customer(customer_id)


def lookup_customer(rt: Runtime, customer_id: str, caller: str = "dispatch",
                    fetch: Fetch | None = None) -> dict[str, Any] | None:
    """The CRM record through the cache (``crm.cache_s``): a burst of alerts costs one CRM lookup.
    ``fetch`` replaces the plain CRM call on a miss (enrich's pauses after a CRM failure)."""
    return customer_cache(rt).lookup(customer_id, fetch or (lambda cid: fetch_from_crm(rt, cid)), caller=caller)


@dataclass
class PrefetchReport:
    found: int = 0
    unknown: int = 0  # the CRM answered 404: remembered briefly, as at dispatch
    failed: list[str] = field(default_factory=list)


def prefetch(rt: Runtime, customer_ids: list[str]) -> PrefetchReport:
    """Ask the CRM for each customer (whatever is cached) and store the answers."""
    cache = customer_cache(rt)
    report = PrefetchReport()
    for customer_id in dict.fromkeys(customer_ids):  # each once, in order
        try:
            customer = cache.refresh(customer_id, lambda cid: fetch_from_crm(rt, cid))
        except VendorError as exc:
            log.warning("prefetch of customer %s failed: %s", customer_id, exc)
            report.failed.append(customer_id)
            continue
        if customer is None:
            report.unknown += 1
        else:
            report.found += 1
    return report
