"""Bad input (issue 9, item 3): every source fuzzed over real HTTP, each request signed properly so the checks
past the signature are the ones exercised.

Properties, on both brokers, against a receiver whose broker nobody consumes (``inputs.watch`` checks the ingest
queue's depth and the ledger's ``accepted`` counter grew by the 202s and nothing else):
- structural mutations of a valid sample (wrong types, missing fields, huge strings, deep nesting, extra
  fields) answer only 202, 400, 413 or 422, never 5xx; a required field missing or replaced by an object/array
  is 422; nesting over the limit is 400; a 202's payload is one the worker's first stage (normalize) takes;
- encodings: invalid UTF-8, duplicate keys, NaN/Infinity/1e400, lone surrogate escapes are 400;
- 10 MB bodies (with a Content-Length, or chunked) are 413; bad input with a bad signature is 401 (nothing
  about the body is told to an unauthenticated sender);
- schemathesis in negative mode (bodies that violate the documented schema) on every source: no 202;
- slow clients (slow loris) against gunicorn as the Procfile runs it: cut at ``service.read_timeout_s`` (408
  for a body), while an honest sender is served; no worker killed by gunicorn's timeout, no 500.

Decisions (webhook_app/request_checks.py): duplicate keys are 400, since Python keeps the last and another
parser the first, so one signed body could mean two events; NaN/Infinity (and 1e400, which Python reads as
inf) are 400, JSON has no such numbers; a lone surrogate is 400, it is not text and failed later (a 500 in
the idempotency key before this suite); nesting deeper than 32 levels is 400.
"""

from __future__ import annotations

import json
import socket
import time
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from switchboard.config import load_config
from switchboard.settings import load_settings
from tests.helpers import config_copy
from tests.reliability.gunicorn_receiver import GunicornReceiver
from tests.reliability.inputs import SOURCES, WRONG_SECRET, Watch, body_of, fresh, ingest_depth, watch
from webhook_app.openapi import build_spec
from webhook_app.request_checks import MAX_DEPTH, Rejection, parse_json

pytestmark = pytest.mark.reliability

