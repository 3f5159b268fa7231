"""A worker pool's ``/metrics``: started in the worker's main process when it is ready.

``SWITCHBOARD_WORKER_METRICS_PORT`` names the port (127.0.0.1). The prefork children do the work, so
their counters reach this endpoint only through ``PROMETHEUS_MULTIPROC_DIR`` (one directory per pool:
``switchboard up`` creates them); without it the endpoint would show the main process only, so it says
so in the log.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from celery.signals import worker_ready
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.registry import REGISTRY

from switchboard.metrics import StateCollector
from switchboard.rate_limit_state import read_schedules

log = logging.getLogger("switchboard.metrics")


@worker_ready.connect
def serve_worker_metrics(**_: Any) -> None:
    port = os.environ.get("SWITCHBOARD_WORKER_METRICS_PORT")
    if not port:
        return
    from tasks.runtime import runtime

    rt = runtime()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        log.warning("PROMETHEUS_MULTIPROC_DIR is unset: worker metrics show the main process only")
        registry = REGISTRY
    registry.register(StateCollector(rt.dead_letters, rt.deferrals, rt.ledger, _schedules))
    try:
        start_http_server(int(port), addr="127.0.0.1", registry=registry)
    except OSError as exc:  # the port is taken (a second pool given the same port): work on, say so
        log.error("worker metrics not served on port %s: %s", port, exc)
        return
    log.info("worker metrics on http://127.0.0.1:%s/metrics", port)


def _schedules() -> list[dict]:
    from tasks.runtime import runtime

    rt = runtime()  # the current config's limits (a reload may have changed them)
    return read_schedules(rt.redis, rt.settings.key_prefix, rt.config.vendors["rate_limits"])
