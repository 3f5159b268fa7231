"""A small load generator for the fault scenarios: signed webhooks with unique entities, posted from a few
threads at a steady pace to a receiver on loopback, bounded in count and in time.

Each logical event is one body with one request id (so one idempotency key). Like a real platform, a
503 is retried with the same body and id after a short wait (``Retry-After`` capped, to keep the suite
short); 202 and 200 end the event. Every HTTP answer is recorded with its latency, so a scenario can
check that the receiver only ever said 202, 200 or 503 and never went past its timeout.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

import requests

from switchboard.config import Config
from switchboard.sender import post_signed
from tests.helpers import SECRETS
from tests.posting import SECRET_ENV, sample, unique_ztp

ALLOWED = {200, 202, 503}
# What each kind of event becomes: a PagerDuty trigger (critical queue) or a Genesys work item (default).
KINDS = {"pd": ("genesys", "pagerduty"), "wi": ("ztp", "genesys_workitem")}


@dataclass
class Answer:
    """One HTTP exchange: status None means no answer (connection error or our client timeout)."""

    status: int | None
    latency_s: float
    at: float
    error: str = ""


@dataclass
class Event:
    key: str      # the unique entity this event is about (a trunk id, a ZTP event id)
    kind: str     # "pd" or "wi"
    source: str
    target: str
    body: bytes
    request_id: str
    answers: list[Answer] = field(default_factory=list)
    event_id: str | None = None

    @property
    def final(self) -> int | None:
        return self.answers[-1].status if self.answers else None


Mutate = Callable[[str, int, dict[str, Any]], None]  # (kind, n, payload): change a payload before it is sent


def make_event(kind: str, n: int, tag: str, mutate: Mutate | None = None) -> Event:
    source, target = KINDS[kind]
    if kind == "pd":
        # A trunk of its own per event: the PagerDuty dedup_key (the alert_key) is then unique too.
        key = f"trunk-{tag}-{n}"
        payload: dict[str, Any] = sample("genesys-trunk-down.json")
        payload["event"] = {**payload["event"], "trunkId": key}
    else:
        payload = unique_ztp()
        key = payload["ztp_event_id"]
    if mutate is not None:
        mutate(kind, n, payload)
    return Event(key, kind, source, target, json.dumps(payload).encode(), uuid.uuid4().hex)


class LoadGenerator:
    """``rate`` events per second (over all threads) until ``max_events`` were started or ``max_duration_s``
    passed; each event retried on 503 until ``retry_deadline_s`` after the load ends."""

    def __init__(self, url: str, config: Config, *, rate: float = 20.0, max_events: int = 200,
                 max_duration_s: float = 10.0, threads: int = 4, kinds: tuple[str, ...] = ("pd", "wi"),
                 timeout_s: float = 10.0, retry_deadline_s: float = 30.0, retry_wait_cap_s: float = 0.5,
                 mutate: Mutate | None = None) -> None:
        host = urlparse(url).hostname
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError(f"the load generator only posts to loopback, not {host}")
        self.url, self.config = url, config
        self.rate, self.max_events, self.max_duration_s = rate, max_events, max_duration_s
        self.threads, self.kinds, self.timeout_s = threads, kinds, timeout_s
        self.retry_deadline_s, self.retry_wait_cap_s = retry_deadline_s, retry_wait_cap_s
        self.mutate = mutate
        self.tag = uuid.uuid4().hex[:8]
        self.events: list[Event] = []
        self._lock = threading.Lock()
        self._counter = itertools.count()
        self._workers: list[threading.Thread] = []
        self.started_at = 0.0
        self.ended_at = 0.0

    def start(self) -> LoadGenerator:
        self.started_at = time.monotonic()
        self._workers = [threading.Thread(target=self._run, daemon=True, name=f"load-{i}") for i in range(self.threads)]
        for worker in self._workers:
            worker.start()
        return self

    def join(self) -> LoadGenerator:
        limit = self.max_duration_s + self.retry_deadline_s + self.timeout_s + 10
        for worker in self._workers:
            worker.join(timeout=limit)
            assert not worker.is_alive(), "load generator thread did not end within its bound"
        self.ended_at = time.monotonic()
        return self

    def run(self) -> LoadGenerator:
        return self.start().join()

    def _next(self) -> Event | None:
        """The next event when its turn in the steady pace comes, None once the load is over."""
        n = next(self._counter)
        due = self.started_at + n / self.rate
        if n >= self.max_events or due - self.started_at > self.max_duration_s:
            return None
        time.sleep(max(0.0, due - time.monotonic()))
        event = make_event(self.kinds[n % len(self.kinds)], n, self.tag, self.mutate)
        with self._lock:
            self.events.append(event)
        return event

    def _run(self) -> None:
        session = requests.Session()
        while (event := self._next()) is not None:
            self._deliver(session, event)

    def _deliver(self, session: requests.Session, event: Event) -> None:
        source_cfg = self.config.sources[event.source]
        secret = SECRETS[SECRET_ENV[event.source]].split(",")[0]
        deadline = self.started_at + self.max_duration_s + self.retry_deadline_s
        while True:
            began = time.monotonic()
            try:
                r = post_signed(self.url, event.source, source_cfg, event.body, secret, timeout=self.timeout_s,
                                request_id=event.request_id, msg_id=f"msg_{event.request_id}")
                event.answers.append(Answer(r.status_code, time.monotonic() - began, began))
            except requests.RequestException as exc:
                event.answers.append(Answer(None, time.monotonic() - began, began, type(exc).__name__))
                r = None
            if r is not None and r.status_code in (200, 202):
                event.event_id = r.json()["event_id"]
                return
            if time.monotonic() > deadline:
                return
            wait = float((r.headers.get("Retry-After") if r is not None else None) or 0.2)
            time.sleep(min(wait, self.retry_wait_cap_s))

    # --- what happened ------------------------------------------------------------------------------

    def answers(self) -> list[Answer]:
        return [a for e in self.events for a in e.answers]

    def statuses(self) -> Counter:
        return Counter(a.status for a in self.answers())

    def accepted(self) -> list[Event]:
        """Events the receiver took (202), or said it already had (200 after a 503: it must have it too)."""
        return [e for e in self.events if e.final in (200, 202)]

    def max_latency_s(self) -> float:
        return max((a.latency_s for a in self.answers()), default=0.0)

    def summary(self) -> dict[str, Any]:
        return {"events": len(self.events), "answers": dict(sorted(self.statuses().items(), key=str)),
                "accepted_202": sum(1 for e in self.events if e.final == 202),
                "duplicate_200": sum(1 for e in self.events if e.final == 200),
                "max_latency_s": round(self.max_latency_s(), 3),
                "duration_s": round((self.ended_at or time.monotonic()) - self.started_at, 2)}

    def dropped(self) -> list[Answer]:
        """Requests whose connection was closed without an answer (not a timeout: those are never allowed)."""
        return [a for a in self.answers() if a.status is None and a.error == "ConnectionError"]

    def assert_only_allowed_answers(self, dropped_allowed: int = 0) -> None:
        """202/200/503 only: no 500, no other status, and no request without an answer within its timeout.
        ``dropped_allowed``: connections a killed receiver process had open (they end unanswered)."""
        dropped = self.dropped()
        assert len(dropped) <= dropped_allowed, f"{len(dropped)} requests dropped without an answer"
        bad = [(e.key, a) for e in self.events for a in e.answers if a.status not in ALLOWED and a not in dropped]
        assert not bad, f"answers outside 202/200/503: {bad[:5]} ({len(bad)} in all)"
        unfinished = [e.key for e in self.events if e.final not in (200, 202)]
        assert not unfinished, f"events never accepted before the retry deadline: {unfinished[:5]}"
