"""A fix for kombu 5.7.0's Redis transport that keeps a worker alive when its Redis broker goes away.

When the broker connection is lost, Celery 5.7 collects and closes the old connection, and the old
channel's transport forgets its connection (``transport.client = None``). Anything that then touches
that channel's Redis computes the connection parameters from it and fails with an AttributeError,
which is not a connection error, so it escapes ``ignore_errors`` and the worker logs "Unrecoverable
error" and exits:
- closing the channel restores the messages this worker holds unacknowledged (``restore_unacked``);
- a task that was running across the reconnect is then acknowledged or rejected on that old channel
  (``ack`` / ``reject`` -> ``restore_by_tag``).
Found by tests/reliability/test_faults_redis.py: a Redis restart under load killed the worker and left
~120 of 160 events unprocessed. Upstream reports of the same symptom: kombu issues #582 and #970.

A second gap, in the same transport: a worker takes a message with BRPOP and then records it as
unacknowledged with a second command. If Redis goes away between the two, kombu drops the message it
already holds (kombu issues #305, #1785): the record fails with a connection error before the task is
handed over. Here the task is handed over anyway; the worker runs it, its own store-outage handling
waits for Redis, and it acknowledges the message as usual. Only a worker that dies before finishing it
would lose it, as with any message the broker no longer has.

A cost, not a fault: the transport builds a new ``redis.Redis`` client for every publish, ack and queue
operation (``Channel._create_client``), ~0.1 ms each on this machine (redis-py builds its response-callback
table per client), as much as the LPUSH itself. The channel now keeps one client per connection pool
(``redis.Redis`` is safe to share: every command takes a connection from the pool).

Written by hand because no kombu release has a fix. The Redis transport's unacked bookkeeping lives in
keys shared by every connection, so the old channel may use a new connection with the parameters it
had while connected: the ack or requeue then takes effect instead of waiting out the visibility timeout.
"""

from __future__ import annotations

import logging
from typing import Any

from kombu.transport import redis as kombu_redis
from kombu.transport import virtual

log = logging.getLogger(__name__)
_original_append = kombu_redis.QoS.append

_original_connparams = kombu_redis.Channel._connparams
_original_create_client = kombu_redis.Channel._create_client
_CLIENT = "_switchboard_client"
_CACHE = "_switchboard_connparams"


def _connparams(self: Any, asynchronous: bool = False) -> dict[str, Any]:
    transport = self.connection
    if transport is not None and transport.client is not None:
        params = _original_connparams(self, asynchronous=asynchronous)
        if not asynchronous:  # the asynchronous variant is bound to this channel's poller: never reused
            self.__dict__[_CACHE] = dict(params)
        return params
    cached = self.__dict__.get(_CACHE)
    if cached is None or asynchronous:
        # A connection error (not an AttributeError) is what kombu and Celery expect and handle here.
        raise kombu_redis.redis.ConnectionError("the broker connection of this channel is closed")
    return dict(cached)


def _append(self: Any, message: Any, delivery_tag: Any) -> None:
    try:
        _original_append(self, message, delivery_tag)
    except kombu_redis.redis.ConnectionError as exc:
        log.warning("broker went away while recording a message as taken (%s): the task runs anyway",
                    type(exc).__name__, extra={"event_id": (message.headers or {}).get("event_id", "")})
        virtual.QoS.append(self, message, delivery_tag)  # kept in this worker until it acknowledges it


def _create_client(self: Any, asynchronous: bool = False) -> Any:
    if asynchronous:
        return _original_create_client(self, asynchronous=True)
    pool = self.pool
    client = self.__dict__.get(_CLIENT)
    if client is None or client.connection_pool is not pool:  # a new pool after a reconnect: a new client
        client = self.__dict__[_CLIENT] = _original_create_client(self, asynchronous=False)
    return client


def apply() -> None:
    """Install the fix (idempotent); ``tasks/app.py`` calls it, so every worker, beat and sender has it."""
    kombu_redis.Channel._connparams = _connparams
    kombu_redis.QoS.append = _append
    kombu_redis.Channel._create_client = _create_client
