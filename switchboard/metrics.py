"""Prometheus metrics: what operators graph and alert on.

Counters and histograms are module-level (``prometheus_client``); with ``PROMETHEUS_MULTIPROC_DIR`` set
(``switchboard up`` sets it) every gunicorn and prefork worker process writes its own files and an
endpoint sums them. Depths that live in Redis (dead letters, held events, outcomes so far) are read at
scrape time by ``StateCollector``, so they are right whichever process is scraped.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import REGISTRY, Collector

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)

WEBHOOKS = Counter("switchboard_webhooks", "Webhooks answered by the receiver", ["source", "status"])
IDEMPOTENCY = Counter("switchboard_idempotency_checks", "Idempotency checks at the receiver (hit = duplicate)",
                      ["source", "result"])
LATE_PUBLISHES = Counter("switchboard_receiver_late_publishes", "Accepted events the receiver could neither enqueue "
                         "nor un-accept, or whose admission a store outage left unknown, resolved later from its "
                         "background thread (result: published, not_accepted, gave_up, not_held)",
                         ["result"])
OUTCOMES = Counter("switchboard_outcomes", "Terminal outcomes recorded", ["outcome", "reason"])
STAGE_SECONDS = Histogram("switchboard_stage_seconds", "Time spent in each pipeline stage", ["stage"],
                          buckets=LATENCY_BUCKETS)
END_TO_END_SECONDS = Histogram("switchboard_end_to_end_seconds",
                               "Webhook received -> vendor acknowledged, per target", ["target"],
                               buckets=LATENCY_BUCKETS)
DISPATCH_ATTEMPTS = Counter("switchboard_dispatch_attempts", "Dispatch attempts by target and result",
                            ["target", "result"])
RATE_LIMIT_WAITS = Histogram("switchboard_rate_limit_wait_seconds",
                             "Re-queues for a rate-limit slot (reserved: exact slot; later: beyond the horizon)",
                             ["limit", "kind"], buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300))
OAUTH_REFRESH_FAILURES = Counter("switchboard_oauth_refresh_failures",
                                 "OAuth token requests that failed (credential = rejected credentials)",
                                 ["vendor", "kind"])
CONFIG_RELOADS = Counter("switchboard_config_reloads",
                         "Configuration reloads (invalid: rejected, the running config was kept)", ["result"])
CRM_CACHE = Counter("switchboard_crm_cache", "Customer lookups by caller (enrich, dispatch) and cache result "
                    "(miss: the CRM was asked)", ["caller", "result"])
CONFIG_AUDIT = Counter("switchboard_config_audit", "Enrichment config problems seen (unmapped_entity, "
                       "routing_key_env_unset): the event was paged with the default key", ["problem"])

RECONCILE_CORRECTIONS = Counter("switchboard_reconcile_corrections",
                                "Drift between local incident state and PagerDuty corrected by reconciliation",
                                ["action"])

STALLED_EVENTS = Counter("switchboard_stalled_events",
                         "Accepted events whose broker message was lost (Redis broker), by what the sweep did",
                         ["action"])

_NOISE = re.compile(r"\s*(\(|:| until | after |\d{4}-\d\d-\d\d).*$")


def reason_class(reason: str) -> str:
    """A low-cardinality label from an outcome's reason (ids, times and details cut off)."""
    return _NOISE.sub("", reason or "").strip()[:60] or "-"


class StateCollector(Collector):
    """Gauges read from Redis when scraped: DLQ depth, held events, outcome totals."""

    def __init__(self, dead_letters: object, deferrals: object, ledger: object,
                 schedules: Callable[[], list[dict]] | None = None) -> None:
        self.dead_letters, self.deferrals, self.ledger = dead_letters, deferrals, ledger
        self.schedules = schedules  # switchboard.rate_limit_state.read_schedules, bound to Redis and config

    def collect(self) -> Iterable[GaugeMetricFamily]:
        try:
            dlq, held, counts = self.dead_letters.depth(), self.deferrals.depth(), self.ledger.counts()
        except Exception:  # noqa: BLE001 - Redis down: the scrape still answers, without these gauges
            return
        yield GaugeMetricFamily("switchboard_dead_letters", "Entries in the dead-letter stream", value=dlq)
        yield GaugeMetricFamily("switchboard_deferred", "Events held in the deferral store", value=held)
        totals = GaugeMetricFamily("switchboard_events", "Accepted events and their outcomes so far (ledger)",
                                   labels=["state"])
        for name, value in counts.items():
            totals.add_metric([name], value)
        yield totals
        if self.schedules is not None:
            yield from self._rates()

    def _rates(self) -> Iterable[GaugeMetricFamily]:
        try:
            schedules = self.schedules()
        except Exception:  # noqa: BLE001 - as above
            return
        labels = ["limit", "key", "lane"]
        effective = GaugeMetricFamily("switchboard_rate_limit_effective_rate",
                                      "Requests/s a rate-limit schedule allows now (after 429 back-off)", labels=labels)
        factor = GaugeMetricFamily("switchboard_rate_limit_factor",
                                   "Back-off factor of a schedule (1: full rate; a 429 lowers it)", labels=labels)
        ahead = GaugeMetricFamily("switchboard_rate_limit_booked_ahead_seconds",
                                  "How far ahead a schedule's slots are booked (its backlog)", labels=labels)
        for s in schedules:
            values = [s["limit"], s["key"], s["lane"]]
            effective.add_metric(values, s["effective_rate"])
            factor.add_metric(values, s["factor"])
            ahead.add_metric(values, s["booked_ahead_s"])
        yield from (effective, factor, ahead)


def exposition(state: Collector | None = None) -> tuple[bytes, str]:
    """The metrics text of this process, or of every process when multiprocess mode is on."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        text = generate_latest(registry)
    else:
        text = generate_latest(REGISTRY)
    if state is not None:
        extra = CollectorRegistry()
        extra.register(state)
        text += generate_latest(extra)
    return text, CONTENT_TYPE_LATEST
