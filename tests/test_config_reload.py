"""Live config reload: the holder on its own (injected clock, real files), ``switchboard config check``,
and a real Celery worker that follows SIGHUP, ``switchboard config reload`` and polling without a restart."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import requests
from prometheus_client import REGISTRY

from switchboard.config import load_config
from switchboard.config_reload import ConfigHolder, content_version
from switchboard.config_watch import read_versions, versions_key
from switchboard.sender import post_signed
from switchboard.store import Keys
from switchboard.waiting import wait_for
from tests.conftest import REDIS_STATE_URL, _broker_url
from tests.helpers import ROOT, SECRETS, ReceiverServer, WorkerProcess, config_copy, service_env
from tests.posting import Sandbox, unique_ztp, wait_outcome

QUEUE_IDS = load_config(ROOT / "config").vendors["genesys"]["queues"]
ROUTES_TO = "    targets: [{{target: genesys_workitem, priority: {priority}, queue: {queue}}}]\n"


def probe_rule(queue: str, priority: str = "default", name: str = "reload-probe") -> str:
    """A first rule catching the test's ZTP events (error code RELOADPROBE_*) into ``queue``."""
    return (f"  - name: {name}\n    match: {{kind: [ztp], error_code_regex: \"^RELOADPROBE_\"}}\n"
            + ROUTES_TO.format(priority=priority, queue=queue))


def with_probe(directory: Path, rule: str) -> None:
    """Rewrite routing.yaml: the repository's rules with ``rule`` first (a whole new file, as an editor does)."""
    base = (ROOT / "config" / "routing.yaml").read_text()
    assert "rules:\n" in base
    (directory / "routing.yaml").write_text(base.replace("rules:\n", "rules:\n" + rule, 1))


def reloads(result: str) -> float:
    return REGISTRY.get_sample_value("switchboard_config_reloads_total", {"result": result}) or 0.0


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def cfg_dir(tmp_path: Path) -> Path:
    directory = config_copy(tmp_path / "config")
    with_probe(directory, probe_rule("QUEUE_ZTP_L1_TRIAGE"))
    return directory


def counting_loader(calls: list[Path]):  # noqa: ANN201 - a load_config that counts
    def load(directory: Path):  # noqa: ANN202
        calls.append(directory)
        return load_config(directory)
    return load


# --- the holder on its own ---------------------------------------------------------------------------


def test_a_valid_change_is_swapped_in_at_the_next_poll(cfg_dir: Path) -> None:
    clock = Clock()
    holder = ConfigHolder(cfg_dir, clock=clock)
    old_config, old_version = holder.config, holder.version
    assert holder.poll_s == 5.0 and old_config.rules[0]["targets"][0]["queue"] == "QUEUE_ZTP_L1_TRIAGE"
    with_probe(cfg_dir, probe_rule("QUEUE_ZTP_L2_FIRMWARE"))
    clock.now += 4.9
    assert holder.check() is None and holder.config is old_config  # not due yet
    before = reloads("ok")
    clock.now += 0.2
    assert holder.check() == "ok"
    assert holder.config.rules[0]["targets"][0]["queue"] == "QUEUE_ZTP_L2_FIRMWARE"
    assert holder.version == content_version(cfg_dir) != old_version
    assert reloads("ok") == before + 1


