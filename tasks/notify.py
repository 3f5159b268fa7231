"""Fallback notifier task: tell humans on Slack and by SMS when a critical page or call dead-letters,
or a vendor rejects our credentials. Bounded retries; a failure here is logged, never looped."""

from __future__ import annotations

import logging
import time

from celery import Task

from clients.http import VendorError
from tasks.app import app
from tasks.runtime import runtime

log = logging.getLogger("switchboard.notify")


@app.task(bind=True, name="switchboard.notify", max_retries=None)
def notify(self: Task, text: str, event_id: str | None = None, pending: list[str] | None = None) -> str:
    """Send ``text`` to every configured channel; ``pending`` (on retry) names those still to do."""
    rt = runtime()
    fallback = rt.config.vendors["fallback"]
    channels: dict[str, object] = {}
    slack = rt.vendors.slack()
    if slack is not None:
        channels["slack"] = slack
    sms = rt.vendors.sms()
    for i, number in enumerate(rt.settings.secrets(fallback["sms_to_env"])):
        if sms is not None:
            channels[f"sms:{i}"] = (sms, number)
    todo = [c for c in channels if pending is None or c in pending]
    if not channels:
        log.error("fallback notification not sent: no Slack webhook or Twilio SMS is configured")
        return "unconfigured"
    failed: list[str] = []
    retry_after = 0.0
    for name in todo:
        started = time.time()
        try:
            channel = channels[name]
            if isinstance(channel, tuple):
                channel[0].send(channel[1], text)
            else:
                channel.post(text)
            result = "sent"
        except VendorError as exc:
            result = f"failed: {exc}"[:200]
            if exc.retryable:
                failed.append(name)
                retry_after = max(retry_after, exc.retry_after_s or 0.0)
            # the number is never logged: channel names are "sms:<index>"
            log.warning("fallback notification via %s failed: %s", name, exc)
        if event_id:
            rt.ledger.stage(event_id, f"fallback:{name}", started, (time.time() - started) * 1000, result=result)
    if failed and self.request.retries + 1 < fallback["max_attempts"]:
        raise self.retry(args=(text, event_id, failed), countdown=max(retry_after, 2.0 ** self.request.retries))
    if failed:
        log.error("fallback notification gave up on %s after %d attempts", ", ".join(failed), self.request.retries + 1)
        return "partial"
    return "sent"
