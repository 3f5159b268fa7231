"""The worker's vendor clients, built once per process from settings and config.

Credentials come from the environment only; a client whose URL or credentials are missing raises a
permanent error naming the variable, so the dispatch dead-letters with a message an operator can act on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from clients.crm import CRMClient
from clients.cxone import CXoneClient, fetch_cxone_token
from clients.genesys import GenesysClient, fetch_genesys_token
from clients.http import VendorError
from clients.notify import SlackWebhook, TwilioSMS
from clients.oauth import TokenManager
from clients.orchestrator import OrchestratorClient
from clients.pagerduty import PagerDutyClient
from clients.pagerduty_rest import PagerDutyRestClient
from switchboard.config import Config
from switchboard.settings import VENDOR_URLS, Settings

TOKEN_TIMEOUT = (3.05, 10.0)


class NotConfigured(VendorError):
    """A vendor's URL or credential variable is unset."""


@dataclass
class Vendors:
    settings: Settings
    config: Config
    redis: Any
    _cache: dict[str, Any] = field(default_factory=dict)

    def _need(self, name: str) -> str:
        value = self.settings.secret(name)
        if not value:
            raise NotConfigured(f"environment variable {name} is not set", retryable=False)
        return value

    def _url(self, vendor: str) -> str:
        url = self.settings.vendor_url(vendor)
        if not url:
            raise NotConfigured(f"environment variable {VENDOR_URLS[vendor][0]} is not set", retryable=False)
        return url

    def _timeouts(self, target: str | None) -> dict[str, float]:
        if target is None:
            return {}
        t = self.config.targets[target]["timeout"]
        return {"connect_s": t["connect_s"], "read_s": t["read_s"]}

    def tokens(self, vendor: str) -> TokenManager:
        key = f"tokens:{vendor}"
        if key not in self._cache:
            if vendor == "genesys":
                login, cid, secret = (self._url("genesys_login"), self._need("SWITCHBOARD_GENESYS_CLIENT_ID"),
                                      self._need("SWITCHBOARD_GENESYS_CLIENT_SECRET"))

                def fetch() -> Any:
                    return fetch_genesys_token(login, cid, secret, TOKEN_TIMEOUT)
            else:
                auth = self._url("cxone_auth")
                creds = [self._need(n) for n in ("SWITCHBOARD_CXONE_CLIENT_ID", "SWITCHBOARD_CXONE_CLIENT_SECRET",
                                                 "SWITCHBOARD_CXONE_ACCESS_KEY_ID",
                                                 "SWITCHBOARD_CXONE_ACCESS_KEY_SECRET")]

                def fetch() -> Any:
                    return fetch_cxone_token(auth, *creds, TOKEN_TIMEOUT)
            self._cache[key] = TokenManager(self.redis, self.settings.key_prefix, vendor, fetch,
                                            on_credential_failure=lambda exc: _credential_alert(vendor, exc))
        return self._cache[key]

    def pagerduty(self, target: str) -> PagerDutyClient:
        return PagerDutyClient(self.settings.pagerduty_url, **self._timeouts(target))

    def pagerduty_rest(self) -> PagerDutyRestClient:
        """The REST API client reconciliation reads incident status with (NotConfigured without a token)."""
        return PagerDutyRestClient(self._url("pagerduty_api"), self._need("SWITCHBOARD_PAGERDUTY_API_TOKEN"))

    def genesys(self, target: str) -> GenesysClient:
        return GenesysClient(self._url("genesys_api"), self.tokens("genesys"), **self._timeouts(target))

    def cxone(self, target: str) -> CXoneClient:
        call = self.config.targets[target]["call"]
        return CXoneClient(self._url("cxone_api"), self.tokens("cxone"), dial_path=call["dial_path"],
                           **self._timeouts(target))

    def orchestrator(self, target: str) -> OrchestratorClient:
        return OrchestratorClient(self._url("orchestrator"), self._need("SWITCHBOARD_ORCHESTRATOR_API_KEY"),
                                  **self._timeouts(target))

    def crm(self) -> CRMClient:
        t = self.config.vendors["crm"]["timeout"]
        return CRMClient(self._url("crm"), self._need("SWITCHBOARD_CRM_TOKEN"), connect_s=t["connect_s"],
                         read_s=t["read_s"])

    def chat(self, target: str) -> SlackWebhook:
        """The chat target's webhook (NotConfigured without ``SWITCHBOARD_SLACK_WEBHOOK_URL``)."""
        return SlackWebhook(self._url("slack"), **self._timeouts(target))

    def slack(self) -> SlackWebhook | None:
        url = self.settings.vendor_url("slack")
        return SlackWebhook(url) if url else None

    def sms(self) -> TwilioSMS | None:
        names = ("SWITCHBOARD_TWILIO_ACCOUNT_SID", "SWITCHBOARD_TWILIO_AUTH_TOKEN", "SWITCHBOARD_TWILIO_FROM")
        if not all(self.settings.secret(n) for n in names):
            return None
        sid, token, sender = (self.settings.secret(n) or "" for n in names)
        return TwilioSMS(self._url("twilio"), sid, token, sender)


def _credential_alert(vendor: str, error: VendorError) -> None:
    from tasks.dispatch import credential_alert  # late: dispatch imports this module's users

    credential_alert(vendor, error)
