"""Test-only Celery app: the production app, except that a pool process starting the ingest of an event
carrying ``POISON`` SIGKILLs itself, as an OOM kill would on every try. Started as
``celery -A tests.poison_app`` by tests/test_worker_crash.py; production code never imports it."""

from __future__ import annotations

import json
import os
import signal
from typing import Any

from celery.signals import task_prerun

from tasks.app import app

POISON = "poisonpill"


@task_prerun.connect
def _die_on_poison(sender: Any = None, args: Any = None, **_: Any) -> None:
    if getattr(sender, "name", "") == "switchboard.ingest" and POISON in json.dumps(args, default=str):
        os.kill(os.getpid(), signal.SIGKILL)


__all__ = ["app"]
