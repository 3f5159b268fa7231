"""The receiver's publish of an accepted event onto the ingest queue, through producers kept between requests
(tasks/kept_publisher.py says why): once, no retry, so that a broker that does not take the message within the
publish timeout is answered 503 instead of holding the request."""

from __future__ import annotations

from typing import Any

from celery import Celery, Signature

from tasks.app import INGEST_QUEUE
from tasks.kept_publisher import KeptPublisher


class IngestPublisher(KeptPublisher):
    def __init__(self, celery: Celery, keep: int = 8) -> None:
        super().__init__(celery, [INGEST_QUEUE], keep)

    def publish(self, signature: Signature, *, headers: dict[str, Any], argsrepr: str,  # type: ignore[override]
                timeout_s: float) -> None:
        """Publish ``signature`` once, no retry: raises if the broker did not take it (for RabbitMQ: did not
        confirm it) within ``timeout_s``."""
        super().publish(signature, headers=headers, argsrepr=argsrepr, timeout_s=timeout_s, retry=False)
