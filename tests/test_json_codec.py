"""Message JSON on orjson (tasks/json_codec.py): the same values as kombu's own json, both ways, in one process
and across a real broker to and from a process that runs plain kombu (a worker or Flower without the module)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import uuid
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kombu import Connection, Exchange, Producer, Queue, serialization
from kombu.exceptions import EncodeError
from kombu.transport import redis as kombu_redis
from kombu.utils import json as kombu_json

from tasks import json_codec
from tests.conftest import own_broker
from tests.test_ingest_publisher import _take_all

TYPED = {"when": datetime(2026, 12, 6, 8, 30, 1, 250, tzinfo=UTC), "day": date(2026, 12, 6), "at": time(8, 30),
         "amount": Decimal("12.50"), "raw": b"\x00\xffbytes", "text": b"plain"}
def _nested(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


# beyond orjson: an int over 64 bits, a lone surrogate, nesting deeper than its 254 levels
REFUSED = [{"big": 2**70}, {"surrogate": "\ud800"}, {"deep": _nested(300)}]
# what orjson writes otherwise than the stdlib: non-string keys, non-ASCII text (unescaped), tuples
WRITTEN_OTHERWISE = {"keys": {1: "a", 2.5: "b", None: "c", False: "d"}, "unicode": "é – 中", "tuple": (1, "x")}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5),
    max_leaves=30)


@pytest.fixture(autouse=True)
def _installed():
    json_codec.install()  # as every Switchboard process has it (tasks.app.make_celery)
    yield
    json_codec.install()


def test_install_replaces_kombus_json_and_the_redis_envelope() -> None:
    assert serialization.registry._encoders["json"].encoder is json_codec.dumps_bytes
    assert serialization.registry._decoders["application/json"] is json_codec.loads
    assert kombu_redis.dumps is json_codec.dumps and kombu_redis.loads is json_codec.loads
    content_type, encoding, body = serialization.dumps({"a": 1}, serializer="json")
    assert (content_type, encoding, body) == ("application/json", "utf-8", b'{"a":1}')
    json_codec.uninstall()
    assert serialization.dumps({"a": 1}, serializer="json")[2] == '{"a": 1}'  # kombu's own again
    assert kombu_redis.dumps is kombu_json.dumps


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_plain_values_read_the_same_either_way(value: Any) -> None:
    ours = json_codec.dumps_bytes(value)
    assert kombu_json.loads(ours) == value == json_codec.loads(kombu_json.dumps(value)) == json_codec.loads(ours)
    assert json_codec.loads(json_codec.dumps(value)) == value


def test_kombus_typed_values_keep_their_markers_and_come_back_as_objects() -> None:
    ours = json_codec.dumps_bytes(TYPED)
    assert json.loads(ours)["when"] == {"__type__": "datetime", "__value__": "2026-12-06T08:30:01.000250+00:00"}
    assert json.loads(ours) == json.loads(kombu_json.dumps(TYPED))  # the wire value is kombu's
    assert kombu_json.loads(ours) == TYPED == json_codec.loads(kombu_json.dumps(TYPED)) == json_codec.loads(ours)


def test_what_orjson_refuses_or_writes_otherwise_reads_as_kombus_own() -> None:
    for value in [*REFUSED, WRITTEN_OTHERWISE]:
        ours = json_codec.dumps_bytes(value)
        assert json.loads(ours) == json.loads(kombu_json.dumps(value))
        assert json_codec.loads(ours) == kombu_json.loads(kombu_json.dumps(value)) == kombu_json.loads(ours)
    assert json_codec.loads(json_codec.dumps_bytes(REFUSED[0]))["big"] == 2**70
    assert json_codec.loads(json_codec.dumps_bytes(REFUSED[1]))["surrogate"] == "\ud800"
    assert "中".encode() in json_codec.dumps_bytes(WRITTEN_OTHERWISE)  # UTF-8, where kombu wrote \\u4e2d
    assert math.isnan(json_codec.loads(b'{"x": NaN}')["x"])  # kombu's old messages still read
    for buffer in (bytearray(b'{"a":[1]}'), memoryview(b'{"a":[1]}'), '{"a":[1]}'):
        assert json_codec.loads(buffer) == {"a": [1]}


def test_errors_are_kombus() -> None:
    class NotJson:
        pass

    with pytest.raises(TypeError, match="not JSON serializable"):
        json_codec.dumps_bytes({"x": NotJson()})
    with pytest.raises(EncodeError):  # as a publish of it would fail
        serialization.dumps({"x": NotJson()}, serializer="json")
    with pytest.raises(ValueError):
        json_codec.loads(b'{"x": ')


def test_the_two_documented_differences() -> None:
    # a UUID is its string (kombu: a marker read back as a UUID); NaN is null (kombu: NaN, not JSON)
    value = uuid.UUID(int=7)
    assert json_codec.loads(json_codec.dumps_bytes({"id": value})) == {"id": str(value)}
    assert kombu_json.loads(kombu_json.dumps({"id": value})) == {"id": value}
    assert json_codec.loads(json_codec.dumps_bytes([math.nan, math.inf])) == [None, None]


PLAIN_KOMBU = """
import json, sys
from kombu import Connection, Exchange, Producer, Queue
from kombu.utils import json as kombu_json
url, queue, mode = sys.argv[1:4]
with Connection(url) as conn:
    if mode == "read":
        raw = conn.default_channel.basic_get(queue, no_ack=True)
        message = conn.default_channel.message_to_python(raw)
        print(json.dumps({"body": message.body.decode() if isinstance(message.body, bytes) else message.body,
                          "decoded": repr(message.decode()), "type": message.content_type}))
    else:
        value = kombu_json.loads(sys.stdin.read())
        Producer(conn.default_channel).publish(value, exchange=Exchange(queue, "direct"), routing_key=queue,
                                               serializer="json", declare=[Queue(queue, Exchange(queue, "direct"),
                                                                                 routing_key=queue)])