def test_an_invalid_change_keeps_the_old_config_names_file_key_reason_and_is_not_retried(
        cfg_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    clock, calls = Clock(), []
    holder = ConfigHolder(cfg_dir, clock=clock, loader=counting_loader(calls))
    good, version = holder.config, holder.version
    with_probe(cfg_dir, probe_rule("QUEUE_ZTP_L2_FIRMWARE", priority="soon") + "  - match: {}\n"
               "    targets: [{target: pagerduty}]\n")
    before = reloads("invalid")
    clock.now += 5.1
    with caplog.at_level(logging.ERROR, logger="switchboard.config"):
        assert holder.check() == "invalid"
    assert holder.config is good and holder.version == version
    assert reloads("invalid") == before + 1
    [record] = caplog.records
    text = record.getMessage()
    assert f"keeping version {version}" in text
    assert "config/routing.yaml: rules.0.targets.0.priority: Must be one of: critical, default, bulk." in text
    assert "config/routing.yaml: rules.1.name: Missing data for required field." in text  # every problem
    assert len(record.problems) == 2

    for _ in range(5):  # the same broken files: never loaded again, never logged again
        clock.now += 5.1
        assert holder.check() is None
    assert len(calls) == 2 and len(caplog.records) == 1

    with_probe(cfg_dir, probe_rule("QUEUE_ZTP_L2_FIRMWARE"))  # fixed: the next poll takes it
    clock.now += 5.1
    assert holder.check() == "ok" and holder.config.rules[0]["targets"][0]["queue"] == "QUEUE_ZTP_L2_FIRMWARE"


def test_an_unchanged_fingerprint_loads_nothing(cfg_dir: Path) -> None:
    clock, calls = Clock(), []
    holder = ConfigHolder(cfg_dir, clock=clock, loader=counting_loader(calls))
    config = holder.config
    for _ in range(20):
        clock.now += 5.1
        assert holder.current() is config
    assert len(calls) == 1
    os.utime(cfg_dir / "routing.yaml")  # touched: fingerprint moves, content (version) does not
    clock.now += 5.1
    assert holder.check() == "unchanged" and holder.config is config and len(calls) == 1


def test_poll_zero_only_reloads_when_asked_or_the_generation_moves(cfg_dir: Path) -> None:
    service = cfg_dir / "service.yaml"
    service.write_text(service.read_text().replace("config_poll_s: 5 ", "config_poll_s: 0 ", 1))
    clock, generation = Clock(), {"value": "1"}
    holder = ConfigHolder(cfg_dir, clock=clock, generation=lambda: generation["value"])
    with_probe(cfg_dir, probe_rule("QUEUE_ZTP_L2_FIRMWARE"))
    clock.now += 3600
    assert holder.check() is None  # no polling
    holder.request()  # what SIGHUP does in this process
    assert holder.check() == "ok"

    with_probe(cfg_dir, probe_rule("QUEUE_ZTP_L1_VERIFICATION"))
    generation["value"] = "2"  # `switchboard config reload`, or SIGHUP to another process
    clock.now += 0.5
    assert holder.check() is None  # the generation is read at most once a second
    clock.now += 0.6
    assert holder.check() == "ok"
    assert holder.config.rules[0]["targets"][0]["queue"] == "QUEUE_ZTP_L1_VERIFICATION"
    clock.now += 10
    assert holder.check() is None  # the same generation is not a new request


def test_config_check_names_file_key_and_reason_and_exits_1(cfg_dir: Path) -> None:
    def check(directory: Path) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "switchboard.cli", "config", "check", str(directory)],
                              capture_output=True, text=True, timeout=60)

    ok = check(cfg_dir)
    assert ok.returncode == 0 and ": ok (" in ok.stdout and content_version(cfg_dir) in ok.stdout
    with_probe(cfg_dir, probe_rule("QUEUE_ZTP_L2_FIRMWARE", priority="soon")
               + "  - match: {}\n    targets: [{target: pagrduty}]\n")
    bad = check(cfg_dir)
    assert bad.returncode == 1, bad
    assert "routing.yaml: rules.0.targets.0.priority: Must be one of: critical, default, bulk." in bad.stderr
    assert "routing.yaml: rules.1.name: Missing data for required field." in bad.stderr


def test_version_reports_of_gone_processes_are_dropped(state_redis: redis.Redis, run_id: str) -> None:
    prefix = f"t{run_id}vr{uuid.uuid4().hex[:4]}:"
    now = 1_000_000.0
    state_redis.hset(versions_key(prefix), mapping={
        "h:1": json.dumps({"version": "a", "role": "worker", "seen": now - 5}),
        "h:2": json.dumps({"version": "a", "role": "worker", "seen": now - 121}),  # no refresh for 2 min
        "h:3": "not json"})
    try:
        assert read_versions(state_redis, prefix, now) == [{"process": "h:1", "version": "a", "role": "worker",
                                                             "seen": now - 5}]
        assert list(state_redis.hkeys(versions_key(prefix))) == ["h:1"]
    finally:
        state_redis.delete(versions_key(prefix))


# --- a real worker -------------------------------------------------------------------------------------


@pytest.fixture
def reload_stack(request: pytest.FixtureRequest, run_id: str, sandbox, state_redis: redis.Redis,
                 tmp_path: Path) -> Iterator[dict]:
    """Receiver + a 2-process worker on their own RabbitMQ vhost and key prefix, routing the probe events
    to QUEUE_ZTP_L1_TRIAGE, polling the files every ``request.param`` seconds (0: never)."""
    cleanups: list = []
    broker = _broker_url("rabbitmq", f"reload-{uuid.uuid4().hex[:6]}", run_id, cleanups)
    prefix = f"t{run_id}cfg{uuid.uuid4().hex[:4]}:"
    config_dir = config_copy(tmp_path / "config", {
        "service.yaml": [("config_poll_s: 5 ", f"config_poll_s: {request.param} ")]})
    with_probe(config_dir, probe_rule("QUEUE_ZTP_L1_TRIAGE"))
    env = service_env(broker, REDIS_STATE_URL, sandbox.url, prefix, SWITCHBOARD_CONFIG_DIR=str(config_dir))
    with WorkerProcess(env, tmp_path) as worker, ReceiverServer(env) as server:
        yield {"env": env, "server": server, "url": server.url, "keys": Keys(prefix), "worker": worker,
               "config_dir": config_dir, "redis": state_redis, "prefix": prefix,
               "ztp": load_config(config_dir).sources["ztp"]}
    for key in state_redis.scan_iter(f"{prefix}*"):
        state_redis.delete(key)
    for cleanup in reversed(cleanups):
        cleanup()


