"""The Celery application: broker from the environment, settings chosen for safety (DESIGN.md).

acks_late + reject_on_worker_lost (a crash redelivers, bounded by task_retry_on_worker_lost which
counts against max_retries), prefetch 1, JSON only, task events on so Flower sees every task, and
publisher confirms on RabbitMQ so a 202 means the broker has the message.
"""

from __future__ import annotations

import time

from celery import Celery, Task
from celery.app import trace
from celery.signals import before_task_publish, setup_logging
from kombu import Queue

from switchboard.broker import is_rabbitmq
from switchboard.config import ConfigError, load_config
from switchboard.logs import configure as configure_logging
from switchboard.settings import Settings, load_settings
from switchboard.stalled import PUBLISHED_AT
from tasks import json_codec, kombu_fixes
from tasks.worker_consumer import EVENTS_FLUSH_S

INGEST_QUEUE = "ingest"
DISPATCH_QUEUES = ("dispatch.critical", "dispatch.default", "dispatch.bulk")
ALL_QUEUES = (INGEST_QUEUE, *DISPATCH_QUEUES)
TASK_ROUTES = {
    "switchboard.stage.*": {"queue": INGEST_QUEUE},
    "switchboard.ingest": {"queue": INGEST_QUEUE},
    "switchboard.housekeeping": {"queue": INGEST_QUEUE},
    "switchboard.release_deferred": {"queue": INGEST_QUEUE},
    "switchboard.reconcile": {"queue": INGEST_QUEUE},
    "switchboard.sweep_stalled": {"queue": INGEST_QUEUE},
    "switchboard.incident_updates": {"queue": INGEST_QUEUE},
    # dispatch has no static queue: route picks dispatch.<priority> per target at publish time
    "switchboard.dispatch": {"queue": "dispatch.default"},
    "switchboard.notify": {"queue": "dispatch.critical"},
}


RELEASE_EVERY_S = 2.0


def service_setting(settings: Settings, name: str, default: float) -> float:
    """service.yaml's ``name`` (a beat period); ``default`` if the config cannot be read here (workers say why)."""
    try:
        return float(load_config(settings.config_dir).service[name])
    except (ConfigError, OSError):
        return default


def reconcile_every_s(settings: Settings) -> float:
    return service_setting(settings, "reconcile_every_s", 300.0)


@before_task_publish.connect
def _stamp_publish_time(headers: dict | None = None, **_: object) -> None:
    """Every task message carries when it was published: on a Redis broker the stalled sweep reads it off the
    oldest queued message to prove an event's message is no longer queued (switchboard/stalled.py)."""
    if headers is not None:
        headers[PUBLISHED_AT] = time.time()


@setup_logging.connect
def _json_logs(loglevel: int | str | None = None, **_: object) -> None:
    """Workers and beat log one redacted JSON line per record (Celery's own setup is skipped)."""
    configure_logging(loglevel or "INFO")

# Celery logs every task's return value on success; ours are alerts, which can carry customer data.
trace.LOG_SUCCESS = "Task %(name)s[%(id)s] succeeded in %(runtime)ss"


# task_retry_on_worker_lost re-publishes a task whose pool process died (OOM kill, segfault) with
# ``countdown = task.default_retry_delay``: Celery's 180 s would hold a page for three minutes, and on Redis
# longer than the visibility timeout the tests use. None of our own retries rely on it (each passes its
# countdown), so it is the worker-lost delay alone.
WORKER_LOST_RETRY_S = 1


class SwitchboardTask(Task):
    """Every task's base: a lost pool process's task is tried again after 1 s, not Celery's 180 s."""

    default_retry_delay = WORKER_LOST_RETRY_S


