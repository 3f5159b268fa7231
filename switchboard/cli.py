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


@main.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.pass_context
def bench(ctx: click.Context) -> None:
    """Run the benchmark suite (``make bench``); options as ``python -m bench --help``."""
    import subprocess

    from switchboard.runner import ROOT

    sys.exit(subprocess.call([sys.executable, "-m", "bench", *ctx.args], cwd=ROOT))


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
    _echo_redacted(json.dumps(found, indent=2, default=str))


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


def _echo_redacted(text: str, width: int | None = None) -> None:
    """Output that quotes payloads, vendor answers or requests (trace, dead letters, held events): phone
    numbers, secrets, tokens and signatures masked as in the logs (``switchboard.logs.redact``). The stored
    entries keep everything, so a replay still has what it needs."""
    from switchboard.logs import redact

    click.echo(redact(text)[:width])  # cut after masking: a cut number would no longer look like one


def _listed_as_json_or_empty(entries: list[dict], as_json: bool, empty: str) -> bool:
    """Print ``entries`` as JSON lines, or say there are none; True if nothing is left to print."""
    if as_json:
        for entry in entries:
            _echo_redacted(json.dumps(entry, default=str, sort_keys=True))
        return True
    if not entries:
        click.echo(empty)
        return True
    return False


def _utc(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(epoch))


@main.group()
def dlq() -> None:
    """Dead letters: list, show, replay (same idempotency keys), purge."""


def _worker_runtime():  # noqa: ANN202 - tasks.runtime.Runtime, imported late (it loads Celery)
    import os

    from switchboard.runner import running_env

    os.environ.update({k: v for k, v in running_env().items() if k not in os.environ})
    from tasks.runtime import runtime

    return runtime()


@dlq.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line, with the full entry.")
@click.option("--target", default=None, help="Only this target (or stage:<name>).")
@click.option("--limit", default=100, show_default=True)
def dlq_list(as_json: bool, target: str | None, limit: int) -> None:
    """List dead letters, oldest first."""
    rt = _worker_runtime()
    entries = rt.dead_letters.list(limit, target=target)
    if _listed_as_json_or_empty(entries, as_json, "no dead letters"):
        return
    click.echo(f"{'ID':<17} {'WHEN (UTC)':<19} {'TARGET':<18} {'ATT':>3}  {'EVENT':<36} ERROR")
    for e in entries:
        when = _utc(e["at"])
        _echo_redacted(f"{e['id']:<17} {when:<19} {e['target']:<18} {e['attempts']:>3}  {e['event_id']:<36} "
                       f"{e['error']}", width=180)
    click.echo(f"{len(entries)} shown, {rt.dead_letters.depth()} in the stream")


@dlq.command("show")
@click.argument("entry_id")
def dlq_show(entry_id: str) -> None:
    """Print one dead letter in full (JSON)."""
    entry = _worker_runtime().dead_letters.get(entry_id)
    if entry is None:
        raise click.ClickException(f"no dead letter {entry_id}")
    _echo_redacted(json.dumps(entry, indent=2, default=str, sort_keys=True))


@dlq.command("replay")
@click.argument("entry_id", required=False)
@click.option("--all", "replay_all", is_flag=True, help="Replay every dead letter (of --target, if given).")
@click.option("--target", default=None, help="With --all: only this target.")
def dlq_replay(entry_id: str | None, replay_all: bool, target: str | None) -> None:
    """Publish dead letters again, with their original idempotency keys."""
    from tasks.replay import replay_entry

    if bool(entry_id) == replay_all:
        raise click.UsageError("give either an ENTRY_ID or --all")
    rt = _worker_runtime()
    if entry_id:
        entry = rt.dead_letters.get(entry_id)
        if entry is None:
            raise click.ClickException(f"no dead letter {entry_id}")
        entries = [entry]
    else:
        entries = rt.dead_letters.list(1_000_000, target=target)
    for entry in entries:
        click.echo(replay_entry(rt, entry))
    click.echo(f"{len(entries)} replayed")


@dlq.command("purge")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def dlq_purge(yes: bool) -> None:
    """Delete every dead letter (their events keep their dead_lettered outcome)."""
    rt = _worker_runtime()
    if not yes:
        click.confirm(f"Delete all {rt.dead_letters.depth()} dead letters?", abort=True)
    click.echo(f"purged {rt.dead_letters.purge()} dead letters")


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def status(as_json: bool) -> None:
    """Queue depths, workers, dead letters, held events and outcome counts."""
    from switchboard.broker import queue_depths
    from switchboard.cli_status import config_audit, config_versions, echo_config_versions, echo_rate_limits
    from switchboard.rate_limit_state import read_schedules
    from tasks.app import ALL_QUEUES, app

    rt = _worker_runtime()
    report: dict = {"queues": {}, "workers": {}, "dead_letters": None, "deferred": None, "events": {}}
    try:
        report["queues"] = queue_depths(app, ALL_QUEUES)
    except Exception as exc:  # noqa: BLE001 - the broker being down is part of the status
        report["queues_error"] = f"broker unreachable: {type(exc).__name__}"
    try:
        active = app.control.inspect(timeout=1.0).active_queues() or {}
        report["workers"] = {name: sorted(q["name"] for q in queues) for name, queues in sorted(active.items())}
    except Exception as exc:  # noqa: BLE001
        report["workers_error"] = f"could not ask the workers: {type(exc).__name__}"
    try:
        report["dead_letters"] = rt.dead_letters.depth()
        report["deferred"] = rt.deferrals.depth()
        report["events"] = rt.ledger.counts()
        report["config_versions"] = config_versions(rt)
        report["config_audit"] = config_audit(rt)
        report["rate_limits"] = read_schedules(rt.redis, rt.keys.prefix, rt.config.vendors["rate_limits"])
    except Exception as exc:  # noqa: BLE001
        report["state_error"] = f"Redis unreachable: {type(exc).__name__}"
    if as_json:
        click.echo(json.dumps(report, sort_keys=True))
        return
    click.echo(f"{'QUEUE':<20} {'READY':>7}  CONSUMED BY")
    for queue, depth in report["queues"].items():
        consumers = [w for w, qs in report["workers"].items() if queue in qs]
        click.echo(f"{queue:<20} {depth:>7}  {', '.join(consumers) or '(no worker!)'}")
    for key in ("queues_error", "workers_error", "state_error"):
        if key in report:
            click.echo(f"! {report[key]}")
    click.echo(f"dead letters: {report['dead_letters']}   held (deferred): {report['deferred']}")
    if report["events"]:
        click.echo("events: " + ", ".join(f"{k} {v}" for k, v in report["events"].items()))
    echo_rate_limits(report.get("rate_limits") or [])
    echo_config_versions(report.get("config_versions"))
    audit = report.get("config_audit") or {}
    if audit.get("entities"):
        click.echo(f"config audit: {audit['entities']} entities paged with the default key (most recent first):")
        for e in audit["recent"]:
            unit = f" unit {e['business_unit']}" if e["business_unit"] else ""
            click.echo(f"  {e['entity_id']:<32} {e['problem']:<22} {e['source']:<8}{unit} x{e['count']} "
                       f"last {_utc(e['last_seen'])}")