def worker_versions(ctx: dict, version: str) -> dict[str, str] | None:
    """{process: version} of the worker's main process and both pool children, once all run ``version``."""
    running = {p["process"]: p["version"] for p in read_versions(ctx["redis"], ctx["prefix"])
               if p["role"] in ("worker-main", "worker")}
    return running if len(running) == 3 and set(running.values()) == {version} else None


def routed_queue(ctx: dict, sb: Sandbox) -> str:
    """Post a probe event; the queue id its Genesys work item was filed in. (Signed with the ztp source
    config read at start: ``tests.posting.post`` reads the directory, which a test may have broken.)"""
    body = json.dumps(unique_ztp(error_code=f"RELOADPROBE_{uuid.uuid4().hex[:6]}")).encode()
    rid = uuid.uuid4().hex
    answer = post_signed(ctx["url"], "ztp", ctx["ztp"], body, SECRETS["SWITCHBOARD_SECRET_ZTP"], request_id=rid,
                         msg_id=f"msg_{rid}")
    assert answer.status_code == 202, answer.text
    event_id = answer.json()["event_id"]
    trace = wait_outcome(ctx, event_id)
    assert trace["outcome"] == "dispatched", trace
    [item] = sb.workitems(externalTag=f"switchboard:{event_id}:genesys_workitem")
    return item["queueId"]


def routed_by_the_shipped_rules(ctx: dict, sb: Sandbox) -> dict[str, str]:
    """Wait until every process reports the files' version and check a probe still goes to L1 triage."""
    first = wait_for(lambda: worker_versions(ctx, content_version(ctx["config_dir"])), 30, 0.1, "versions reported")
    assert routed_queue(ctx, sb) == QUEUE_IDS["QUEUE_ZTP_L1_TRIAGE"]
    return first