def make_celery(settings: Settings) -> Celery:
    kombu_fixes.apply()
    json_codec.install()  # message JSON on orjson, kombu's wire format (tasks/json_codec.py)
    app = Celery("switchboard", set_as_current=False, task_cls=SwitchboardTask)
    transport_options: dict[str, object] = {}
    if is_rabbitmq(settings.broker_url):
        transport_options["confirm_publish"] = True
    else:
        # Longer than any countdown we ever use (retries are capped at 5 minutes). It is also how long a
        # message held by a crashed worker waits before redelivery, hence configurable.
        visibility = int(settings.env.get("SWITCHBOARD_REDIS_VISIBILITY_TIMEOUT_S") or 3600)
        transport_options["visibility_timeout"] = visibility
        # kombu sweeps for abandoned messages every interval * throttle seconds (100 s by default):
        # with a short visibility timeout, sweep often enough for it to matter.
        transport_options["unacked_restore_interval"] = min(10, max(1, visibility // 4))
        transport_options["unacked_restore_throttle"] = 1 if visibility < 600 else 10
    reconcile_s = reconcile_every_s(settings)
    stall_sweep_s = service_setting(settings, "stall_sweep_every_s", 30.0)
    app.conf.update(
        broker_url=settings.broker_url,
        broker_transport_options=transport_options,
        broker_connection_retry_on_startup=True,
        broker_connection_timeout=3,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        result_backend=None,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_retry_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        # A task's own publishes (the next link of the chain, dispatches, retries) wait out a broker restart
        # (~30 s) rather than fail: a failed task is acknowledged and its event would stop there. The
        # receiver publishes with retry=False and answers 503 instead.
        task_publish_retry_policy={"max_retries": 30, "interval_start": 0, "interval_step": 0.5, "interval_max": 1},
        worker_send_task_events=True,
        worker_consumer="tasks.worker_consumer:Consumer",  # task events sent in batches, not one per event
        switchboard_events_flush_s=service_setting(settings, "events_flush_s", EVENTS_FLUSH_S),
        # No "task-sent" event per publish: it cost the receiver a Redis PUBLISH and a repr of the whole
        # envelope per webhook (bench/: ~10% of a request); Flower lists every task from the workers' events.
        task_send_sent_event=False,
        task_queues=[Queue(name) for name in ALL_QUEUES],
        task_default_queue=INGEST_QUEUE,
        task_routes=TASK_ROUTES,
        task_create_missing_queues=False,
        worker_hijack_root_logger=False,
        beat_schedule={
            "housekeeping": {"task": "switchboard.housekeeping", "schedule": 30.0},
            # Held events are released within this many seconds of their release time.
            "release-deferred": {"task": "switchboard.release_deferred", "schedule": RELEASE_EVERY_S,
                                 "options": {"expires": RELEASE_EVERY_S * 5}},
            # Attached entities reach the lead incident within this many seconds of their due time.
            "incident-updates": {"task": "switchboard.incident_updates", "schedule": RELEASE_EVERY_S,
                                 "options": {"expires": RELEASE_EVERY_S * 5}},
            # Local incident state vs PagerDuty's; a pass not run before the next is due is dropped.
            "reconcile": {"task": "switchboard.reconcile", "schedule": reconcile_s,
                          "options": {"expires": reconcile_s}},
            # Redis broker: events whose message a killed worker lost are published again (tasks/stalled_sweep.py).
            "sweep-stalled": {"task": "switchboard.sweep_stalled", "schedule": stall_sweep_s,
                              "options": {"expires": stall_sweep_s}},
        },
        timezone="UTC",
    )
    return app


app = make_celery(load_settings())
app.conf.imports = ("tasks.stage_tasks", "tasks.dispatch", "tasks.notify", "tasks.deferral", "tasks.housekeeping",
                    "tasks.reconcile",
                    "tasks.incident_updates", "tasks.worker_metrics")  # the last one serves a pool's /metrics
# a task whose pool process keeps dying, or whose message a killed worker lost, still ends its event
app.conf.imports += ("tasks.worker_lost", "tasks.stalled_sweep")
app.conf.imports += ("tasks.config_signals",)  # live config reload: SIGHUP, polling, `switchboard config reload`
