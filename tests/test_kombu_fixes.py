"""tasks/kombu_fixes.py on a real Redis broker connection: a channel whose transport has forgotten its
connection (what Celery 5.7 leaves after a lost connection) still reaches Redis for acks and requeues,
instead of raising the AttributeError that killed the worker."""

from __future__ import annotations

import pytest
import redis
from kombu import Connection
from kombu.transport import redis as kombu_redis

from tasks import kombu_fixes
from tests.helpers import REDIS_PORT

BROKER_DB = 15  # touched only here: the test sends no message, and requeues an unknown tag


@pytest.fixture
def channel():
    kombu_fixes.apply()
    conn = Connection(f"redis://127.0.0.1:{REDIS_PORT}/{BROKER_DB}")
    chan = conn.channel()
    with chan.conn_or_acquire() as client:  # what taking a message does first: the parameters are computed
        client.ping()
    yield chan
    conn.release()


def test_a_channel_whose_transport_forgot_its_connection_still_reaches_redis(channel) -> None:
    channel.connection.client = None  # as after Connection._do_close_transport()
    channel._pool = None               # as after Channel._disconnect_pools()
    params = channel._connparams()
    assert params["port"] == REDIS_PORT and params["db"] == BROKER_DB
    channel.qos.restore_by_tag("no-such-tag")  # a requeue on the old channel: no AttributeError
    channel.qos.ack("no-such-tag")


def test_without_kept_parameters_it_is_a_connection_error_kombu_handles(channel) -> None:
    channel.connection.client = None
    channel.__dict__.pop("_switchboard_connparams")
    with pytest.raises(redis.ConnectionError):
        channel._connparams()
    assert redis.ConnectionError in kombu_redis.Transport.connection_errors or any(
        issubclass(redis.ConnectionError, e) for e in kombu_redis.Transport.connection_errors)
