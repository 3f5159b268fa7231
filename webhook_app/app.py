"""Flask application factory: wires settings, config, Redis and the Celery publisher into the routes.

Without an explicit config the app follows its config directory (``switchboard.config_watch``): before
each request, if the config was reloaded, the state's config-dependent pieces are rebuilt. Under gunicorn
``webhook_app.wsgi`` also starts the watcher's ticker, so an idle worker reloads and reports too.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from celery import Celery
from flask import Flask

from switchboard.admission import Gate
from switchboard.broker import queue_depths, same_redis_database
from switchboard.config import Config
from switchboard.config_watch import Watcher
from switchboard.idempotency import IdempotencyStore
from switchboard.ingress_limit import DepthGuard
from switchboard.ledger import Ledger
from switchboard.rate_limit import RateLimiter
from switchboard.settings import Settings, load_settings
from switchboard.store import Keys, redis_client
from tasks.app import INGEST_QUEUE, make_celery
from tasks.kept_publisher import KeptPublisher
from tasks.redis_push import RedisPushBuilder
from webhook_app.health import health_bp
from webhook_app.late_publish import LatePublisher
from webhook_app.openapi import EXTENSION as OPENAPI
from webhook_app.openapi import build_spec, openapi_bp
from webhook_app.payloads import payloads_bp
from webhook_app.receiver import ReceiverState, receiver_bp

log = logging.getLogger("switchboard.receiver")


def create_app(settings: Settings | None = None, config: Config | None = None) -> Flask:
    settings = settings or load_settings()
    client = redis_client(settings.redis_url)
    watch = None
    if config is None:
        watch = Watcher(settings, client, role="receiver")
        config = watch.current()
    keys = Keys(settings.key_prefix)
    app = Flask("switchboard")
    celery = make_celery(settings)
    # One connection attempt per publish or depth check: kombu otherwise retries connecting to a broker that
    # is away for as long as it is away (Connection.default_channel, no retry limit), holding the request past
    # the sender's timeout (tests/reliability/test_faults_rabbitmq.py: 10 s during a node restart). The
    # receiver answers 503 and the sender retries instead.
    celery.conf.broker_transport_options = {**celery.conf.broker_transport_options, "max_retries": 0}
    app.extensions["switchboard"] = ReceiverState(
        settings=settings,
        config=config,
        redis=client,
        keys=keys,
        idempotency=IdempotencyStore(client),
        ledger=Ledger(client, keys, config.service["ledger_ttl_s"]),
        celery=celery,
        rate_limiter=RateLimiter(client, settings.key_prefix),
        depth_guard=_depth_guard(celery, config),
        gate=Gate(client, keys, settings.key_prefix, config.service["ledger_ttl_s"]),
        publisher=KeptPublisher(celery, [INGEST_QUEUE]),
        late=LatePublisher(),
        push_builder=_push_builder(settings, celery),
        config_watch=watch,
    )
    app.before_request(lambda: _follow_config(app))
    app.register_blueprint(receiver_bp)
    app.register_blueprint(health_bp)
    app.register_blueprint(payloads_bp)
    app.register_blueprint(openapi_bp)
    return app


def _push_builder(settings: Settings, celery: Celery) -> RedisPushBuilder | None:
    if not same_redis_database(settings.broker_url, settings.redis_url):
        return None
    log.info("broker and state store are one Redis database: the receiver's gate pushes ingest messages itself")
    return RedisPushBuilder(celery, [INGEST_QUEUE])


def _depth_guard(celery: Celery, config: Config) -> DepthGuard:
    return DepthGuard(lambda: queue_depths(celery, [INGEST_QUEUE], connect_retries=0)[INGEST_QUEUE],
                      config.service["ingest_max_depth"], config.service["depth_check_every_s"])


def _follow_config(app: Flask) -> None:
    """If the watcher swapped the config, rebuild what was built from config values (Redis, Celery kept).
    A request reads the state once, so it runs on one config from start to end."""
    state = app.extensions["switchboard"]
    if state.config_watch is None:
        return
    config = state.config_watch.current()
    if config is state.config:
        return
    app.extensions["switchboard"] = replace(state, config=config,
                                            ledger=Ledger(state.redis, state.keys, config.service["ledger_ttl_s"]),
                                            depth_guard=_depth_guard(state.celery, config),
                                            gate=Gate(state.redis, state.keys, state.settings.key_prefix,
                                                      config.service["ledger_ttl_s"]))
    app.extensions[OPENAPI] = build_spec(config)