@pytest.mark.parametrize("reload_stack", [0], indirect=True)
def test_sighup_reloads_every_worker_process_without_a_restart(reload_stack: dict, clean_sandbox) -> None:
    ctx, sb, worker = reload_stack, Sandbox(clean_sandbox.url), reload_stack["worker"]
    first = routed_by_the_shipped_rules(ctx, sb)

    with_probe(ctx["config_dir"], probe_rule("QUEUE_ZTP_L2_FIRMWARE"))
    version_b = content_version(ctx["config_dir"])
    os.kill(worker.proc.pid, signal.SIGHUP)
    second = wait_for(lambda: worker_versions(ctx, version_b), 30, 0.1, "every worker process on version B")
    assert set(second) == set(first)  # the same main process and the same pool children: nothing restarted
    assert worker.proc.poll() is None and f":{worker.proc.pid}" in " ".join(second)
    assert routed_queue(ctx, sb) == QUEUE_IDS["QUEUE_ZTP_L2_FIRMWARE"]
    log = worker.log_path.read_text()
    assert "Restarting celery worker" not in log and log.count(f"config reloaded: version {version_b}") == 3

    # an invalid file: every process says what is wrong and keeps routing per version B
    with_probe(ctx["config_dir"], probe_rule("QUEUE_ZTP_L1_VERIFICATION", priority="soon"))
    os.kill(worker.proc.pid, signal.SIGHUP)
    problem = "routing.yaml: rules.0.targets.0.priority: Must be one of: critical, default, bulk."

    def rejected() -> list[dict]:
        return [json.loads(line) for line in worker.log_path.read_text().splitlines() if problem in line]

    wait_for(lambda: len(rejected()) >= 3, 30, 0.1, "the error in every process")
    assert len(rejected()) == 3 and {r["level"] for r in rejected()} == {"ERROR"}
    assert all(f"keeping version {version_b}" in r["message"] for r in rejected())
    assert worker_versions(ctx, version_b) and routed_queue(ctx, sb) == QUEUE_IDS["QUEUE_ZTP_L2_FIRMWARE"]

    # fixed, and passed on with `switchboard config reload` (no signal): every process follows
    with_probe(ctx["config_dir"], probe_rule("QUEUE_ZTP_L1_VERIFICATION"))
    version_c = content_version(ctx["config_dir"])
    out = subprocess.run([sys.executable, "-m", "switchboard.cli", "config", "reload"], env=ctx["env"],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    assert "reload requested (generation" in out
    assert set(wait_for(lambda: worker_versions(ctx, version_c), 30, 0.1, "version C")) == set(first)
    assert routed_queue(ctx, sb) == QUEUE_IDS["QUEUE_ZTP_L1_VERIFICATION"]

    # SIGHUP to the whole process group (as `kill -HUP -<pgid>` or a service manager may send it): by
    # default it would end the pool children; they ignore it and follow the main process's request
    with_probe(ctx["config_dir"], probe_rule("QUEUE_ZTP_L1_TRIAGE", name="reload-probe-d"))
    version_d = content_version(ctx["config_dir"])
    os.killpg(worker.proc.pid, signal.SIGHUP)
    assert set(wait_for(lambda: worker_versions(ctx, version_d), 30, 0.1, "version D")) == set(first)
    assert "exited with" not in worker.log_path.read_text()  # no child died and was replaced

    status = json.loads(subprocess.run([sys.executable, "-m", "switchboard.cli", "status", "--json"],
                                       env=ctx["env"], capture_output=True, text=True, timeout=60,
                                       check=True).stdout)
    assert status["config_versions"]["files_here"] == version_d
    assert {p["process"] for p in status["config_versions"]["processes"] if p["version"] == version_d} >= set(first)


@pytest.mark.parametrize("reload_stack", [0.3], indirect=True)
def test_polling_picks_up_a_change_without_any_signal(reload_stack: dict, clean_sandbox) -> None:
    ctx, sb, worker = reload_stack, Sandbox(clean_sandbox.url), reload_stack["worker"]
    first = routed_by_the_shipped_rules(ctx, sb)
    with_probe(ctx["config_dir"], probe_rule("QUEUE_ZTP_L2_FIRMWARE"))
    second = wait_for(lambda: worker_versions(ctx, content_version(ctx["config_dir"])), 30, 0.1, "polled reload")
    assert set(second) == set(first) and worker.proc.poll() is None
    assert routed_queue(ctx, sb) == QUEUE_IDS["QUEUE_ZTP_L2_FIRMWARE"]
    assert ctx["redis"].ttl(versions_key(ctx["prefix"])) > 0  # the report hash cleans itself up


@pytest.mark.parametrize("reload_stack", [0], indirect=True)
def test_sighup_to_beat_keeps_it_running_and_reloads_every_process(reload_stack: dict, tmp_path: Path) -> None:
    ctx = reload_stack
    cmd = [sys.executable, "-m", "celery", "-A", "tasks.app", "beat", "-l", "info", "-s", str(tmp_path / "beat-db")]
    with (tmp_path / "beat.log").open("a") as log:
        beat = subprocess.Popen(cmd, env=ctx["env"], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        try:
            def beat_on(version: str) -> bool:
                return any(p["role"] == "beat" and p["version"] == version and p["process"].endswith(f":{beat.pid}")
                           for p in read_versions(ctx["redis"], ctx["prefix"]))

            wait_for(lambda: beat_on(content_version(ctx["config_dir"])), 30, 0.1, "beat reporting its version")
            with_probe(ctx["config_dir"], probe_rule("QUEUE_ZTP_L2_FIRMWARE"))
            version_b = content_version(ctx["config_dir"])
            beat.send_signal(signal.SIGHUP)  # by default SIGHUP would end beat
            wait_for(lambda: beat_on(version_b) and worker_versions(ctx, version_b), 30, 0.1, "all on version B")
            assert beat.poll() is None
        finally:
            beat.terminate()
            beat.wait(timeout=20)


def test_the_receiver_follows_a_change_before_its_next_request(run_id: str, sandbox, state_redis: redis.Redis,
                                                               tmp_path: Path) -> None:
    prefix = f"t{run_id}rcv{uuid.uuid4().hex[:4]}:"
    config_dir = config_copy(tmp_path / "config", {"service.yaml": [("config_poll_s: 5 ", "config_poll_s: 0.2 ")]})
    env = service_env("memory://", REDIS_STATE_URL, sandbox.url, prefix, SWITCHBOARD_CONFIG_DIR=str(config_dir))
    body = json.dumps({"padding": "x" * 2000}).encode()
    try:
        with ReceiverServer(env) as server:
            def answer() -> int:
                return requests.post(f"{server.url}/webhooks/ztp", data=body, timeout=10,
                                     headers={"Content-Type": "application/json"}).status_code

            assert answer() == 401  # within the size limit; unsigned
            sources = config_dir / "sources.yaml"
            text = sources.read_text()
            ztp = text.index("  ztp:\n")
            sources.write_text(text[:ztp] + text[ztp:].replace("max_body_bytes: 65536", "max_body_bytes: 1024", 1))
            wait_for(lambda: answer() == 413, 10, 0.05, "the new size limit")
            [entry] = [p for p in read_versions(state_redis, prefix) if p["role"] == "receiver"]
            assert entry["version"] == content_version(config_dir)
    finally:
        state_redis.delete(versions_key(prefix))
