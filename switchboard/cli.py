"""The ``switchboard`` command: run the service, the demo and the sandbox; send, trace, check config."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click

from switchboard.config import ConfigError, load_config
from switchboard.settings import Settings
from switchboard.settings import load_settings as _load_env_settings


def load_settings() -> Settings:
    """Settings from the environment, falling back to what a running ``switchboard up`` chose."""
    import os

    from switchboard.runner import running_env

    return _load_env_settings({**running_env(), **os.environ})


@click.group()
def main() -> None:
    """Switchboard: webhooks in, safe deduplicated vendor actions out."""


@main.command()
def up() -> None:
    """Run every process of the Procfile in the foreground (Ctrl-C stops all)."""
    from switchboard.runner import up as run_up

    try:
        sys.exit(run_up())
    except ConfigError as exc:
        raise click.ClickException(f"invalid configuration:\n{exc}") from exc


@main.command()
def demo() -> None:
    """Start the service, post every sample signed, and check each event's outcome."""
    from switchboard.demo import run_demo

    sys.exit(run_demo())


@main.command()
@click.option("--port", default=8900, show_default=True)
def sandbox(port: int) -> None:
    """Serve the vendor sandbox on 127.0.0.1 in the foreground."""
    from vendor_sandbox.server import main as sandbox_main

    sys.exit(sandbox_main(["--port", str(port)]))


@main.command()
@click.argument("event_id")
def trace(event_id: str) -> None:
    """Print an event's stages, timestamps and outcome as JSON."""
    from switchboard.ledger import Ledger
    from switchboard.store import Keys, redis_client

    settings = load_settings()
    ledger = Ledger(redis_client(settings.redis_url), Keys(settings.key_prefix), 0)
    found = ledger.trace(event_id)
    if found is None:
        raise click.ClickException(f"no event {event_id} in the ledger (unknown, or older than its TTL)")
    click.echo(json.dumps(found, indent=2, default=str))


@main.command()
@click.argument("source")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--url", default=None, help="Receiver base URL (default http://127.0.0.1:$PORT).")
@click.option("--request-id", default=None, help="X-Request-Id / webhook-id to send (default: random).")
def send(source: str, file: Path, url: str | None, request_id: str | None) -> None:
    """Sign FILE with SOURCE's configured secret and post it to the receiver."""
    from switchboard.dev_defaults import signing_secret
    from switchboard.sender import post_signed

    settings = load_settings()
    config = load_config(settings.config_dir)
    if source not in config.sources:
        raise click.ClickException(f"unknown source {source!r}; configured: {', '.join(sorted(config.sources))}")
    rid = request_id or f"cli-{time.time_ns()}"
    response = post_signed(url or f"http://127.0.0.1:{settings.port}", source, config.sources[source],
                           file.read_bytes(), signing_secret(config, settings, source), request_id=rid,
                           msg_id=f"msg_{rid}")
    click.echo(f"{response.status_code} {response.text.strip()}")
    sys.exit(0 if response.status_code in (200, 202) else 1)


@main.group()
def config() -> None:
    """Configuration commands."""


@config.command("check")
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path), default=None)
def config_check(directory: Path | None) -> None:
    """Validate the YAML under config/ and name every problem."""
    directory = directory or load_settings().config_dir
    try:
        cfg = load_config(directory)
    except ConfigError as exc:
        raise click.ClickException(f"invalid configuration:\n{exc}") from exc
    click.echo(f"{directory}: ok ({len(cfg.sources)} sources, {len(cfg.targets)} targets, {len(cfg.rules)} rules)")


if __name__ == "__main__":
    main()
