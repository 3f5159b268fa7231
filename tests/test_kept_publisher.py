"""A task's publish of its dispatches through kept producers (tasks/kept_publisher.py, used by fan_out) on the real
Redis and RabbitMQ: inside a task, the message is the one ``apply_async`` sends (the same root and parent ids), and
a publish after the broker dropped the kept connection is retried by the app's publish policy instead of failing
the task."""

from __future__ import annotations

import logging
import threading
import uuid
from typing import Any

import pytest
from amqp.exceptions import NotAllowed

from switchboard.waiting import wait_for
from tasks.app import DISPATCH_QUEUES
from tasks.kept_publisher import KeptPublisher
from tests.conftest import _rabbitmqctl, own_broker
from tests.test_ingest_publisher import VARYING_HEADERS, VARYING_PROPERTIES, _break_connections, _celery, _take_all

QUEUE = "dispatch.critical"


def _dispatch(celery: Any, event_id: str) -> Any:
    alert = {"event_id": event_id, "alert_key": "trunk:t1", "severity": "critical", "routes": []}
    route = {"target": "pagerduty_events", "priority": "critical"}
    return celery.signature("switchboard.dispatch", args=(alert, route), queue=QUEUE)


def test_inside_a_task_the_message_is_the_one_apply_async_sends(publish_broker: tuple[str, str]) -> None:
    _, url = publish_broker
    celery = _celery(url)
    publisher = KeptPublisher(celery, DISPATCH_QUEUES)
    event_id = uuid.uuid4().hex

    @celery.task(name=f"test.fan_out.{event_id}")  # a name of its own: the registry outlives this app
    def fan_out() -> None:  # publishes as tasks/stage_tasks.fan_out does, then as apply_async would
        options = {"headers": {"event_id": event_id}, "argsrepr": repr(({"event_id": event_id},))}
        publisher.publish(_dispatch(celery, event_id), **options)
        _dispatch(celery, event_id).apply_async(**options)

    # Task.apply runs the body as a worker does: the task is the current worker task while it runs
    fan_out.apply(task_id="parent-task-id").get()
    publisher.close()
    ours, celerys = _take_all(url, QUEUE)
    assert ours.decode() == celerys.decode() and ours.decode()[0][0]["event_id"] == event_id
    assert set(ours.headers) == set(celerys.headers)
    assert {k: v for k, v in ours.headers.items() if k not in VARYING_HEADERS} == \
        {k: v for k, v in celerys.headers.items() if k not in VARYING_HEADERS}
    assert ours.headers["parent_id"] == celerys.headers["parent_id"] == "parent-task-id"
    assert ours.headers["root_id"] == celerys.headers["root_id"] == "parent-task-id"
    assert ours.headers["task"] == "switchboard.dispatch" and ours.headers["published_at"] > 0
    assert {k: v for k, v in ours.properties.items() if k not in VARYING_PROPERTIES} == \
        {k: v for k, v in celerys.properties.items() if k not in VARYING_PROPERTIES}


def test_outside_a_task_there_is_no_parent(publish_broker: tuple[str, str]) -> None:
    _, url = publish_broker
    publisher = KeptPublisher(_celery(url), DISPATCH_QUEUES)
    publisher.publish(_dispatch(publisher.celery, "e1"), headers={}, argsrepr="()")
    publisher.close()
    (message,) = _take_all(url, QUEUE)
    assert message.headers["parent_id"] is None and message.headers["root_id"] == message.headers["id"]


def test_a_publish_after_the_connection_broke_is_retried_not_failed(publish_broker: tuple[str, str]) -> None:
    kind, url = publish_broker
    celery = _celery(url)
    celery.conf.task_publish_retry_policy = {"max_retries": 5, "interval_start": 0, "interval_step": 0.2,
                                             "interval_max": 0.5}
    publisher = KeptPublisher(celery, DISPATCH_QUEUES, keep=1)
    publisher.publish(_dispatch(celery, "before"), headers={}, argsrepr="()")
    _break_connections(kind, url)
    for n in range(3):  # the first finds its kept connection dead: the app's retry policy reconnects
        publisher.publish(_dispatch(celery, f"after-{n}"), headers={}, argsrepr="()")
    publisher.close()
    taken = [m.decode()[0][0]["event_id"] for m in _take_all(url, QUEUE)]
    assert sorted(taken) == ["after-0", "after-1", "after-2", "before"]  # each once


def test_a_signature_for_a_queue_it_does_not_serve_is_refused() -> None:
    publisher = KeptPublisher(_celery("redis://127.0.0.1:1/0"), DISPATCH_QUEUES)  # refused before connecting
    ingest = publisher.celery.signature("switchboard.ingest", args=({},), queue="ingest")
    with pytest.raises(ValueError, match="'ingest'"):
        publisher.publish(ingest, headers={}, argsrepr="()")


def test_a_broker_refusing_connections_is_waited_out_when_the_publish_retries(
        run_id: str, caplog: pytest.LogCaptureFixture) -> None:
    """A task's publish with no kept connection left, while RabbitMQ refuses new ones ("connection limit
    reached", which kombu does not retry): it waits under the app's publish retry policy, then publishes once.
    Without retry (the receiver's publish) the refusal is raised at once. RabbitMQ only: a vhost of its own can
    refuse new connections (a Redis server could only refuse them to every test at once)."""
    cleanups: list = []
    try:
        url = own_broker("rabbitmq", 0, f"refuse{uuid.uuid4().hex[:6]}", run_id, cleanups)
        _publish_while_refused(url, caplog)
    finally:
        for cleanup in reversed(cleanups):
            cleanup()


def _publish_while_refused(url: str, caplog: pytest.LogCaptureFixture) -> None:
    celery = _celery(url)
    celery.conf.task_publish_retry_policy = {"max_retries": 100, "interval_start": 0.1, "interval_step": 0.1,
                                             "interval_max": 0.2}
    publisher = KeptPublisher(celery, DISPATCH_QUEUES)
    errors: list[BaseException] = []

    def publish() -> None:
        try:
            publisher.publish(_dispatch(celery, "waited"), headers={}, argsrepr="()")
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    worker = threading.Thread(target=publish)
    _rabbitmqctl("set_vhost_limits", "-p", url.rsplit("/", 1)[1], '{"max-connections": 0}')
    try:
        with pytest.raises(NotAllowed):
            publisher.publish(_dispatch(celery, "no-retry"), headers={}, argsrepr="()", retry=False)
        caplog.set_level(logging.WARNING, logger="tasks.kept_publisher")
        worker.start()
        wait_for(lambda: sum("refused a publish's connection" in r.getMessage() for r in caplog.records) >= 2,
                 30, 0.05, "two refused attempts")
        assert worker.is_alive()
    finally:
        _rabbitmqctl("set_vhost_limits", "-p", url.rsplit("/", 1)[1], '{"max-connections": -1}')
    worker.join(timeout=30)
    assert not worker.is_alive() and not errors
    publisher.close()
    assert [m.decode()[0][0]["event_id"] for m in _take_all(url, QUEUE)] == ["waited"]
