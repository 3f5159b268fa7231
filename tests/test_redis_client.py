"""The Redis client every process shares (switchboard/store.py) and the broker's kombu channel speak to Redis
through hiredis, redis-py's C reply parser and command packer: the ingest task packs ~70 commands per event,
and with redis-py's pure-Python packer that was ~8% of its CPU (README "Performance", session 17). A lost
``redis[hiredis]`` extra would silently fall back to the Python parser; these tests say so instead."""

from __future__ import annotations

from kombu import Connection
from redis._parsers import _HiredisParser
from redis.connection import HiredisRespSerializer

from switchboard.store import redis_client
from tests.helpers import REDIS_PORT

DB = 14  # its own database: the keys below are written and deleted here only


def test_the_shared_client_parses_and_packs_with_hiredis() -> None:
    client = redis_client(f"redis://127.0.0.1:{REDIS_PORT}/{DB}")
    key = "test-redis-client:binary"
    value = "line one\r\n$5\r\n*2\r\n\x00 and ünïcode"  # RESP framing inside a value must survive both ways
    try:
        client.set(key, value)
        assert client.get(key) == value
        assert client.hgetall("test-redis-client:missing") == {}
        connection = client.connection_pool.get_connection()
        try:
            assert isinstance(connection._parser, _HiredisParser)
            assert isinstance(connection._command_packer, HiredisRespSerializer)
        finally:
            client.connection_pool.release(connection)
    finally:
        client.delete(key)


def test_the_broker_channel_parses_with_hiredis() -> None:
    with Connection(f"redis://127.0.0.1:{REDIS_PORT}/{DB}") as conn:
        channel = conn.default_channel
        with channel.conn_or_acquire() as client:
            assert client.ping()
            connection = client.connection_pool.get_connection()
            try:
                assert isinstance(connection._parser, _HiredisParser)
            finally:
                client.connection_pool.release(connection)
