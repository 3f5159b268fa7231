"""The Celery app the bench's pools run: Switchboard's own (``tasks.app``, same settings and tasks) plus
``bench.noop``, the no-op task whose drain rate is the pipeline's baseline."""

from __future__ import annotations

from typing import Any

from tasks.app import app

__all__ = ["app", "noop"]


@app.task(name="bench.noop")
def noop(*_: Any) -> None:
    """Does nothing: what is left is Celery's and the broker's cost per task."""
