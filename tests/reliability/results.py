"""Where a scenario's measured figures go: one JSON line per scenario in the file named by
``SWITCHBOARD_RELIABILITY_RESULTS`` (``make reliability`` sets it; RELIABILITY.md is written from it),
and always a one-line summary in the test log."""

from __future__ import annotations

import json
import logging
import os
import time
from typing import Any

log = logging.getLogger("switchboard.reliability")


def record(report: Any) -> None:
    data = {"at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **report.as_dict()}
    log.warning("reliability %s", json.dumps(data))
    path = os.environ.get("SWITCHBOARD_RELIABILITY_RESULTS")
    if path:
        with open(path, "a") as out:
            out.write(json.dumps(data) + "\n")
