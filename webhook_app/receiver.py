"""``POST /webhooks/<source>``: size (408 when the body is too slow to arrive) -> content type -> signature ->
rate -> JSON -> schema -> idempotency -> publish (confirmed) -> 202. Answers exactly per DESIGN.md's table;
nothing rejected is enqueued, and a failed publish releases the idempotency keys so the sender's retry is
accepted (or, if the store is down too, publishes the event later: webhook_app/late_publish.py, which also
resolves an admission the store's outage left unknown). When the broker is the state store's Redis database,
the gate's script pushes the ingest message itself (tasks/redis_push.py): accept and enqueue are one step.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import redis
from celery import Celery, Signature
from flask import Blueprint, Response, current_app, jsonify, request
from kombu.exceptions import OperationalError

from switchboard.admission import Gate, PushEntry
from switchboard.config import Config
from switchboard.config_watch import Watcher
from switchboard.idempotency import IdempotencyKey, IdempotencyStore
from switchboard.ingress_limit import DepthGuard
from switchboard.ledger import Ledger
from switchboard.metrics import IDEMPOTENCY, WEBHOOKS
from switchboard.rate_limit import RateLimiter
from switchboard.settings import Settings
from switchboard.store import Keys
from tasks.kept_publisher import KeptPublisher
from tasks.pipeline import ingest_signature
from tasks.redis_push import RedisPushBuilder
from webhook_app.late_publish import LatePublisher
from webhook_app.request_checks import Rejection, idempotency_keys, parse_json, verify_signature
from webhook_app.schemas import validate_payload

log = logging.getLogger("switchboard.receiver")
receiver_bp = Blueprint("receiver", __name__)


@dataclass
class ReceiverState:
    settings: Settings
    config: Config
    redis: redis.Redis
    keys: Keys
    idempotency: IdempotencyStore
    ledger: Ledger
    celery: Celery
    rate_limiter: RateLimiter
    depth_guard: DepthGuard
    gate: Gate  # ingress rate + idempotency claim + ledger record, one round trip (switchboard.admission)
    publisher: KeptPublisher  # the ingest queue's producers, kept between requests
    late: LatePublisher  # accepted events neither enqueued nor released: published when the broker is back
    # Set when the broker is the state store's Redis database: the gate's script pushes the ingest message itself
    # (tasks/redis_push.py) when it is one task (the fused grain); a chain is published after the gate.
    push_builder: RedisPushBuilder | None
    # Follows config changes: webhook_app.app rebuilds this state (and what it built from config values)
    # before a request when the watcher swapped the config. None: a config given to create_app, fixed.
    config_watch: Watcher | None = None


def _answer(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    response = jsonify(body)
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _read_body(limit: int) -> bytes:
    if request.content_length is not None and request.content_length > limit:
        raise Rejection(413, {"error": "body too large", "limit_bytes": limit})
    try:
        body = request.stream.read(limit + 1)
    except TimeoutError as exc:  # under gunicorn: service.read_timeout_s passed (webhook_app/gunicorn_worker.py)
        raise Rejection(408, {"error": "request body not received in time"}) from exc
    if len(body) > limit:
        raise Rejection(413, {"error": "body too large", "limit_bytes": limit})
    return body


def _unavailable(state: ReceiverState, what: str) -> Rejection:
    retry_after = str(state.config.service["retry_after_s"])
    return Rejection(503, {"error": f"{what} unavailable, retry later"}, {"Retry-After": retry_after})


@receiver_bp.post("/webhooks/<source>")
def receive(source: str) -> Response:
    state: ReceiverState = current_app.extensions["switchboard"]
    try:
        response = _receive(state, source)
    except Rejection as rejection:
        log.info("rejected webhook source=%s status=%s reason=%s", source, rejection.status,
                 rejection.body.get("error"))
        response = _answer(rejection.status, rejection.body, rejection.headers)
    # an unknown source is one label, not one per path someone tried
    WEBHOOKS.labels(source if source in state.config.sources else "unknown", str(response.status_code)).inc()
    return response


def _receive(state: ReceiverState, source: str) -> Response:
    source_cfg = state.config.sources.get(source)
    if source_cfg is None:
        raise Rejection(404, {"error": "unknown source", "sources": sorted(state.config.sources)})
    body = _read_body(source_cfg["max_body_bytes"])
    if request.mimetype != "application/json":
        raise Rejection(415, {"error": "Content-Type must be application/json"})
    headers = request.headers  # looked up case-insensitively, as the checks need: no per-request copy
    now = time.time()
    webhook_id = verify_signature(source_cfg, body, headers, state.settings.secrets(source_cfg["secrets_env"]), now)
    # The body is parsed and validated before the gate (pure CPU) but answered after the rate verdict, so the
    # answers keep their order while rate, idempotency claim and ledger record take one round trip.
    invalid: Rejection | None = None
    payload: Any = None
    try:
        payload = parse_json(body)
        errors = validate_payload(source, payload, source_cfg)
        if errors:
            invalid = Rejection(422, {"error": "payload does not match the schema", "fields": errors})
    except Rejection as rejection:
        invalid = rejection
    over = state.depth_guard.over()
    event_id = uuid.uuid4().hex
    keys = [] if invalid is not None else idempotency_keys(source, source_cfg, state.keys, body, headers, payload,
                                                           webhook_id)
    admit = invalid is None and not over
    # built once: pushed by the gate's script, or published after it (now, or later by the late publisher)
    message = _ingest_message(state, source, event_id, payload, now) if admit else None
    push = _push_entry(state, source, message) if message is not None and state.push_builder is not None else None
    try:
        rate = source_cfg["ingress_rate"]
        verdict = state.gate.check(source, rate["limit"], rate["per_seconds"], admit=admit, event_id=event_id,
                                   received_at=now, idempotency=keys, body=body, push=push)
    except redis.RedisError as exc:
        # With ``push`` the script either ran whole (accepted and in the ingest queue) or not at all: nothing to hold.
        if message is not None and push is None:
            # The script may have run and only its reply been lost: if so the event is accepted and the
            # sender's retry will be told "duplicate" of it, so it is published once the store shows that.
            state.late.add_uncertain(event_id, _enqueuer(state, message), lambda: state.ledger.accepted(event_id))
        raise _unavailable(state, "state store") from exc
    if verdict.kind == "limited":
        raise Rejection(429, {"error": "source over its ingress rate"}, {"Retry-After": str(verdict.retry_after_s)})
    if over:
        raise Rejection(503, {"error": "ingest backlog over its bound, retry later"},
                        {"Retry-After": str(state.config.service["retry_after_s"])})
    if invalid is not None:
        raise invalid
    IDEMPOTENCY.labels(source, "hit" if verdict.kind == "duplicate" else "miss").inc()
    if verdict.kind == "duplicate":
        return _answer(200, {"status": "duplicate", "event_id": verdict.earlier})
    if push is None:
        assert message is not None  # admitted: valid and not over the backlog bound
        _publish(state, source, keys, event_id, message)
    log.info("accepted webhook source=%s event_id=%s", source, event_id)
    return _answer(202, {"status": "accepted", "event_id": event_id})


# A publish (socket write, then RabbitMQ's publisher confirm) that takes longer than this is given up and the
# sender told 503: without it, a broker that stops mid-publish held the request past the sender's timeout
# (tests/reliability/test_faults_rabbitmq.py: a 10 s hang during a node restart).
PUBLISH_TIMEOUT_S = 2.0


class IngestMessage(NamedTuple):
    """This event's ingest task: its signature, message headers and argsrepr."""
    signature: Signature
    headers: dict[str, str]
    argsrepr: str


