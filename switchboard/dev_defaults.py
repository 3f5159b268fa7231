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
