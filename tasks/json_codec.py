"""Celery's message JSON on orjson: kombu's ``json`` serializer (every task, event and control message body,
on both brokers) and the Redis transport's message envelope, encoded and decoded by orjson.

Why: a webhook's 1 KB envelope is JSON-encoded by the receiver, decoded by the ingest task, encoded again for
each dispatch, and on Redis each message is wrapped in a second JSON envelope (kombu.transport.redis) that is
encoded again for the unacked index; kombu does all of it with the stdlib encoder and an ``object_hook``
called for every object. orjson is ~5-10x faster at both (bench/profile.py: kombu's dumps was ~4% of a
receiver request).

The wire format stays kombu's: content type ``application/json``, UTF-8, and kombu's ``{"__type__": ...,
"__value__": ...}`` markers for the types kombu registers (datetime, date, time, Decimal, bytes): orjson hands
those to kombu's own encoder (``default``), and a body holding a marker is decoded by kombu's decoder. So a
worker or a Flower without this module reads our messages, and we read theirs. Anything orjson refuses
(an int beyond 64 bits, a lone surrogate, nesting deeper than 254, NaN on input) goes to kombu's stdlib code,
which then does what it always did. Two differences remain, both deliberate and tested
(tests/test_json_codec.py): a ``uuid.UUID`` is sent as its string, as orjson has no way to hand it to
``default`` (nothing in Switchboard or Celery sends one: ids are strings); NaN and infinities are sent as
``null`` (kombu sent ``NaN``, which is not JSON and which a browser's Flower cannot parse).

Written here because no library plugs orjson into kombu (kombu's registry takes any encoder; this is one).
"""

from __future__ import annotations

from typing import Any

import orjson
from kombu import serialization
from kombu.transport import redis as kombu_redis
from kombu.utils import json as kombu_json

CONTENT_TYPE = "application/json"
# datetimes and dataclasses go to kombu's encoder (its markers; a dataclass is a TypeError there, as before);
# int keys become strings, as the stdlib encoder writes them
_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_NON_STR_KEYS
_kombu_default = kombu_json.JSONEncoder().default


def dumps_bytes(obj: Any) -> bytes:
    try:
        return orjson.dumps(obj, default=_kombu_default, option=_OPTIONS)
    except orjson.JSONEncodeError:
        # beyond orjson (big ints, surrogates, deep nesting) or not JSON at all: kombu's encoder decides,
        # and raises the error it always raised
        return kombu_json.dumps(obj).encode("utf-8")


def dumps(obj: Any) -> str:
    """As ``kombu.utils.json.dumps``: a str (the Redis transport's envelope is written as one)."""
    return dumps_bytes(obj).decode("utf-8")


def loads(data: bytes | bytearray | memoryview | str) -> Any:
    """As ``kombu.utils.json.loads``, for what either encoder wrote."""
    if isinstance(data, memoryview | bytearray):
        data = bytes(data)
    marker = b'"__type__"' if isinstance(data, bytes) else '"__type__"'
    if marker in data:  # kombu's typed values: its object_hook turns them back into objects
        return kombu_json.loads(data)
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return kombu_json.loads(data)  # NaN, big ints, ...: what the stdlib reads, or its error


def install() -> None:
    """Make kombu's ``json`` serializer and the Redis transport's envelope use this module (idempotent)."""
    serialization.register("json", dumps_bytes, loads, content_type=CONTENT_TYPE, content_encoding="utf-8")
    # kombu picks its default encoder (a body published with no serializer named) when "json" is first registered
    serialization.registry._set_default_serializer("json")
    kombu_redis.dumps = dumps
    kombu_redis.loads = loads


def uninstall() -> None:
    """kombu's own json again (tests compare the two)."""
    serialization.register_json()
    serialization.registry._set_default_serializer("json")
    kombu_redis.dumps = kombu_json.dumps
    kombu_redis.loads = kombu_json.loads