def _ingest_message(state: ReceiverState, source: str, event_id: str, payload: dict[str, Any],
                    now: float) -> IngestMessage:
    envelope = {"event_id": event_id, "source": source, "received_at": now, "payload": payload}
    signature = ingest_signature(state.celery, envelope, state.config.service["pipeline_grain"])
    # argsrepr: what Flower shows as the task's arguments; Celery would repr the whole envelope per
    # publish (bench/profile.py: ~4% of a request), and the event id is what operators search for
    return IngestMessage(signature, {"event_id": event_id}, repr(({"event_id": event_id, "source": source},)))


def _enqueuer(state: ReceiverState, message: IngestMessage) -> Callable[[], None]:
    """The publish of this event's ingest message, to call now or (webhook_app/late_publish.py) later."""
    def enqueue() -> None:
        state.publisher.publish(message.signature, headers=message.headers, argsrepr=message.argsrepr,
                                timeout_s=PUBLISH_TIMEOUT_S, retry=False)  # a 503 now, not a held request

    return enqueue


def _push_entry(state: ReceiverState, source: str, message: IngestMessage) -> PushEntry | None:
    """The ingest message as the gate's script will push it; None for the per-stage grain's chain, which is
    published after the gate as on any broker. Its first build on a connection declares the queue on Redis: a
    store that is away is a 503, before anything is claimed."""
    assert state.push_builder is not None
    if message.signature.subtask_type:
        return None
    try:
        return state.push_builder.build(message.signature, headers=message.headers, argsrepr=message.argsrepr)
    except (redis.RedisError, OSError, OperationalError) as exc:  # kombu wraps a failed connect in its own error
        log.warning("could not prepare the ingest message for source=%s: %s", source, type(exc).__name__)
        raise _unavailable(state, "state store") from exc


def _publish(state: ReceiverState, source: str, keys: list[IdempotencyKey], event_id: str,
             message: IngestMessage) -> None:
    """Publish an accepted event's ingest message; if the broker does not take it, un-accept it and raise 503."""
    enqueue = _enqueuer(state, message)
    try:
        enqueue()
    except Exception as exc:  # noqa: BLE001 - any publish failure: un-accept, answer 503, lose nothing
        log.warning("publish failed for source=%s: %s", source, type(exc).__name__)
        # A failed publish may still have reached the broker (its confirm lost with the connection, or late):
        # the event is un-accepted only if no worker took it yet, and a worker never takes an un-accepted one
        # (Ledger.take), so a 503 means it will not run and a 202 that it will.
        try:
            unaccepted = state.ledger.unaccept(event_id, [k.key for k in keys])
        except redis.RedisError:
            # Still claimed and accepted: the sender's retry will be told "duplicate" of this event, so it
            # must reach the broker after all (webhook_app/late_publish.py).
            state.late.add(event_id, enqueue)
            raise _unavailable(state, "broker") from exc
        if unaccepted:
            raise _unavailable(state, "broker") from exc
        log.warning("event %s: its publish was reported failed but a worker already took it: accepted", event_id)
