"""The receiver's kept producers (tasks/kept_publisher.py on the ingest queue, without retry, as
webhook_app/receiver.py uses them) on the real Redis and RabbitMQ: the message is the one Celery's ``apply_async``
sends, a fresh vhost gets the queue declared before any worker exists, and a producer whose connection broke is
not used again."""

from __future__ import annotations

import subprocess
import uuid
from typing import Any

import pytest
from kombu import Connection

from switchboard.settings import load_settings
from tasks.app import INGEST_QUEUE, make_celery
from tasks.kept_publisher import KeptPublisher
from tasks.pipeline import ingest_signature

# what differs between any two task messages: the task's id (its root id and correlation id), the publish time
VARYING_HEADERS = {"id", "root_id", "published_at"}
VARYING_PROPERTIES = {"correlation_id", "delivery_tag", "delivery_info", "application_headers"}  # headers: above


def _celery(url: str):  # noqa: ANN202
    celery = make_celery(load_settings({"SWITCHBOARD_BROKER_URL": url}))
    celery.conf.broker_transport_options = {**celery.conf.broker_transport_options, "max_retries": 0}
    return celery


def _envelope() -> dict[str, Any]:
    return {"event_id": uuid.uuid4().hex, "source": "ztp", "received_at": 1.5, "payload": {"a": [1, "b"]}}


def _take_all(url: str, queue: str = INGEST_QUEUE) -> list[Any]:
    kind = "redis" if url.startswith("redis") else "rabbitmq"
    messages = []
    with Connection(url) as conn:
        channel = conn.default_channel
        while (raw := channel.basic_get(queue, no_ack=True)) is not None:
            messages.append(channel.message_to_python(raw) if kind == "rabbitmq" else raw)
    return messages


def _without_ids(body: list[Any]) -> list[Any]:
    """The body with the chain's links' task ids (new per publish) left out."""
    args, kwargs, embed = body
    chain = [{**link, "options": {k: v for k, v in link["options"].items() if k != "task_id"}}
             for link in embed.get("chain") or []]
    return [args, kwargs, {**embed, "chain": chain}]


def _publish(publisher: KeptPublisher, envelope: dict[str, Any], grain: str = "fused") -> None:
    publisher.publish(ingest_signature(publisher.celery, envelope, grain), headers={"event_id": envelope["event_id"]},
                      argsrepr=repr(({"event_id": envelope["event_id"]},)), timeout_s=2.0, retry=False)


@pytest.mark.parametrize("grain", ["fused", "chain"])
def test_the_message_is_the_one_apply_async_sends(publish_broker: tuple[str, str], grain: str) -> None:
    _, url = publish_broker
    celery = _celery(url)
    publisher = KeptPublisher(celery, [INGEST_QUEUE])
    envelope = _envelope()
    # first, on a broker where nothing declared the ingest queue yet: the publisher declares it
    _publish(publisher, envelope, grain)
    ingest_signature(celery, envelope, grain).apply_async(
        retry=False, headers={"event_id": envelope["event_id"]}, argsrepr=repr(({"event_id": envelope["event_id"]},)),
        timeout=2.0, confirm_timeout=2.0)
    publisher.close()
    ours, celerys = _take_all(url)
    assert _without_ids(ours.decode()) == _without_ids(celerys.decode()) and ours.decode()[0][0] == envelope
    assert set(ours.headers) == set(celerys.headers)
    assert {k: v for k, v in ours.headers.items() if k not in VARYING_HEADERS} == \
        {k: v for k, v in celerys.headers.items() if k not in VARYING_HEADERS}
    assert ours.headers["root_id"] == ours.headers["id"] != celerys.headers["id"]
    assert ours.headers["published_at"] > 0 and ours.headers["event_id"] == envelope["event_id"]
    assert ours.headers["task"] == ("switchboard.ingest" if grain == "fused" else "switchboard.stage.normalize")
    assert {k: v for k, v in ours.properties.items() if k not in VARYING_PROPERTIES} == \
        {k: v for k, v in celerys.properties.items() if k not in VARYING_PROPERTIES}
    assert ours.content_type == celerys.content_type == "application/json"


def _break_connections(kind: str, url: str) -> None:
    if kind == "redis":
        import redis

        admin = redis.Redis.from_url(url)
        db = admin.connection_pool.connection_kwargs["db"]
        for client in admin.client_list():
            if int(client["db"]) == db and client["id"] != str(admin.client_id()):
                admin.client_kill_filter(_id=client["id"])
    else:
        vhost = url.rsplit("/", 1)[1]
        subprocess.run(["rabbitmqctl", "-q", "close_all_connections", "-p", vhost, "test: connection broken"],
                       check=True, capture_output=True, timeout=60)


def test_a_producer_whose_connection_broke_is_not_used_again(publish_broker: tuple[str, str]) -> None:
    kind, url = publish_broker
    publisher = KeptPublisher(_celery(url), [INGEST_QUEUE])
    _publish(publisher, _envelope())
    _break_connections(kind, url)
    published, failed = 1, 0
    for _ in range(3):
        try:
            _publish(publisher, _envelope())
            published += 1
        except Exception:  # noqa: BLE001 - the kept connection was dead: this one publish may fail
            failed += 1
            assert publisher.idle() == 0  # the broken producer was dropped, not kept
    publisher.close()
    assert failed <= 1 and published >= 3
    assert len(_take_all(url)) == published  # every publish that returned is on the queue, none twice


def test_a_broker_that_is_away_makes_publish_raise_promptly() -> None:
    import time

    from switchboard.runner import free_port

    publisher = KeptPublisher(_celery(f"redis://127.0.0.1:{free_port()}/0"), [INGEST_QUEUE])
    started = time.monotonic()
    with pytest.raises(Exception):  # noqa: B017, PT011 - kombu's or redis-py's connection error
        _publish(publisher, _envelope())
    assert time.monotonic() - started < 5
    assert publisher.idle() == 0


def test_a_signature_for_another_queue_is_refused() -> None:
    publisher = KeptPublisher(_celery("redis://127.0.0.1:1/0"), [INGEST_QUEUE])  # refused before connecting
    other = publisher.celery.signature("switchboard.dispatch", args=({},), queue="dispatch.critical")
    with pytest.raises(ValueError, match="dispatch.critical"):
        publisher.publish(other, headers={}, argsrepr="()", timeout_s=1.0)
