"""The ingress floor: the least a receiver with the issue's four duties can do per webhook, served by the same
gunicorn settings as the receiver and bare Flask (``gunicorn 'bench.floor_app:create_app()'``).

Why: the ingress target compares the receiver with a bare Flask 202 on the same 2 cores, where the load
generator and the broker share the CPU. This app shows what ratio the duties the target names (signed,
validated, deduplicated, published) leave at their cheapest, so a run tells the cost of those duties apart from
the cost of how the receiver does them. Per webhook it checks the HMAC header, parses the JSON (orjson: no
schema), and claims an idempotency key and enqueues the payload: on a Redis broker in one script (SET NX, then
LPUSH onto a list of its own), on RabbitMQ a SET NX on the state store and then a persistent publish with a
publisher confirm (kombu), to a queue of its own. It does not build a Celery message (no worker could take
what it enqueues), validate a schema, apply an ingress rate, record a ledger entry with the body, log, count
metrics or release a claim whose publish failed: the receiver's other work, whose cost is the gap between this
app's ratio and the receiver's.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from types import SimpleNamespace

import orjson
import redis
from flask import Flask, Response, jsonify, request
from kombu import Connection, Exchange, Queue

from switchboard.config import load_config
from switchboard.settings import load_settings

QUEUE = "bench.floor"  # not one of ours: the pipeline's phases never see what this app enqueues
_CLAIM_AND_PUSH = """
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[3]) then return 0 end
redis.call('LPUSH', KEYS[2], ARGV[2])
return 1
"""


def create_app() -> Flask:
    """The app, for ``gunicorn 'bench.floor_app:create_app()'`` (its settings from the environment)."""
    settings = load_settings()
    config = load_config(settings.config_dir)
    app = Flask("floor")
    # The Procfile's worker class reads service.read_timeout_s from here, as for bench.bare_app.
    app.extensions["switchboard"] = SimpleNamespace(config=config)
    source_cfg = config.sources["genesys"]  # the bench's webhooks: Genesys trunk-down events
    secret = settings.secrets(source_cfg["secrets_env"])[0].encode()
    header, window_s = source_cfg["signature"]["header"], source_cfg["idempotency"]["window_s"]
    idem_prefix = idempotency_prefix(settings.key_prefix)
    store = _store(settings.broker_url, settings.redis_url)
    claim_and_push = store.register_script(_CLAIM_AND_PUSH)
    producer = None
    if not _on_redis(settings.broker_url):
        producer = Connection(settings.broker_url, transport_options={"confirm_publish": True}).Producer()
        # classic queue version 2, as the bench's policy sets for our queues (its pattern names only those);
        # declared once here, not per publish
        queue = Queue(QUEUE, Exchange(QUEUE, type="direct"), routing_key=QUEUE, durable=True,
                      queue_arguments={"x-queue-version": 2})
        producer.maybe_declare(queue)

    @app.post("/webhooks/<source>")
    def receive(source: str) -> Response:
        body = request.get_data()
        expected = hmac.new(secret, body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, request.headers.get(header, "")):
            return _answer(401, {"error": "invalid signature"})
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            return _answer(400, {"error": "body is not valid JSON"})
        event_id = uuid.uuid4().hex
        key = f"{idem_prefix}{request.headers.get('X-Request-Id') or hashlib.sha256(body).hexdigest()}"
        message = orjson.dumps({"event_id": event_id, "source": source, "payload": payload})
        if producer is None:
            claimed = claim_and_push(keys=[key, QUEUE], args=[event_id, message, window_s])
        else:
            claimed = store.set(key, event_id, nx=True, ex=window_s)
            if claimed:
                producer.publish(message, content_type="application/json", content_encoding="utf-8",
                                 exchange=QUEUE, routing_key=QUEUE, delivery_mode=2)
        if not claimed:
            return _answer(200, {"status": "duplicate"})
        return _answer(202, {"status": "accepted", "event_id": event_id})

    return app


def _answer(status: int, body: dict[str, str]) -> Response:
    response = jsonify(body)
    response.status_code = status
    return response


def idempotency_prefix(key_prefix: str) -> str:
    return f"{key_prefix}floor:idem:"


def clean_up(broker_url: str, redis_url: str, key_prefix: str) -> None:
    """Remove what this app left: its list or its queue and exchange, and its idempotency keys."""
    if _on_redis(broker_url):
        redis.Redis.from_url(broker_url).delete(QUEUE)
    else:
        with Connection(broker_url) as conn:
            channel = conn.default_channel
            channel.queue_delete(QUEUE)
            channel.exchange_delete(QUEUE)
    store = _store(broker_url, redis_url)
    keys = list(store.scan_iter(match=idempotency_prefix(key_prefix) + "*", count=1000))
    if keys:
        store.delete(*keys)


def _on_redis(broker_url: str) -> bool:
    return broker_url.startswith("redis")


def _store(broker_url: str, redis_url: str) -> redis.Redis:
    """Where the idempotency keys live: the broker's Redis (one script claims and pushes), else the store."""
    return redis.Redis.from_url(broker_url if _on_redis(broker_url) else redis_url)
