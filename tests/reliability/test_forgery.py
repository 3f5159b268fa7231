"""Forgery (issue 9, item 4): requests that do not prove they come from the source are 401, and a replay of
one that did is a 200 duplicate or, once outside the tolerance, a 401 (DESIGN.md "Signatures", "The
receiver's answers"). Over real HTTP on both brokers, against a receiver whose broker nobody consumes:
``inputs.watch`` checks nothing but the 202s reached the ingest queue or the ledger.

Covered for every source where the scheme allows it: wrong secret, another source's secret, the signature
of a different body (or, for Standard Webhooks, of another id or timestamp), truncated signatures, several
values in the signature header (one HMAC value only; Standard Webhooks' space-separated list per its spec,
where one valid v1 entry suffices), a header sent twice, a replay within and beyond the tolerance, a reused
``webhook-id`` / ``X-Request-Id`` with another body, rotation (old and new secrets both accepted while the
variable lists both, the old one rejected once removed), and no secret configured (fail closed).
"""

from __future__ import annotations

import http.client
import time
import uuid

import pytest

from switchboard.config import load_config
from switchboard.settings import load_settings
from switchboard.signatures import sign_hmac
from switchboard.waiting import wait_for
from tests.helpers import ReceiverServer
from tests.posting import SECRET_ENV
from tests.reliability.inputs import SECRET, SOURCES, WRONG_SECRET, body_of, fresh, watch

pytestmark = pytest.mark.reliability

HMAC_SOURCES = ("genesys", "cxone", "generic")
SW_SOURCES = ("ztp", "iot")
HEADER = {"genesys": "X-Genesys-Signature", "cxone": "X-CXone-Signature", "generic": "X-Signature-256"}


def _invalid(r) -> str:
    assert r.status_code == 401, r.text
    body = r.json()
    assert body["error"] == "invalid signature", body
    return body["detail"]


@pytest.mark.parametrize("source", SOURCES)
def test_wrong_secret_other_source_and_other_body_are_401(receiver_only: dict, source: str) -> None:
    other = {"genesys": "cxone", "cxone": "generic", "generic": "genesys", "ztp": "iot", "iot": "ztp"}[source]
    with watch(receiver_only) as w:
        body, decoy = body_of(fresh(source)), body_of(fresh(source))
        details = {
            "wrong secret": _invalid(w.post(source, body, w.headers(source, body, secret=WRONG_SECRET))),
            "other source's secret": _invalid(w.post(source, body, w.headers(source, body, secret=SECRET[other]))),
            "signature of another body": _invalid(w.post(source, body, w.headers(source, decoy))),
        }
        if source in SW_SOURCES:  # the id and timestamp are signed too: neither can be changed
            signed = w.headers(source, body)
            details["another webhook-id"] = _invalid(w.post(source, body, {**signed, "webhook-id": "msg_other"}))
            later = str(int(signed["webhook-timestamp"]) + 1)
            details["another timestamp"] = _invalid(w.post(source, body, {**signed, "webhook-timestamp": later}))
            expected = "no matching v1 signature"
        else:
            expected = "signature does not match"
        assert set(details.values()) == {expected}, details
        w.expect(source, body, {202})  # the same body, signed properly


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("cut", [1, 2, 22, 43])
def test_truncated_signature_is_401(receiver_only: dict, source: str, cut: int) -> None:
    with watch(receiver_only) as w:
        body = body_of(fresh(source))
        headers = w.headers(source, body)
        name = "webhook-signature" if source in SW_SOURCES else HEADER[source]
        headers[name] = headers[name][:-cut]
        detail = _invalid(w.post(source, body, headers))
        assert detail in {"no matching v1 signature", "signature has the wrong length", "signature is not valid hex"}


@pytest.mark.parametrize("source", HMAC_SOURCES)
def test_several_hmac_values_are_401_even_with_the_valid_one_among_them(receiver_only: dict, source: str) -> None:
    with watch(receiver_only) as w:
        body = body_of(fresh(source))
        headers = w.headers(source, body)
        valid = headers[HEADER[source]]
        wrong = w.headers(source, body, secret=WRONG_SECRET)[HEADER[source]]
        for value in (f"{valid},{valid}", f"{wrong},{valid}", f"{valid} {wrong}", f"{valid}, {wrong}"):
            assert _invalid(w.post(source, body, {**headers, HEADER[source]: value})) == (
                "signature header must hold exactly one value")
        # the header sent twice (two lines): the server joins them, so it is several values, never the last one
        for pair in ((wrong, valid), (valid, wrong)):
            assert _post_raw(receiver_only["url"], source, body, headers, HEADER[source], pair) == 401


def _post_raw(url: str, source: str, body: bytes, headers: dict[str, str], repeated: str,
              values: tuple[str, str]) -> int:
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    conn.putrequest("POST", f"/webhooks/{source}")
    for name, value in headers.items():
        if name != repeated:
            conn.putheader(name, value)
    for value in values:
        conn.putheader(repeated, value)
    conn.putheader("Content-Length", str(len(body)))
    conn.endheaders(body)
    status = conn.getresponse().status
    conn.close()
    return status


