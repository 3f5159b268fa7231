"""A task that finds Redis (the state store, and on Redis deployments the broker too) unreachable must
not end: failing would acknowledge its message (``acks_late`` acknowledges failures) and the event would
never reach an outcome. It waits a little for the store to answer again, then hands its message back to
the broker (``Reject(requeue=True)``), so it runs again from the start once the store is back. Every
step it may repeat is idempotent (dispatch state per target, HSETNX outcomes)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import NoReturn

import redis
from celery.exceptions import Reject
from kombu.exceptions import OperationalError

log = logging.getLogger("switchboard.store_outage")

# Redis unreachable, timing out or still loading its data after a restart; a publish that gave up.
STORE_DOWN: tuple[type[BaseException], ...] = (redis.ConnectionError, redis.TimeoutError, OperationalError)
WAIT_S = 10.0  # bounded: with RabbitMQ as broker and Redis down for long, each redelivery waits this much


def requeue_after_outage(exc: BaseException, ping: Callable[[], object], wait_s: float = WAIT_S) -> NoReturn:
    """Wait up to ``wait_s`` for ``ping`` to succeed, then give the message back to the broker."""
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        try:
            ping()
            break
        except STORE_DOWN:
            time.sleep(0.25)  # the store is restarting: poll, do not spin
    log.warning("state store or broker unavailable (%s): message handed back to the broker", type(exc).__name__)
    raise Reject(f"store unavailable: {type(exc).__name__}", requeue=True) from exc
