"""Accepted events that the receiver could neither enqueue nor un-accept: published from a background
thread as soon as the broker is back.

The receiver's gate claims the idempotency keys and records ``accepted`` in one round trip, then publishes.
If the publish fails, it undoes the claim and answers 503, so the sender's retry is a new event. When Redis
is both the store and the broker and goes away between the two, undoing fails too: the sender's retry is
answered "200 duplicate of <event>" for an event that is in no queue, and it is lost (tests/reliability:
1 event in 12 Redis restarts). Such an event is kept here and published when the broker answers again, so
that answer comes true.

It is held in this process's memory: a receiver killed during the same outage still loses it. Each one is
logged with its event id when it is kept and when it is published or given up, and counted in
``switchboard_receiver_late_publishes{result}``; ``/readyz`` shows how many wait.

Retries use tenacity (a fixed pause, a deadline); the thread exists only while something waits.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

from tenacity import Retrying, stop_after_delay, wait_fixed

from switchboard.metrics import LATE_PUBLISHES

log = logging.getLogger("switchboard.receiver")
Publish = Callable[[], None]


class LatePublisher:
    def __init__(self, give_up_after_s: float = 600.0, every_s: float = 0.5) -> None:
        self.give_up_after_s = give_up_after_s
        self.every_s = every_s
        self._waiting: queue.Queue[tuple[str, Publish]] = queue.Queue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def add(self, event_id: str, publish: Publish) -> None:
        """Keep ``event_id``'s publish and retry it until it succeeds (or ``give_up_after_s``)."""
        log.error("event %s was accepted but neither enqueued nor released (broker and store unavailable): "
                  "it is published as soon as the broker is back", event_id)
        self._waiting.put((event_id, publish))
        with self._lock:
            # Started on first use: under gunicorn that is in the worker process, after the fork.
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="late-publish", daemon=True)
                self._thread.start()

    def pending(self) -> int:
        return self._waiting.unfinished_tasks

    def _run(self) -> None:
        while True:
            event_id, publish = self._waiting.get()
            try:
                self._publish(event_id, publish)
            finally:
                self._waiting.task_done()

    def _publish(self, event_id: str, publish: Publish) -> None:
        retrying = Retrying(stop=stop_after_delay(self.give_up_after_s), wait=wait_fixed(self.every_s), reraise=True)
        try:
            for attempt in retrying:
                with attempt:
                    publish()
        except Exception as exc:  # noqa: BLE001 - whatever the broker raised, report it and go on to the next
            LATE_PUBLISHES.labels("gave_up").inc()
            log.error("event %s could not be published within %.0f s (%s): it has no outcome; re-send it",
                      event_id, self.give_up_after_s, type(exc).__name__)
            return
        LATE_PUBLISHES.labels("published").inc()
        log.warning("event %s published late, after the broker came back", event_id)
