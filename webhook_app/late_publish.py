"""Accepted events that the receiver could neither enqueue nor un-accept: published from a background
thread as soon as the broker is back.

The receiver's gate claims the idempotency keys and records ``accepted`` in one round trip, then publishes.
If the publish fails, it undoes the claim and answers 503, so the sender's retry is a new event. When Redis
is both the store and the broker and goes away between the two, undoing fails too: the sender's retry is
answered "200 duplicate of <event>" for an event that is in no queue, and it is lost (tests/reliability:
1 event in 12 Redis restarts). Such an event is kept here and published when the broker answers again, so
that answer comes true.

The same holds when the store goes away during the gate's own call: the script may have run (claim and
``accepted`` written, with appendfsync always even persisted) while its reply was lost with the connection,
so the receiver cannot tell whether it accepted the event. It answers 503, and the sender's retry will be
told "duplicate" of this event if the script did run (tests/reliability: 1 event in a Redis restart under
load, with RabbitMQ as broker). Such an event is held here too, and published once the store answers and
shows it accepted; if the store shows no such event, nothing was claimed and nothing is published.

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
Accepted = Callable[[], bool]
# Events whose admission is unknown held at once. Bounded because during a long store outage every request
# fails at the gate: only those in flight when the store went away can have been accepted, and they come
# first; the rest could not have been, and are logged and dropped (their senders were told 503).
MAX_UNCERTAIN = 1000


class LatePublisher:
    def __init__(self, give_up_after_s: float = 600.0, every_s: float = 0.5) -> None:
        self.give_up_after_s = give_up_after_s
        self.every_s = every_s
        self._waiting: queue.Queue[tuple[str, Publish, Accepted | None]] = queue.Queue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._uncertain = 0

    def add(self, event_id: str, publish: Publish) -> None:
        """Keep ``event_id``'s publish and retry it until it succeeds (or ``give_up_after_s``)."""
        log.error("event %s was accepted but neither enqueued nor released (broker and store unavailable): "
                  "it is published as soon as the broker is back", event_id)
        self._hold(event_id, publish, None)

    def add_uncertain(self, event_id: str, publish: Publish, accepted: Accepted) -> None:
        """Keep ``event_id``'s publish until ``accepted`` answers (it raises while the store is down): publish
        it if True, forget it if False."""
        with self._lock:
            if self._uncertain >= MAX_UNCERTAIN:
                LATE_PUBLISHES.labels("not_held").inc()
                log.error("event %s: the store went away during its admission and %d such events already wait: "
                          "not held", event_id, self._uncertain)
                return
            self._uncertain += 1
        log.warning("event %s: the store went away during its admission; it is published if the store, once "
                    "back, shows it accepted", event_id)
        self._hold(event_id, publish, accepted)

    def _hold(self, event_id: str, publish: Publish, accepted: Accepted | None) -> None:
        self._waiting.put((event_id, publish, accepted))
        with self._lock:
            # Started on first use: under gunicorn that is in the worker process, after the fork.
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="late-publish", daemon=True)
                self._thread.start()

    def pending(self) -> int:
        return self._waiting.unfinished_tasks

    def _run(self) -> None:
        while True:
            event_id, publish, accepted = self._waiting.get()
            try:
                self._publish(event_id, publish, accepted)
            finally:
                if accepted is not None:
                    with self._lock:
                        self._uncertain -= 1
                self._waiting.task_done()

    def _publish(self, event_id: str, publish: Publish, accepted: Accepted | None) -> None:
        retrying = Retrying(stop=stop_after_delay(self.give_up_after_s), wait=wait_fixed(self.every_s), reraise=True)
        known = accepted is None
        try:
            for attempt in retrying:
                with attempt:
                    if not known:
                        if not accepted():
                            LATE_PUBLISHES.labels("not_accepted").inc()
                            log.info("event %s was not accepted (the store went away before admitting it): "
                                     "nothing to publish", event_id)
                            return
                        known = True
                    publish()
        except Exception as exc:  # noqa: BLE001 - whatever the broker raised, report it and go on to the next
            LATE_PUBLISHES.labels("gave_up").inc()
            log.error("event %s could not be %s within %.0f s (%s): it %s no outcome; re-send it", event_id,
                      "published" if known else "checked", self.give_up_after_s, type(exc).__name__,
                      "has" if known else "may have")
            return
        LATE_PUBLISHES.labels("published").inc()
        log.warning("event %s published late, after the %s came back", event_id,
                    "broker" if accepted is None else "store")
