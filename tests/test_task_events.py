"""Task events (``-E``, what Flower shows) from a real worker, on both brokers: every task's events still
arrive, in a few batched messages instead of one message per event or two (tasks/worker_consumer.py); what is
still buffered when the worker is stopped is sent; ``events_flush_s: 0`` gives Celery's own behaviour back."""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from celery import Celery
from celery.events.event import get_exchange
from kombu import Connection, Queue

from switchboard.waiting import wait_for
from tests.conftest import REDIS_STATE_URL
from tests.helpers import WorkerProcess, config_copy, service_env, stop_process

TASKS = 40
EVENTS_PER_TASK = ("task-received", "task-started", "task-succeeded")


@contextlib.contextmanager
def monitored_worker(broker: str, env: dict[str, str], log_dir: Path) -> Iterator[tuple[WorkerProcess, list]]:
    """A worker on the ingest queue and a monitor on Celery's event exchange (as Flower's): ``(worker,
    messages)``, each message the list of events it carried."""
    messages: list[list[dict]] = []

    def on_message(body: dict | list, _message: object) -> None:
        messages.append(body if isinstance(body, list) else [body])

    with WorkerProcess(env, log_dir, queues="ingest") as worker, Connection(broker) as monitor:
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
        try:
            # On Redis, events are pub/sub: the monitor hears nothing sent before it subscribed. The worker's
            # heartbeat (every 2 s) says it is listening, as Flower would be.
            wait_for(lambda: any(e.get("type") == "worker-heartbeat" for m in messages for e in m), 15, 0.05,
                     "a worker heartbeat at the monitor")
            yield worker, messages
        finally:
            stop.set()
            drainer.join(timeout=5)


def _seen(messages: list[list[dict]]) -> set[tuple[str, str]]:
    return {(e.get("uuid"), e.get("type")) for m in list(messages) for e in m}


def _paced_tasks(broker: str, worker: WorkerProcess, messages: list[list[dict]]) -> list[list[dict]]:
    """TASKS tasks, each ended before the next arrives; the messages that carried their task events."""
    sender = Celery("events-test", broker=broker, set_as_current=False)
    ids = []
    for i in range(TASKS):
        # Paced like a pool under moderate load, which is where Celery's flush per loop turn sent one
        # message per event or two.
        ids.append(sender.send_task("celery.accumulate", args=(i,), queue="ingest").id)
        time.sleep(0.01)
    wait_for(lambda: all((task_id, kind) in _seen(messages) for task_id in ids for kind in EVENTS_PER_TASK), 15,
             0.05, f"{len(EVENTS_PER_TASK)} events for each of {TASKS} tasks")
    assert worker.proc.poll() is None
    sender.close()
    batches = [[e for e in m if e.get("type", "").startswith("task-")] for m in messages]
    batches = [b for b in batches if b]
    stamped = {(e["uuid"], e["type"]): e["timestamp"] for batch in batches for e in batch}
    for task_id in ids:
        # Each event keeps the time it happened (Celery stamps it when buffered, not when the batch is
        # sent): Flower's timeline stays true.
        times = [stamped[(task_id, kind)] for kind in EVENTS_PER_TASK]
        assert times == sorted(times)
    return batches


def _env(broker: str, run_id: str, sandbox, tmp_path: Path, events_flush_s: str | None = None) -> dict[str, str]:
    extra = {}
    if events_flush_s is not None:
        changes = {"service.yaml": [("events_flush_s: 0.1 ", f"events_flush_s: {events_flush_s} ")]}
        extra["SWITCHBOARD_CONFIG_DIR"] = str(config_copy(tmp_path / "config", changes))
    return service_env(broker, REDIS_STATE_URL, sandbox.url, f"t{run_id}ev{uuid.uuid4().hex[:6]}:", **extra)


def test_task_events_arrive_complete_and_batched(publish_broker: tuple[str, str], run_id: str, sandbox,
                                                 tmp_path: Path) -> None:
    _, broker = publish_broker
    with monitored_worker(broker, _env(broker, run_id, sandbox, tmp_path), tmp_path) as (worker, messages):
        batches = _paced_tasks(broker, worker, messages)
    events = sum(len(batch) for batch in batches)
    assert events >= TASKS * len(EVENTS_PER_TASK)
    # ~0.4 s of tasks make a handful of 0.1 s batches; one message per event or two would be 60-120.
    assert len(batches) <= events / 6, f"{len(batches)} messages for {events} task events"
    spreads = [max(e["timestamp"] for e in batch) - min(e["timestamp"] for e in batch) for batch in batches]
    assert max(spreads) >= 0.03


def test_events_flush_s_0_is_celerys_flush_per_loop_turn(publish_broker: tuple[str, str], run_id: str, sandbox,
                                                         tmp_path: Path) -> None:
    _, broker = publish_broker
    env = _env(broker, run_id, sandbox, tmp_path, events_flush_s="0")
    with monitored_worker(broker, env, tmp_path) as (worker, messages):
        batches = _paced_tasks(broker, worker, messages)
    events = sum(len(batch) for batch in batches)
    assert len(batches) >= events / 3, f"{len(batches)} messages for {events} task events"


def test_a_warm_shutdown_sends_the_events_still_buffered(publish_broker: tuple[str, str], run_id: str, sandbox,
                                                          tmp_path: Path) -> None:
    _, broker = publish_broker
    # events_flush_s at its maximum: within the test, only the shutdown can send the task's events
    env = _env(broker, run_id, sandbox, tmp_path, events_flush_s="5")
    with monitored_worker(broker, env, tmp_path) as (worker, messages):
        sender = Celery("events-test", broker=broker, set_as_current=False)
        task_id = sender.send_task("celery.accumulate", args=(1,), queue="ingest").id
        sender.close()
        wait_for(lambda: f"{task_id}] succeeded" in worker.log_path.read_text(), 10, 0.02, "the task's success logged")
        assert (task_id, "task-succeeded") not in _seen(messages)  # still buffered: the timer is 5 s away
        stop_process(worker.proc)  # SIGTERM: Celery's warm shutdown
        assert worker.proc.returncode == 0
        wait_for(lambda: all((task_id, kind) in _seen(messages) for kind in EVENTS_PER_TASK), 5, 0.05,
                 "the buffered events, sent at shutdown")