FUZZ = settings(max_examples=50, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
# Required by the sources' contracts (DESIGN.md, CONTRACTS.md), written out here rather than read from the
# schemas the receiver uses, so the receiver is checked against the contract and not against itself.
REQUIRED = {
    "genesys": [("eventType",), ("event",), ("event", "trunkId"), ("event", "status"), ("event", "timestamp")],
    "cxone": [("eventType",), ("data",), ("data", "trunkId"), ("data", "state"), ("data", "occurredAt")],
    "ztp": [("ztp_event_id",), ("device_mac",), ("provisioning_status",), ("site_id",), ("orchestrator_timestamp",)],
    "iot": [("idempotencyKey",), ("sensorId",), ("customerId",), ("alertType",), ("timestamp",), ("telemetryData",),
            ("telemetryData", "currentValue"), ("telemetryData", "threshold")],
    "generic": [("alert",), ("alert", "labels"), ("alert", "labels", "host"), ("alert", "metric"),
                ("alert", "startsAt")],
}
SIGNED_BAD = {202, 400, 413, 422}  # a signed request with a bad body: never 5xx, never anything undocumented
JSON_SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(
    max_size=20)
CONTAINERS = st.lists(JSON_SCALARS, max_size=3) | st.dictionaries(st.text(max_size=6), JSON_SCALARS, max_size=3)
INVALID_UTF8 = [b"\xff", b"\xfe\xff", b"\xc3\x28", b"\xa0\xa1", b"\xe2\x28\xa1", b"\xf0\x28\x8c\x28",
                b"\xc0\xaf", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80", b"\x80"]
MARK = "@@fuzz-mark@@"
NON_FINITE = [b"NaN", b"Infinity", b"-Infinity", b"1e400", b"-1E999", b"123456789e999"]


def paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path to a value (object member or array item) in ``node``."""
    out: list[tuple] = []
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, child in items:
        out.append((*prefix, key))
        out.extend(paths(child, (*prefix, key)))
    return out


def put(payload: Any, path: tuple, value: Any) -> None:
    for key in path[:-1]:
        payload = payload[key]
    payload[path[-1]] = value


def drop(payload: Any, path: tuple) -> None:
    for key in path[:-1]:
        payload = payload[key]
    del payload[path[-1]]


def nested(depth: int, leaf: Any) -> Any:
    value = leaf
    for i in range(depth):
        value = [value] if i % 2 else {"n": value}
    return value


@st.composite
def mutations(draw: st.DrawFn, source: str) -> tuple[str, bytes, set[int]]:
    """(what, body, expected answers) for a mutated valid payload of ``source``."""
    payload = fresh(source)
    kind = draw(st.sampled_from(["required_missing", "required_container", "wrong_type", "missing", "huge", "deep",
                                 "extra"]))
    if kind.startswith("required"):
        path = draw(st.sampled_from(REQUIRED[source]))
        if kind == "required_missing":
            drop(payload, path)
        else:
            put(payload, path, draw(CONTAINERS))
        return f"{kind} {path}", body_of(payload), {422}
    path = draw(st.sampled_from(paths(payload)))
    if kind == "wrong_type":
        put(payload, path, draw(JSON_SCALARS | CONTAINERS))
        return f"{kind} {path}", body_of(payload), {202, 422}
    if kind == "missing":
        drop(payload, path)
        return f"{kind} {path}", body_of(payload), {202, 422}
    if kind == "huge":
        put(payload, path, "x" * draw(st.sampled_from([257, 513, 16385, 70_000])))
        return f"{kind} {path}", body_of(payload), {202, 413, 422}
    if kind == "deep":  # written as text: json.dumps itself cannot go 20,000 deep
        depth = draw(st.integers(MAX_DEPTH, 20_000))
        put(payload, path, MARK)
        deep = "[" * depth + json.dumps(draw(JSON_SCALARS)) + "]" * depth
        return f"{kind} {depth} at {path}", body_of(payload).replace(f'"{MARK}"'.encode(), deep.encode()), {400}
    payload[draw(st.text(min_size=1, max_size=30))] = draw(JSON_SCALARS | CONTAINERS)
    return f"{kind}", body_of(payload), {202}


@st.composite
def encodings(draw: st.DrawFn, source: str) -> tuple[str, bytes]:
    """(what, body): a valid payload with one place made into something that is not JSON text. All 400."""
    payload = fresh(source)
    kind = draw(st.sampled_from(["invalid_utf8", "duplicate_key", "non_finite", "lone_surrogate"]))
    if kind == "duplicate_key":
        objects = [p for p in paths(payload) if isinstance(_at(payload, p), dict)] + [()]
        where = draw(st.sampled_from(objects))
        obj = _at(payload, where)
        key = draw(st.sampled_from(sorted(obj)))
        again = json.dumps({key: draw(JSON_SCALARS | st.just(obj[key]))})[1:-1]  # the same key, any value
        put_mark = json.dumps({**obj, MARK: 0})
        text = put_mark.replace(f'"{MARK}": 0', again)
        if where:
            put(payload, where, MARK)
            return kind, json.dumps(payload).replace(f'"{MARK}"', text).encode()
        return kind, text.encode()
    path = draw(st.sampled_from(paths(payload)))
    put(payload, path, MARK)
    text = json.dumps(payload).encode()
    if kind == "invalid_utf8":
        bad = b'"' + draw(st.text(max_size=5)).encode() + draw(st.sampled_from(INVALID_UTF8)) + b'"'
    elif kind == "non_finite":
        bad = draw(st.sampled_from(NON_FINITE))
    else:
        lone = draw(st.sampled_from(["\\ud800", "\\udbff", "\\udc00", "\\udfff", "\\ud83d x"]))
        bad = f'"{draw(st.text(alphabet="abc", max_size=3))}{lone}"'.encode()
    return kind, text.replace(f'"{MARK}"'.encode(), bad)


def _at(payload: Any, path: tuple) -> Any:
    for key in path:
        payload = payload[key]
    return payload


@pytest.mark.parametrize("source", SOURCES)
def test_structural_mutations_only_documented_answers(receiver_only: dict, source: str) -> None:
    with watch(receiver_only) as w:
        @FUZZ
        @given(mutations(source))
        def run(case: tuple[str, bytes, set[int]]) -> None:
            what, body, codes = case
            r = w.expect(source, body, codes)
            if r.status_code == 400:
                assert r.json()["error"] == "body is nested too deeply", what
        run()
    assert sum(w.answers.values()) >= 50 and w.answers.get(422, 0) > 0, w.answers


@pytest.mark.parametrize("source", SOURCES)
def test_encodings_are_400(receiver_only: dict, source: str) -> None:
    with watch(receiver_only) as w:
        @FUZZ
        @given(encodings(source))
        def run(case: tuple[str, bytes]) -> None:
            what, body = case
            r = w.expect(source, body, {400})
            assert r.json()["error"] in ("body is not valid JSON", "body is not valid UTF-8"), (what, r.text)
        run()
    assert w.accepted == 0


@pytest.mark.parametrize("body,error", [
    (b'{"a": 1, "a": 1}', "duplicate key 'a'"),                         # even with the same value
    (b'{"alert": {"x": {"y": 1, "y": 2}}}', "duplicate key 'y'"),       # at any depth
    (b'{"v": 1e400}', "number 1e400 is out of range"),
    (b'{"v": -Infinity}', "-Infinity is not valid JSON"),
    (b'{"v": "\\ud800"}', "a \\u escape is a lone surrogate"),
])
def test_the_decisions_and_their_reasons(receiver_only: dict, body: bytes, error: str) -> None:
    with watch(receiver_only) as w:
        for source in SOURCES:
            assert w.expect(source, body, {400}).json()["detail"] == error


def test_nesting_limit_and_a_valid_surrogate_pair(receiver_only: dict) -> None:
    with watch(receiver_only) as w:
        payload = fresh("iot")
        payload["extra"] = nested(MAX_DEPTH - 1, 1)  # the limit exactly: the object itself is level 1
        w.expect("iot", body_of(payload), {202})
        payload = fresh("iot")
        payload["extra"] = nested(MAX_DEPTH, 1)
        assert w.expect("iot", body_of(payload), {400}).json() == {
            "error": "body is nested too deeply", "detail": f"more than {MAX_DEPTH} levels"}
        deep = b"[" * 30_000 + b"]" * 30_000  # beyond the parser's recursion limit, under the size limit
        assert w.expect("genesys", deep, {400}).json()["error"] == "body is nested too deeply"
        payload = fresh("iot")
        payload["sensorId"] = "sensor-\U0001F600"  # written as "\ud83d\ude00": a pair is text
        w.expect("iot", body_of(payload), {202})


def test_a_lone_surrogate_is_found_wherever_an_escape_can_make_one() -> None:
    """parse_json looks for lone surrogates only in a body with a \\u escape: the strict UTF-8 decode refuses
    encoded ones, so raw text needs no second look."""
    assert parse_json('{"v": "caf\u00e9 \U0001F600"}'.encode()) == {"v": "caf\u00e9 \U0001F600"}  # raw UTF-8
    assert parse_json(b'{"v": "\\\\ud800"}') == {"v": "\\ud800"}  # an escaped backslash, then "ud800": text
    for body in (b'{"k": 1, "\\udc00": 2}', b'["ok", {"deep": ["\\ud83d"]}]'):  # a key; deep in a list
        with pytest.raises(Rejection) as refused:
            parse_json(body)
        assert refused.value.body["detail"] == "a \\u escape is a lone surrogate"
    with pytest.raises(Rejection):
        parse_json('{"v": "\ud800"}'.encode("utf-8", "surrogatepass"))  # encoded, not escaped: not UTF-8


@pytest.mark.parametrize("source", SOURCES)
def test_bad_body_with_bad_signature_is_401(receiver_only: dict, source: str) -> None:
    """The signature is checked before the body is parsed: an unauthenticated sender learns nothing of it."""
    with watch(receiver_only) as w:
        for body in (b"{not json", b'{"a": 1, "a": 2}', b'{"v": NaN}', b'"\xff"', b"[" * 5000, b"{}"):
            headers = w.headers(source, body, secret=WRONG_SECRET)
            assert w.expect(source, body, {401}, headers).json()["error"] == "invalid signature"


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_ten_megabyte_bodies_are_413(receiver_only: dict, chunked: bool) -> None:
    big = b'{"pad": "' + b"x" * (10 * 1024 * 1024) + b'"}'
    with watch(receiver_only) as w:
        for source in SOURCES:
            headers = w.headers(source, big)
            data: Any = iter([big[i:i + 65536] for i in range(0, len(big), 65536)]) if chunked else big
            started = time.monotonic()
            r = w.http.post(f"{w.url}/webhooks/{source}", data=data, headers=headers, timeout=30)
            assert r.status_code == 413, r.text
            assert r.json() == {"error": "body too large", "limit_bytes": 65536}
            assert time.monotonic() - started < 10


# --- schemathesis, negative mode: every generated body violates the documented schema -----------------------

NEGATIVE = schemathesis.openapi.from_dict(build_spec(load_config(load_settings({}).config_dir)), config=(
    schemathesis.Config.from_dict({"generation": {"max-examples": 20, "database": "none", "mode": "negative"}})))


@pytest.mark.parametrize("broker_kind", ["redis"], indirect=True)
@NEGATIVE.include(path_regex="^/webhooks/").parametrize()
def test_schemathesis_negative_bodies_signed(case: schemathesis.Case, receiver_only: dict) -> None:
    """Requests that violate the documented schema as schemathesis sees fit (the body, or a header: then the
    body may be valid), the body then signed properly: documented answers only, never 5xx; what is accepted is
    enqueued once and normalizes (``Watch``), nothing else is enqueued."""
    source = case.path.rsplit("/", 1)[1]
    kwargs = case.as_transport_kwargs(base_url=receiver_only["url"])
    if "json" in kwargs:
        body = json.dumps(kwargs.pop("json")).encode()
    else:
        data = kwargs.pop("data", b"")
        body = data.encode() if isinstance(data, str) else bytes(data or b"")
    # Watch without the queue-depth reads around each case (they would double this test's time): the ledger's
    # accepted counter is still checked around every request, and the other tests here read the queue
    r = Watch(receiver_only).post(source, body)
    assert r.status_code in {200, 202, 400, 413, 422}, (r.status_code, r.text[:300])
    case.validate_response(r, checks=[schemathesis.checks.not_a_server_error])


# --- slow clients against gunicorn, as the Procfile runs it ------------------------------------------------

READ_TIMEOUT_S = 2.0


@pytest.fixture(scope="module")
def gunicorn(receiver_only: dict, tmp_path_factory: pytest.TempPathFactory):
    directory = tmp_path_factory.mktemp("slow-clients")
    config_dir = config_copy(directory / "config", {"service.yaml": [("read_timeout_s: 10 ", "read_timeout_s: 2 ")]})
    with GunicornReceiver({**receiver_only["env"], "SWITCHBOARD_CONFIG_DIR": str(config_dir)}, directory) as server:
        yield server


def _request_head(headers: dict[str, str], length: int) -> bytes:
    lines = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return f"POST /webhooks/genesys HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n{lines}\r\n".encode()


def _slow_client(url: str, head: bytes) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=30)
    sock.sendall(head)
    return sock


def _answer(sock: socket.socket) -> bytes:
    """What the server sent before closing (b"" when it just closed)."""
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


REDIS_ONLY = pytest.mark.parametrize("broker_kind", ["redis"], indirect=True)  # gunicorn's reads: broker-blind


@REDIS_ONLY
def test_slow_clients_are_cut_and_honest_senders_served(gunicorn: GunicornReceiver, receiver_only: dict) -> None:
    signer = Watch(receiver_only)
    body = body_of(fresh("genesys"))
    head = _request_head(signer.headers("genesys", body), len(body))
    workers = int(gunicorn.cmd[gunicorn.cmd.index("--workers") + 1])
    broker = receiver_only["env"]["SWITCHBOARD_BROKER_URL"]
    depth = ingest_depth(broker)
    started = time.monotonic()
    # more slow clients than workers: headers that stop half-way, a body that stops, a body trickled forever
    stalled_headers = _slow_client(gunicorn.url, head[: len(head) // 2])
    stalled_body = _slow_client(gunicorn.url, head + body[:10])
    trickle = _slow_client(gunicorn.url, head)
    assert workers < 3
    honest_body = body_of(fresh("iot"))
    honest = requests.post(f"{gunicorn.url}/webhooks/iot", data=honest_body,
                           headers=signer.headers("iot", honest_body), timeout=30)
    honest_s = time.monotonic() - started
    sent = 0
    while True:  # one byte every 0.2 s: each read succeeds, the deadline still ends it
        try:
            trickle.sendall(body[sent:sent + 1])
        except OSError:
            break
        sent += 1
        if sent >= len(body) or time.monotonic() - started > 3 * READ_TIMEOUT_S:
            break
        time.sleep(0.2)  # the trickle's pace is what is being tested, not a wait for a result
    answers = [_answer(s) for s in (stalled_headers, stalled_body, trickle)]
    cut_s = time.monotonic() - started
    assert honest.status_code == 202, honest.text
    assert honest_s < READ_TIMEOUT_S + 2, honest_s           # served once the first slow client was cut
    assert sent < len(body), "the trickle was never cut"
    assert cut_s < 2 * READ_TIMEOUT_S + 2, cut_s
    assert answers[0] == b""                                  # no request yet: the connection is closed
    for answer in answers[1:]:
        assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
        assert b'"error":"request body not received in time"' in answer
    log = gunicorn.log_text()
    assert "WORKER TIMEOUT" not in log and " 500 " not in log and "Traceback" not in log, log[-3000:]
    assert ingest_depth(broker) == depth + 1  # the honest one only


@REDIS_ONLY
def test_a_client_that_disconnects_mid_body_is_not_a_500(gunicorn: GunicornReceiver, receiver_only: dict) -> None:
    body = body_of(fresh("genesys"))
    head = _request_head(Watch(receiver_only).headers("genesys", body), len(body))
    broker = receiver_only["env"]["SWITCHBOARD_BROKER_URL"]
    depth = ingest_depth(broker)
    sock = _slow_client(gunicorn.url, head + body[:20])
    sock.shutdown(socket.SHUT_WR)
    answer = _answer(sock)
    assert not answer.startswith(b"HTTP/1.1 5"), answer[:200]
    assert ingest_depth(broker) == depth
    r = requests.get(f"{gunicorn.url}/healthz", timeout=5)
    assert r.status_code == 200