@pytest.mark.parametrize("source", SW_SOURCES)
def test_standard_webhooks_signature_lists(receiver_only: dict, source: str) -> None:
    """The spec allows several space-separated ``v1,<base64>`` entries (one per active secret): one valid entry
    is enough; none valid, another version, or a valid one under another version, is 401."""
    with watch(receiver_only) as w:
        body = body_of(fresh(source))
        headers = w.headers(source, body)
        valid = headers["webhook-signature"]
        wrong = w.headers(source, body, secret=WRONG_SECRET, msg_id=headers["webhook-id"],
                          timestamp=int(headers["webhook-timestamp"]))["webhook-signature"]
        for value in (f"{wrong} {wrong}", f"v2,{valid[3:]}", f"v1a,{valid[3:]}", "v1,", "v1", "", f"{valid[3:]}"):
            w.expect(source, body, {401}, {**headers, "webhook-signature": value})
        w.expect(source, body, {202}, {**headers, "webhook-signature": f"{wrong} v2,xyz {valid}"})


@pytest.mark.parametrize("source", SW_SOURCES)
def test_replay_is_duplicate_then_401_once_outside_the_tolerance(receiver_only: dict, source: str) -> None:
    env = {**receiver_only["env"]}
    config = load_config(load_settings(env).config_dir)  # a fresh copy: safe to change
    config.sources[source]["signature"]["tolerance_s"] = 1
    with ReceiverServer(env, config) as server, watch({**receiver_only, "url": server.url}) as w:
        body = body_of(fresh(source))
        captured = w.headers(source, body)
        first = w.expect(source, body, {202}, captured)
        answers: list[int] = []

        def replayed_outside() -> bool:
            r = w.post(source, body, captured)
            answers.append(r.status_code)
            if r.status_code == 200:
                assert r.json() == {"status": "duplicate", "event_id": first.json()["event_id"]}
            return r.status_code == 401

        wait_for(replayed_outside, 5, 0.2, "the replay to fall outside the 1 s tolerance")
        assert set(answers[:-1]) <= {200} and answers[-1] == 401, answers
        assert time.time() - int(captured["webhook-timestamp"]) > 1
        # a capture that is already old when first seen is 401, never accepted
        old = body_of(fresh(source))
        assert _invalid(w.post(source, old, w.headers(source, old, timestamp=int(time.time()) - 3))) == (
            "webhook-timestamp outside the tolerance")


@pytest.mark.parametrize("source", SOURCES)
def test_reused_message_id_with_another_body_is_a_duplicate(receiver_only: dict, source: str) -> None:
    """``webhook-id`` (Standard Webhooks) and ``X-Request-Id`` (HMAC sources) name a delivery: a second body
    under a used name, signed properly, is answered 200 duplicate with the first event and not enqueued."""
    with watch(receiver_only) as w:
        rid = uuid.uuid4().hex
        first_body, second_body = body_of(fresh(source)), body_of(fresh(source))
        first = w.expect(source, first_body, {202}, w.headers(source, first_body, request_id=rid, msg_id=rid))
        for body in (first_body, second_body):
            again = w.expect(source, body, {200}, w.headers(source, body, request_id=rid, msg_id=rid))
            assert again.json() == {"status": "duplicate", "event_id": first.json()["event_id"]}


@pytest.mark.parametrize("source", ["genesys", "iot"])
def test_rotation_old_secret_accepted_during_overlap_then_rejected(receiver_only: dict, source: str) -> None:
    name = SECRET_ENV[source]
    old = SECRET[source]
    new = "genesys-rotated-secret-2" if source == "genesys" else "whsec_cm90YXRlZC1pb3Qtc2VjcmV0LTI="
    overlap = {**receiver_only["env"], name: f"{new},{old}"}
    after = {**receiver_only["env"], name: new}
    with ReceiverServer(overlap) as server, watch({**receiver_only, "url": server.url}) as w:
        for secret in (old, new):
            body = body_of(fresh(source))
            w.expect(source, body, {202}, w.headers(source, body, secret=secret))
    with ReceiverServer(after) as server, watch({**receiver_only, "url": server.url}) as w:
        body = body_of(fresh(source))
        _invalid(w.post(source, body, w.headers(source, body, secret=old)))
        w.expect(source, body, {202}, w.headers(source, body, secret=new))


@pytest.mark.parametrize("value", [None, "", " , "])
def test_no_secret_configured_fails_closed(receiver_only: dict, value: str | None) -> None:
    env = {k: v for k, v in receiver_only["env"].items() if k != "SWITCHBOARD_SECRET_GENESYS"}
    if value is not None:
        env["SWITCHBOARD_SECRET_GENESYS"] = value
    with ReceiverServer(env) as server, watch({**receiver_only, "url": server.url}) as w:
        body = body_of(fresh("genesys"))
        for secret in ("", " ", SECRET["genesys"]):
            headers = {"Content-Type": "application/json", "X-Genesys-Signature": sign_hmac(body, secret)}
            assert _invalid(w.post("genesys", body, headers)) == "no secret configured for this source"
