"""Development defaults for ``switchboard up`` / ``demo`` / ``send`` when nothing is configured.

Only used when the variables are unset, and announced on start-up: a production deployment sets real
secrets and routing keys and never sees these.
"""

from __future__ import annotations

import base64

from switchboard.config import Config
from switchboard.settings import Settings


def dev_secret(source: str, scheme: str) -> str:
    raw = f"switchboard-dev-secret-{source}"
    if scheme == "standard-webhooks":
        return "whsec_" + base64.b64encode(raw.encode()).decode()
    return raw


def dev_environment(config: Config, env: dict[str, str]) -> dict[str, str]:
    """Variables to add so a fresh checkout runs: dev secrets and sandbox routing keys."""
    added: dict[str, str] = {}
    for source, cfg in config.sources.items():
        name = cfg["secrets_env"]
        if not env.get(name):
            added[name] = dev_secret(source, cfg["signature"]["scheme"])
    key_envs = [config.mappings["default_routing_key_env"]]
    key_envs += [u["pagerduty_routing_key_env"] for u in config.mappings["business_units"].values()]
    for name in key_envs:
        if not env.get(name):
            added[name] = "sandbox-" + name.removeprefix("SWITCHBOARD_PD_KEY_").lower().replace("_", "-")
    return added


def signing_secret(config: Config, settings: Settings, source: str) -> str:
    """The secret ``send`` and the demo sign with: the source's newest, else the development one."""
    cfg = config.sources[source]
    configured = settings.secrets(cfg["secrets_env"])
    return configured[0] if configured else dev_secret(source, cfg["signature"]["scheme"])


SANDBOX_SMS_FROM = "+15005550006"
SANDBOX_ONCALL = "+15005550009"


def sandbox_vendor_environment(sandbox_url: str, env: dict[str, str]) -> dict[str, str]:
    """Point every vendor whose URL is unset at the sandbox, with the sandbox's credentials.

    A vendor with its own URL set keeps it (and must have its real credentials set too).
    """
    from vendor_sandbox import credentials as c

    url = sandbox_url.rstrip("/")
    groups = [
        # The REST API (reconciliation) follows the Events API: a real PagerDuty is never reconciled
        # against the sandbox's incidents.
        ("SWITCHBOARD_PAGERDUTY_URL", {"SWITCHBOARD_PAGERDUTY_URL": url, "SWITCHBOARD_PAGERDUTY_API_URL": url,
                                       "SWITCHBOARD_PAGERDUTY_API_TOKEN": c.PAGERDUTY_API_TOKEN}),
        ("SWITCHBOARD_GENESYS_API_URL", {
            "SWITCHBOARD_GENESYS_API_URL": url, "SWITCHBOARD_GENESYS_LOGIN_URL": url,
            "SWITCHBOARD_GENESYS_CLIENT_ID": c.GENESYS_CLIENT_ID,
            "SWITCHBOARD_GENESYS_CLIENT_SECRET": c.GENESYS_CLIENT_SECRET}),
        ("SWITCHBOARD_CXONE_API_URL", {
            "SWITCHBOARD_CXONE_API_URL": url, "SWITCHBOARD_CXONE_AUTH_URL": url,
            "SWITCHBOARD_CXONE_CLIENT_ID": c.CXONE_CLIENT_ID, "SWITCHBOARD_CXONE_CLIENT_SECRET": c.CXONE_CLIENT_SECRET,
            "SWITCHBOARD_CXONE_ACCESS_KEY_ID": c.CXONE_ACCESS_KEY_ID,
            "SWITCHBOARD_CXONE_ACCESS_KEY_SECRET": c.CXONE_ACCESS_KEY_SECRET}),
        ("SWITCHBOARD_CRM_URL", {"SWITCHBOARD_CRM_URL": url, "SWITCHBOARD_CRM_TOKEN": c.CRM_TOKEN}),
        ("SWITCHBOARD_ORCHESTRATOR_URL", {"SWITCHBOARD_ORCHESTRATOR_URL": url,
                                          "SWITCHBOARD_ORCHESTRATOR_API_KEY": c.ORCHESTRATOR_API_KEY}),
        ("SWITCHBOARD_SLACK_WEBHOOK_URL", {"SWITCHBOARD_SLACK_WEBHOOK_URL": url + c.SLACK_WEBHOOK_PATH}),
        ("SWITCHBOARD_TWILIO_URL", {
            "SWITCHBOARD_TWILIO_URL": url, "SWITCHBOARD_TWILIO_ACCOUNT_SID": c.TWILIO_ACCOUNT_SID,
            "SWITCHBOARD_TWILIO_AUTH_TOKEN": c.TWILIO_AUTH_TOKEN, "SWITCHBOARD_TWILIO_FROM": SANDBOX_SMS_FROM,
            "SWITCHBOARD_FALLBACK_SMS_TO": SANDBOX_ONCALL}),
    ]
    added: dict[str, str] = {}
    for marker, values in groups:
        if not env.get(marker):
            added.update({k: v for k, v in values.items() if not env.get(k)})
    return added
