"""Beat-driven housekeeping: snapshot queue depths, DLQ depth and outcome counts for ``switchboard status``."""

from __future__ import annotations

import json
import time

from switchboard.broker import queue_depths
from tasks.app import ALL_QUEUES, app
from tasks.runtime import runtime


@app.task(name="switchboard.housekeeping")
def housekeeping() -> dict:
    rt = runtime()
    snapshot = {"at": time.time(), "queues": queue_depths(app, ALL_QUEUES),
                "dead_letters": rt.dead_letters.depth(), "counts": rt.ledger.counts()}
    rt.redis.set(f"{rt.keys.prefix}status", json.dumps(snapshot), ex=300)
    return snapshot
