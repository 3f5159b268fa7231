"""Canonical alert -> the text of a chat message (a Slack-style incoming webhook): short, no attributes
(so no customer data or phone numbers), the escalation deadline when the route sets one."""

from __future__ import annotations

from typing import Any

from switchboard.payloads.pagerduty import summary

MAX_TEXT = 3000  # Slack truncates long messages; an alert needs far less


def chat_text(alert: dict[str, Any], rule: str | None, escalation_minutes: int | None) -> str:
    state = "RESOLVED " if alert.get("status") == "resolved" else ""
    text = f"{state}{summary(alert)}. Source {alert.get('source')}, event {alert.get('event_id')}"
    if rule:
        text += f", rule {rule}"
    text += "."
    if escalation_minutes and alert.get("status") != "resolved":
        text += f" Escalate if not handled within {escalation_minutes} min."
    for link in alert.get("links") or []:
        text += f"\n{link.get('text') or 'link'}: {link.get('href')}"
    return text[:MAX_TEXT]
