"""What the bench sends and the config it runs with.

Events: Genesys trunk-down webhooks (critical: one PagerDuty trigger on ``dispatch.critical``), each with
its own ``X-Request-Id``, signed like the platform signs them. The trunks (entities, alert keys) cycle
through ``BENCH_TRUNKS`` trunks mapped to the voice-network unit, as a production mapping would have them:
an unmapped entity takes the config-audit path (a WARNING, an audit record and a chat notification per
entity), which is the misconfiguration path, not the one to size the service by. Consecutive events are
different trunks; a trunk fires again only ``BENCH_TRUNKS`` events later.
Config: a copy of ``config/`` with alert intelligence's windows at 0 (dedupe, flapping, grouping: a storm
of distinct trunks in one unit would otherwise be grouped under one lead incident and not paged), the
ingress rate out of the way, the bench's trunks mapped, and the PagerDuty limit per phase (a null vendor,
or the flow-control limit).
"""

from __future__ import annotations

import itertools
import json
import re
import uuid
from pathlib import Path

from bench.load import http_request
from switchboard.config import load_config
from switchboard.dev_defaults import dev_environment, sandbox_vendor_environment
from switchboard.signatures import sign_hmac

ROOT = Path(__file__).resolve().parent.parent
ALERTING_OFF = "dedupe: {window_s: 0}\nflapping: {cooldown_s: 0}\ngrouping: {window_s: 0}\n"
PD_LIMIT_LINE = re.compile(r"^  pagerduty_events:.*\n    \{rate: [^\n]*\}\n", re.M)
NULL_VENDOR_LIMIT = "{rate: 100000, burst: 1000, per: routing_key}"
BENCH_TRUNKS = 4000  # more than any phase's events in flight at once; config loads in ~0.3 s with them
_next_trunk = itertools.count()


def bench_trunk(i: int) -> str:
    return f"trunk-bench-{i % BENCH_TRUNKS:05d}"


# Our window check is a little wider than the vendor's 1 s: a request admitted at our clock arrives a few ms
# later at the vendor's, and a window exactly as wide would let the 51st arrive inside the vendor's second.
WINDOW_S = 1.03


def flow_limit(limit: float) -> str:
    """Our schedule at the vendor's limit, its window (``WINDOW_S``) checked at each send."""
    window = f"{{count: {int(limit)}, window_s: {WINDOW_S}}}"
    return f"{{rate: {limit}, burst: 1, per: routing_key, max_in_window: {window}}}"


def write_config(directory: Path, *, grain: str, pd_limit: str = NULL_VENDOR_LIMIT) -> Path:
    """A copy of ``config/`` for the bench (see the module's docstring); each edit must apply."""
    directory.mkdir(parents=True, exist_ok=True)
    edits = {
        "service.yaml": [(r"^pipeline_grain: \w+", f"pipeline_grain: {grain}"),
                         (r"^ingest_max_depth: \d+", "ingest_max_depth: 10000000")],
        "sources.yaml": [(r"ingress_rate: \{limit: \d+", "ingress_rate: {limit: 1000000")],
        "mappings.yaml": [(r"^audit_notify_every_s: \d+", "audit_notify_every_s: 0")],
        "routing.yaml": [(r"^    suppress_for_s: \d+\n", "")],
    }
    for path in (ROOT / "config").glob("*.yaml"):
        text = path.read_text()
        if path.name == "alerting.yaml":
            text = ALERTING_OFF
        if path.name == "mappings.yaml":
            assert text.rstrip().endswith("}") and "\nentities:\n" in text, "mappings.yaml: entities no longer last"
            text = text.rstrip("\n") + "\n" + "".join(
                f"  {bench_trunk(i)}: {{business_unit: voice-network}}\n" for i in range(BENCH_TRUNKS))
        if path.name == "targets.yaml":
            text, n = PD_LIMIT_LINE.subn(f"  pagerduty_events: {pd_limit}\n", text)
            assert n == 1, "targets.yaml: the pagerduty_events limit line moved"
        for pattern, new in edits.get(path.name, []):
            text, n = re.subn(pattern, new, text, flags=re.M)
            assert n or path.name == "routing.yaml", f"{path.name}: {pattern!r} no longer matches"
        (directory / path.name).write_text(text)
    load_config(directory)  # fail here, not in five processes
    return directory


def service_env(base: dict[str, str], broker_url: str, redis_url: str, sandbox_url: str, prefix: str,
                config_dir: Path) -> dict[str, str]:
    """The processes' environment: brokers, the sandbox for every vendor, development secrets and keys."""
    env = {k: v for k, v in base.items() if not k.startswith("SWITCHBOARD_")}
    env.update({"SWITCHBOARD_BROKER_URL": broker_url, "SWITCHBOARD_REDIS_URL": redis_url,
                "SWITCHBOARD_KEY_PREFIX": prefix, "SWITCHBOARD_CONFIG_DIR": str(config_dir)})
    env.update(sandbox_vendor_environment(sandbox_url, {}))
    env.update(dev_environment(load_config(config_dir), env))
    return env


def trunk_down_webhooks(env: dict[str, str], count: int) -> list[tuple[bytes, dict[str, str]]]:
    """``count`` signed trunk-down webhooks (the next ``count`` bench trunks, each a new request id), as
    ``(body, headers)``."""
    secret = env["SWITCHBOARD_SECRET_GENESYS"].split(",")[0]
    template = json.loads((ROOT / "samples" / "genesys-trunk-down.json").read_text())
    out = []
    for _ in range(count):
        template["event"]["trunkId"] = bench_trunk(next(_next_trunk))
        body = json.dumps(template).encode()
        out.append((body, {"Content-Type": "application/json", "X-Genesys-Signature": sign_hmac(body, secret),
                           "X-Request-Id": uuid.uuid4().hex}))
    return out


def trunk_down_requests(env: dict[str, str], count: int) -> list[bytes]:
    """``trunk_down_webhooks`` as raw HTTP requests."""
    return [http_request("/webhooks/genesys", body, headers) for body, headers in trunk_down_webhooks(env, count)]