@main.group()
def crm() -> None:
    """The customer cache in front of the CRM."""


@crm.command("prefetch")
@click.argument("customer_ids", nargs=-1)
@click.option("--file", "file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Customer ids, one per line (# starts a comment).")
def crm_prefetch(customer_ids: tuple[str, ...], file: Path | None) -> None:
    """Warm the Redis cache with CUSTOMER_IDs' CRM records (fetched whatever is cached)."""
    from tasks.customers import prefetch

    ids = list(customer_ids)
    if file is not None:
        ids += [line.split("#", 1)[0].strip() for line in file.read_text().splitlines()]
    ids = [i for i in ids if i]
    if not ids:
        raise click.UsageError("give CUSTOMER_IDs or --file")
    rt = _worker_runtime()
    if not rt.config.vendors["crm"]["cache_s"]:
        raise click.ClickException("crm.cache_s is 0 in targets.yaml: the cache is off, nothing to warm")
    report = prefetch(rt, ids)
    click.echo(f"fetched {report.found + report.unknown} ({report.found} found, {report.unknown} unknown to the "
               f"CRM), failed {len(report.failed)}" + (f": {', '.join(report.failed)}" if report.failed else ""))
    sys.exit(1 if report.failed else 0)


@main.group()
def deferred() -> None:
    """Events held until a time (maintenance windows)."""


@deferred.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line, with the held data.")
def deferred_list(as_json: bool) -> None:
    """What is held, and until when (soonest release first)."""
    rt = _worker_runtime()
    entries = rt.deferrals.list()
    if _listed_as_json_or_empty(entries, as_json, "nothing is held"):
        return
    click.echo(f"{'RELEASE AT (UTC)':<19} {'EVENT':<36} {'SOURCE':<8} {'ENTITY':<24} REASON")
    for e in entries:
        when = _utc(e["release_at"])
        data = e.get("data") or {}
        click.echo(f"{when:<19} {e['event_id']:<36} {str(data.get('source')):<8} "
                   f"{str(data.get('entity_id'))[:24]:<24} {e['reason']}")
    click.echo(f"{len(entries)} held")


@main.group()
def config() -> None:
    """Configuration commands."""


@config.command("reference")
@click.option("--write", is_flag=True, help="Write docs/configuration.md instead of printing.")
def config_reference(write: bool) -> None:
    """The configuration reference, generated from the schemas (Markdown)."""
    from switchboard.config_reference import DOC_PATH, render_reference

    text = render_reference()
    if write:
        Path(DOC_PATH).write_text(text)
        click.echo(f"wrote {DOC_PATH}")
    else:
        click.echo(text, nl=False)


@config.command("check")
@click.argument("dir_arg", metavar="[DIR]", required=False,
                type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path), default=None)
def config_check(dir_arg: Path | None, directory: Path | None) -> None:
    """Validate the YAML under DIR (default: the configured config/) and name every problem (exit 1)."""
    from switchboard.config_reload import content_version

    directory = dir_arg or directory or load_settings().config_dir
    try:
        cfg = load_config(directory)
    except ConfigError as exc:
        raise click.ClickException(f"invalid configuration:\n{exc}") from exc
    click.echo(f"{directory}: ok ({len(cfg.sources)} sources, {len(cfg.targets)} targets, {len(cfg.rules)} rules; "
               f"version {content_version(directory)})")


@config.command("reload")
def config_reload() -> None:
    """Ask every running process on this Redis (all machines) to reload its config files now."""
    from switchboard.config_watch import request_reload
    from switchboard.store import redis_client

    settings = load_settings()
    try:
        load_config(settings.config_dir)
    except ConfigError as exc:
        click.echo(f"warning: {settings.config_dir} is invalid here; processes reading it keep their config and "
                   f"log:\n{exc}", err=True)
    generation = request_reload(redis_client(settings.redis_url), settings.key_prefix)
    click.echo(f"reload requested (generation {generation}); processes look at their files within about a second "
               "(`switchboard status` shows the version each runs)")


def _register() -> None:
    from switchboard.cli_incidents import incidents
    from switchboard.cli_rabbitmq import rabbitmq_policy

    main.add_command(incidents)
    main.add_command(rabbitmq_policy)


_register()

if __name__ == "__main__":
    main()
