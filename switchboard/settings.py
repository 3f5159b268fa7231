"""Process settings read from the environment (URLs, secrets' locations, ports).

Everything that differs between machines comes from ``SWITCHBOARD_*`` variables; everything that
describes behaviour lives in the YAML under ``config/`` (see ``switchboard.config``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

REPO_CONFIG_DIR = Path(__file__).resolve().parent.parent / "config"
DEFAULT_PAGERDUTY_URL = "https://events.pagerduty.com"
# Vendor base URLs: (environment variable, public default or None when there is no public default).
VENDOR_URLS = {
    "genesys_api": ("SWITCHBOARD_GENESYS_API_URL", "https://api.mypurecloud.com"),
    "genesys_login": ("SWITCHBOARD_GENESYS_LOGIN_URL", "https://login.mypurecloud.com"),
    "cxone_api": ("SWITCHBOARD_CXONE_API_URL", None),
    "cxone_auth": ("SWITCHBOARD_CXONE_AUTH_URL", "https://cxone.niceincontact.com"),
    "crm": ("SWITCHBOARD_CRM_URL", None),
    "orchestrator": ("SWITCHBOARD_ORCHESTRATOR_URL", None),
    "slack": ("SWITCHBOARD_SLACK_WEBHOOK_URL", None),
    "twilio": ("SWITCHBOARD_TWILIO_URL", "https://api.twilio.com"),
    "pagerduty_api": ("SWITCHBOARD_PAGERDUTY_API_URL", "https://api.pagerduty.com"),
}


@dataclass(frozen=True)
class Settings:
    broker_url: str
    redis_url: str
    pagerduty_url: str
    config_dir: Path
    key_prefix: str = "sb:"
    port: int = 8000
    env: dict[str, str] = field(default_factory=dict, repr=False)

    def secret(self, name: str) -> str | None:
        """An environment variable's value (secrets are never read from YAML)."""
        value = self.env.get(name)
        return value if value else None

    def vendor_url(self, vendor: str) -> str | None:
        """A vendor's base URL from its ``SWITCHBOARD_*_URL`` variable, else the public default (or None)."""
        env_name, default = VENDOR_URLS[vendor]
        value = self.secret(env_name) or default
        return value.rstrip("/") if value and vendor != "slack" else value

    def secrets(self, name: str) -> list[str]:
        """The active secrets in a comma-separated variable (several during a rotation), newest first."""
        return [s.strip() for s in (self.secret(name) or "").split(",") if s.strip()]


def load_settings(env: dict[str, str] | None = None) -> Settings:
    """Build settings from ``env`` (default: ``os.environ``)."""
    env = dict(os.environ if env is None else env)
    redis_url = env.get("SWITCHBOARD_REDIS_URL") or "redis://127.0.0.1:6379/0"
    return Settings(
        broker_url=env.get("SWITCHBOARD_BROKER_URL") or redis_url,
        redis_url=redis_url,
        pagerduty_url=(env.get("SWITCHBOARD_PAGERDUTY_URL") or DEFAULT_PAGERDUTY_URL).rstrip("/"),
        config_dir=Path(env.get("SWITCHBOARD_CONFIG_DIR") or REPO_CONFIG_DIR),
        key_prefix=env.get("SWITCHBOARD_KEY_PREFIX") or "sb:",
        port=int(env.get("PORT") or 8000),
        env=env,
    )
