"""Helpers of the bad-input and forgery tests: a valid payload per source (fresh idempotency material each
time), signing, and ``Watch``, which posts to a receiver whose broker nobody consumes and proves that exactly
the 202s were enqueued: the ingest queue's depth and the ledger's ``accepted`` counter move by the number of
202s and by nothing else (so a rejected request never reaches a worker)."""

from __future__ import annotations

import base64
import copy
import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import requests
from celery import Celery

from switchboard.broker import queue_depths
from switchboard.sender import signed_headers
from switchboard.stages import StageContext
from switchboard.stages.normalize import normalize
from tests.helpers import ROOT, SECRETS
from tests.posting import SECRET_ENV, sample, unique_iot, unique_ztp

SOURCES = ("genesys", "cxone", "ztp", "iot", "generic")
SECRET = {source: SECRETS[SECRET_ENV[source]].split(",")[0] for source in SOURCES}
# valid as an HMAC key and as a Standard Webhooks key (whsec_ + base64), and the secret of no source
WRONG_SECRET = "whsec_" + base64.b64encode(b"not the secret of any source").decode()
GENERIC_EXAMPLE = json.loads((ROOT / "config" / "examples" / "generic-alert.json").read_text())


def fresh(source: str) -> dict[str, Any]:
    """A schema-valid payload of ``source`` whose payload idempotency keys (if any) were never used."""
    tag = uuid.uuid4().hex[:12]
    if source == "genesys":
        payload = sample("genesys-trunk-down.json")
        payload["event"]["trunkId"] = f"trunk-{tag}"
        return payload
    if source == "cxone":
        payload = sample("cxone-trunk-health.json")
        payload["data"]["trunkId"] = f"cx-trunk-{tag}"
        return payload
    if source == "ztp":
        return unique_ztp()
    if source == "iot":
        return unique_iot()
    payload = copy.deepcopy(GENERIC_EXAMPLE)
    payload["alert"]["id"] = f"a-{tag}"
    return payload


def body_of(payload: Any) -> bytes:
    return json.dumps(payload).encode()


def ingest_depth(broker_url: str) -> int:
    return queue_depths(Celery(broker=broker_url, set_as_current=False), ["ingest"])["ingest"]


class Watch:
    """Posts to ``ctx`` (a ``receiver_only`` fixture: nobody consumes its broker) and counts the 202s."""

    def __init__(self, ctx: dict) -> None:
        self.ctx = ctx
        self.url = ctx["url"]
        self.state = ctx["server"].state
        self.sources = self.state.config.sources
        self.http = requests.Session()
        self.accepted = 0
        self.answers: dict[int, int] = {}

    def ledger_accepted(self) -> int:
        return self.state.ledger.counts()["accepted"]

    def headers(self, source: str, body: bytes, secret: str | None = None, **kwargs: Any) -> dict[str, str]:
        rid = uuid.uuid4().hex
        kwargs.setdefault("request_id", rid)
        kwargs.setdefault("msg_id", f"msg_{rid}")
        return signed_headers(self.sources[source], body, secret or SECRET[source], **kwargs)

    def post(self, source: str, body: bytes, headers: dict[str, str] | None = None, *,
             url: str | None = None) -> requests.Response:
        """Post ``body`` signed properly (or with ``headers`` as given); check the ledger agrees with the answer."""
        before = self.ledger_accepted()
        sent = self.headers(source, body) if headers is None else headers
        r = self.http.post(f"{url or self.url}/webhooks/{source}", data=body, headers=sent, timeout=30)
        self.answers[r.status_code] = self.answers.get(r.status_code, 0) + 1
        if r.status_code == 202:
            self.accepted += 1
            # what was accepted must be something the worker's first stage can take
            envelope = {"event_id": r.json()["event_id"], "source": source, "received_at": 0.0,
                        "payload": json.loads(body)}
            normalize(envelope, StageContext(config=self.state.config))
        else:
            assert self.ledger_accepted() == before, (r.status_code, r.text[:300])
        return r

    def expect(self, source: str, body: bytes, codes: set[int], headers: dict[str, str] | None = None,
               **kwargs: Any) -> requests.Response:
        r = self.post(source, body, headers, **kwargs)
        assert r.status_code in codes, (source, r.status_code, r.text[:300], body[:300])
        assert r.status_code < 500
        return r


@contextmanager
def watch(ctx: dict) -> Iterator[Watch]:
    """A ``Watch`` whose exit checks the broker: the ingest queue and ``accepted`` grew by the 202s only."""
    w = Watch(ctx)
    broker = ctx["env"]["SWITCHBOARD_BROKER_URL"]
    depth, accepted = ingest_depth(broker), w.ledger_accepted()
    yield w
    assert ingest_depth(broker) - depth == w.accepted, w.answers
    assert w.ledger_accepted() - accepted == w.accepted, w.answers
