"""Broker inspection shared by the receiver, the CLI and tests: which broker a URL names, queue depths over kombu
(both brokers)."""

from __future__ import annotations

from collections.abc import Iterable

import redis
from celery import Celery


def is_rabbitmq(broker_url: str) -> bool:
    """``amqp://``, ``amqps://``, ``pyamqp://``, ``librabbitmq://``: RabbitMQ; anything else is Redis here."""
    return broker_url.startswith(("amqp", "pyamqp", "librabbitmq"))


def same_redis_database(broker_url: str, state_url: str) -> bool:
    """Whether the broker is the state store's own Redis database (same scheme, server, credentials, database and
    options, as redis-py reads the URLs). Then the receiver's gate script pushes the ingest message itself
    (tasks/redis_push.py). Conservative: two spellings of one database (``localhost`` and ``127.0.0.1``, a
    missing ``/0``) count as different, which costs only the extra round trip."""
    if ";" in broker_url or not broker_url.startswith(("redis://", "rediss://")):
        return False  # RabbitMQ, a failover list, a socket path or another transport
    try:
        return redis.connection.parse_url(broker_url) == redis.connection.parse_url(state_url)
    except ValueError:
        return False


def queue_depths(celery_app: Celery, queues: Iterable[str], connect_retries: int | None = None) -> dict[str, int]:
    """Messages ready in each queue (a passive declare; a queue not declared yet counts 0).
    ``connect_retries``: how often to try connecting again before raising (None: kombu's default)."""
    depths: dict[str, int] = {}
    with celery_app.connection_for_read() as conn:
        if connect_retries is not None:
            conn.ensure_connection(max_retries=connect_retries)
        for name in queues:
            channel = conn.channel()
            try:
                depths[name] = int(channel.queue_declare(queue=name, passive=True).message_count)
            except Exception as exc:  # noqa: BLE001 - AMQP raises NOT_FOUND for an undeclared queue
                if "NOT_FOUND" in str(exc) or "404" in str(exc):
                    depths[name] = 0
                else:
                    raise
            finally:
                try:
                    channel.close()
                except Exception:  # noqa: BLE001 - a channel closed by a 404 cannot be closed again
                    pass
    return depths
