"""Task events (``-E``, what Flower shows) from a real worker, on both brokers: every task's events still
arrive, in a few batched messages instead of one message per event or two (tasks/worker_consumer.py)."""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from pathlib import Path

from celery import Celery
from celery.events.event import get_exchange
from kombu import Connection, Queue

from switchboard.waiting import wait_for
from tests.conftest import REDIS_STATE_URL
from tests.helpers import WorkerProcess, service_env

TASKS = 40
EVENTS_PER_TASK = ("task-received", "task-started", "task-succeeded")


def test_task_events_arrive_complete_and_batched(publish_broker: tuple[str, str], run_id: str, sandbox,
                                                 tmp_path: Path) -> None:
    _, broker = publish_broker
    env = service_env(broker, REDIS_STATE_URL, sandbox.url, f"t{run_id}ev{uuid.uuid4().hex[:6]}:")
    sender = Celery("events-test", broker=broker, set_as_current=False)
    messages: list[list[dict]] = []  # the events in each message the monitor received

    def on_message(body: dict | list, _message: object) -> None:
        messages.append(body if isinstance(body, list) else [body])

    with WorkerProcess(env, tmp_path, queues="ingest") as worker, Connection(broker) as monitor:
        queue = Queue(f"sb-test-events-{uuid.uuid4().hex[:8]}", exchange=get_exchange(monitor),
                      routing_key="#", auto_delete=True, durable=False)
        stop = threading.Event()

        def drain() -> None:
            with monitor.Consumer(queue, callbacks=[on_message], accept=["json"], no_ack=True):
                while not stop.is_set():
                    with contextlib.suppress(TimeoutError):
                        monitor.drain_events(timeout=0.2)

        drainer = threading.Thread(target=drain, daemon=True)
        drainer.start()
        # On Redis, events are pub/sub: the monitor hears nothing sent before it subscribed. The worker's
        # heartbeat (every 2 s) says it is listening, as Flower would be.
        wait_for(lambda: any(e.get("type") == "worker-heartbeat" for m in messages for e in m), 15, 0.05,
                 "a worker heartbeat at the monitor")
        ids = []
        for i in range(TASKS):
            # Paced like a pool under moderate load: each task has ended before the next arrives, which
            # is where Celery's flush-per-loop-turn sent one message per event or two.
            ids.append(sender.send_task("celery.accumulate", args=(i,), queue="ingest").id)
            time.sleep(0.01)

        def all_seen() -> bool:
            seen = {(e.get("uuid"), e.get("type")) for m in list(messages) for e in m}
            return all((task_id, kind) in seen for task_id in ids for kind in EVENTS_PER_TASK)

        try:
            wait_for(all_seen, 15, 0.05, f"{len(EVENTS_PER_TASK)} events for each of {TASKS} tasks")
        finally:
            stop.set()
            drainer.join(timeout=5)
        assert worker.proc.poll() is None
    sender.close()

    batches = [[e for e in m if e.get("type", "").startswith("task-")] for m in messages]
    batches = [b for b in batches if b]
    events = sum(len(batch) for batch in batches)
    task_messages = len(batches)
    assert events >= TASKS * len(EVENTS_PER_TASK)
    # ~0.4 s of tasks make a handful of 0.1 s batches; one message per event or two would be 60-120.
    assert task_messages <= events / 6, f"{task_messages} messages for {events} task events"
    # Each event keeps the time it happened (Celery stamps it when buffered, not when the batch is sent):
    # Flower's timeline stays true.
    stamped = {(e["uuid"], e["type"]): e["timestamp"] for batch in batches for e in batch}
    for task_id in ids:
        times = [stamped[(task_id, kind)] for kind in EVENTS_PER_TASK]
        assert times == sorted(times)
    spreads = [max(e["timestamp"] for e in batch) - min(e["timestamp"] for e in batch) for batch in batches]
    assert max(spreads) >= 0.03