"""


def _plain_kombu(url: str, queue: str, mode: str, stdin: str = "") -> dict[str, Any]:
    # a process that never imports tasks: kombu's json as shipped
    done = subprocess.run([sys.executable, "-c", PLAIN_KOMBU, url, queue, mode], input=stdin, capture_output=True,
                          text=True, timeout=60, check=True)
    return json.loads(done.stdout) if mode == "read" else {}


VALUE = {"event_id": "e1", "payload": {"name": "Trunk 7 – down", "n": [1, 2.5, None, True]}, **TYPED}


def test_a_message_crosses_the_broker_to_and_from_plain_kombu(broker_kind: str, run_id: str) -> None:
    cleanups: list = []
    url = own_broker(broker_kind, 9, f"codec{uuid.uuid4().hex[:6]}", run_id, cleanups)
    queue = f"codec-{uuid.uuid4().hex[:8]}"
    exchange = Exchange(queue, "direct")
    try:
        with Connection(url) as conn:  # ours -> plain kombu
            Producer(conn.default_channel).publish(VALUE, exchange=exchange, routing_key=queue, serializer="json",
                                                   declare=[Queue(queue, exchange, routing_key=queue)])
        read = _plain_kombu(url, queue, "read")
        assert read["type"] == "application/json"
        assert read["decoded"] == repr(VALUE)  # the same objects, datetimes and Decimal included
        assert read["body"] == json_codec.dumps(VALUE)  # and it was our encoder that wrote it

        _plain_kombu(url, queue, "write", kombu_json.dumps(VALUE))  # plain kombu -> ours
        [message] = _take_all(url, queue)
        assert message.decode() == VALUE
        body = message.body.decode() if isinstance(message.body, bytes) else message.body  # py-amqp decodes
        assert body == kombu_json.dumps(VALUE)  # written by kombu's stdlib encoder
    finally:
        with Connection(url) as conn:
            Queue(queue, exchange, routing_key=queue)(conn.default_channel).delete()
        for cleanup in reversed(cleanups):
            cleanup()
