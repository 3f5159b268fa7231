"""The last resort for a task whose pool process keeps dying (OOM kill, segfault in a C extension).

``task_retry_on_worker_lost`` tries such a task again (1 s later) until its ``max_retries`` run out; then
Celery acknowledges the message and sends ``task_failure`` with ``WorkerLostError`` from the worker's
consumer process. Nothing else would record that event, so it would be accepted with no outcome: here it
is dead-lettered with the task's input, to be replayed once the cause is fixed (``switchboard replay``).
"""

from __future__ import annotations

import logging
from typing import Any

from celery.exceptions import WorkerLostError
from celery.signals import task_failure

from tasks.runtime import runtime

log = logging.getLogger("switchboard.worker_lost")
STAGE_PREFIX = "switchboard.stage."


@task_failure.connect
def dead_letter_lost_task(sender: Any = None, exception: BaseException | None = None,
                          args: Any = None, **_: Any) -> None:
    if not isinstance(exception, WorkerLostError) or not args:
        return
    name = getattr(sender, "name", "")
    retries = getattr(getattr(sender, "request", None), "retries", 0) or 0
    error = f"WorkerLostError: the pool process running it died {retries + 1} times ({exception})"
    if name == "switchboard.dispatch":
        from tasks.dispatch import dead_letter  # dispatch imports this module's siblings, not the reverse

        alert, route = args[0], args[1]
        log.error("dispatch of event %s to %s lost its pool process every time; dead-lettered",
                  alert["event_id"], route["target"])
        dead_letter(alert, route, {}, retries + 1, error)
        return
    if name != "switchboard.ingest" and not name.startswith(STAGE_PREFIX):
        return
    data = args[0]
    stage = name.removeprefix(STAGE_PREFIX) if name.startswith(STAGE_PREFIX) else "ingest"
    rt = runtime()
    log.error("stage %s of event %s lost its pool process every time; dead-lettered", stage, data["event_id"])
    rt.dead_letters.add(event_id=data["event_id"], target=f"stage:{stage}", request={}, attempts=retries + 1,
                        error=error, alert=data)
    rt.ledger.set_outcome(data["event_id"], "dead_lettered", f"stage {stage}: pool process lost")
