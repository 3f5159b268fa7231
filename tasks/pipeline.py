"""What the receiver publishes: the ingest chain (or the fused ingest task), built by task name.

Built from names so the receiver needs only a Celery app bound to the broker, not the worker code.
"""

from __future__ import annotations

from typing import Any

from celery import Celery, chain
from celery.canvas import Signature

from switchboard.stages import STAGE_ORDER
from tasks.app import INGEST_QUEUE


def ingest_signature(celery_app: Celery, envelope: dict[str, Any], grain: str = "chain") -> Signature:
    if grain == "fused":
        return celery_app.signature("switchboard.ingest", args=(envelope,), queue=INGEST_QUEUE)
    first, *rest = STAGE_ORDER
    links = [celery_app.signature(f"switchboard.stage.{first}", args=(envelope,), queue=INGEST_QUEUE)]
    links += [celery_app.signature(f"switchboard.stage.{name}", queue=INGEST_QUEUE) for name in rest]
    return chain(*links)


def resume_signature(celery_app: Celery, stage: str, data: dict[str, Any]) -> Signature:
    """The chain from ``stage`` to the end, fed ``data`` (a released hold, a replayed stage dead letter)."""
    names = STAGE_ORDER[STAGE_ORDER.index(stage):]
    links = [celery_app.signature(f"switchboard.stage.{names[0]}", args=(data,), queue=INGEST_QUEUE)]
    links += [celery_app.signature(f"switchboard.stage.{name}", queue=INGEST_QUEUE) for name in names[1:]]
    return chain(*links)
