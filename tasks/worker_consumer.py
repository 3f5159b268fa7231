"""The pools' consumer: Celery's own, with task events (``-E``, what Flower shows) sent in batches.

Celery buffers a worker's task events (received, started, succeeded...) and publishes the buffer as one
``task.multi`` message, but it flushes at the next turn of the event loop. A pool whose tasks take a few
milliseconds finds one or two events there, so nearly every event cost its own broker publish (a Redis
PUBLISH, ~5 per event through the fused pipeline, ~30% of a pool main process's CPU; bench/README). Here a
flush is scheduled at most ``events_flush_s`` (config/service.yaml, read at start; ``EVENTS_FLUSH_S`` if the
config cannot be read) after the first buffered event instead, so a busy pool sends a few publishes a second;
0 keeps Celery's flush per loop turn. An event keeps the time it happened (Celery stamps it when buffered);
Flower shows it at most that much later. Celery still flushes at once when ``buffer_limit`` (24) events wait.

Written by hand because Celery has no setting for it (``worker_consumer`` is the documented way to give a
worker its own consumer class).
"""

from __future__ import annotations

import logging
from time import monotonic

from celery.worker.consumer import Consumer as CeleryConsumer

log = logging.getLogger(__name__)

EVENTS_FLUSH_S = 0.1


class Consumer(CeleryConsumer):
    """Celery's consumer; buffered task events are flushed on a short timer, not on every loop turn."""

    # When the scheduled flush is due; an event buffered after it schedules another. No "pending" flag:
    # a timer that never fires (the hub reset by a broker reconnect) cannot stop events being flushed.
    _events_flush_due = 0.0

    def on_send_event_buffered(self) -> None:
        now = monotonic()
        if now < self._events_flush_due or not self.hub:
            return
        flush_s = self.app.conf.get("switchboard_events_flush_s", EVENTS_FLUSH_S)
        if not flush_s:
            super().on_send_event_buffered()
            return
        self._events_flush_due = now + flush_s
        self.hub.call_later(flush_s, self._flush_events)

    def shutdown(self) -> None:
        # Celery closes the dispatcher on shutdown without flushing it: send what the timer had not yet.
        try:
            self._flush_events()
        except Exception as exc:  # noqa: BLE001 - the broker may be what is going away; shutdown goes on
            log.warning("task events buffered at shutdown not sent: %s", type(exc).__name__)
        super().shutdown()
