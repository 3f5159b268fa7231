"""Flask application factory: wires settings, config, Redis and the Celery publisher into the routes."""

from __future__ import annotations

from flask import Flask

from switchboard.broker import queue_depths
from switchboard.config import Config, load_config
from switchboard.idempotency import IdempotencyStore
from switchboard.ingress_limit import DepthGuard
from switchboard.ledger import Ledger
from switchboard.rate_limit import RateLimiter
from switchboard.settings import Settings, load_settings
from switchboard.store import Keys, redis_client
from tasks.app import INGEST_QUEUE, make_celery
from webhook_app.health import health_bp
from webhook_app.openapi import openapi_bp
from webhook_app.payloads import payloads_bp
from webhook_app.receiver import ReceiverState, receiver_bp


def create_app(settings: Settings | None = None, config: Config | None = None) -> Flask:
    settings = settings or load_settings()
    config = config or load_config(settings.config_dir)
    client = redis_client(settings.redis_url)
    keys = Keys(settings.key_prefix)
    app = Flask("switchboard")
    celery = make_celery(settings)
    app.extensions["switchboard"] = ReceiverState(
        settings=settings,
        config=config,
        redis=client,
        keys=keys,
        idempotency=IdempotencyStore(client),
        ledger=Ledger(client, keys, config.service["ledger_ttl_s"]),
        celery=celery,
        rate_limiter=RateLimiter(client, settings.key_prefix),
        depth_guard=DepthGuard(lambda: queue_depths(celery, [INGEST_QUEUE])[INGEST_QUEUE],
                               config.service["ingest_max_depth"], config.service["depth_check_every_s"]),
    )
    app.register_blueprint(receiver_bp)
    app.register_blueprint(health_bp)
    app.register_blueprint(payloads_bp)
    app.register_blueprint(openapi_bp)
    return app
