"""Texts for the fallback notifier (Slack, SMS): short, no secrets, no phone numbers."""

from __future__ import annotations

from typing import Any

from switchboard.payloads.pagerduty import summary


def dead_letter_text(alert: dict[str, Any], target: str, error: str) -> str:
    what = summary(alert) if alert.get("severity") and alert.get("entity_name") else alert.get("event_id", "?")
    return (f"Switchboard could not deliver to {target}: {what}. Event {alert.get('event_id')}; "
            f"last error: {error[:200]}. Run `switchboard dlq list` to inspect and replay.")


def credential_text(vendor: str, error: str) -> str:
    return (f"Switchboard: {vendor} rejected our API credentials ({error[:200]}). Dispatches to {vendor} are "
            f"dead-lettering until the credentials are fixed; then run `switchboard dlq replay --all "
            f"--target <target>`.")
