"""Fallback notifier: a Slack-style incoming webhook and Twilio-style SMS (CONTRACTS.md).

Used when a critical page or call dead-letters, and when a vendor rejects our credentials, so a human
hears about it even when the primary channel is the thing that is broken.
"""

from __future__ import annotations

import re
from typing import Any

from clients.http import call

MESSAGING_SERVICE_SID = re.compile(r"^MG[0-9a-fA-F]{32}$")  # else an E.164 number or alphanumeric sender


class SlackWebhook:
    def __init__(self, url: str, *, connect_s: float = 3.05, read_s: float = 5.0) -> None:
        self.url = url
        self.timeout = (connect_s, read_s)

    def post(self, text: str, blocks: list[dict[str, Any]] | None = None) -> None:
        body: dict[str, Any] = {"text": text}
        if blocks:
            body["blocks"] = blocks
        call("POST", self.url, timeout=self.timeout, json=body)


class TwilioSMS:
    def __init__(self, base_url: str, account_sid: str, auth_token: str, sender: str, *,
                 connect_s: float = 3.05, read_s: float = 10.0) -> None:
        self.url = f"{base_url.rstrip('/')}/2010-04-01/Accounts/{account_sid}/Messages.json"
        self.auth = (account_sid, auth_token)
        self.sender = sender
        self.timeout = (connect_s, read_s)

    def send(self, to: str, body: str) -> dict[str, Any]:
        """Send one SMS; Twilio answers 201 with the message ``sid``."""
        sender_field = "MessagingServiceSid" if MESSAGING_SERVICE_SID.match(self.sender) else "From"
        response = call("POST", self.url, timeout=self.timeout, auth=self.auth,
                        data={"To": to, sender_field: self.sender, "Body": body[:1600]})
        return response.json()
