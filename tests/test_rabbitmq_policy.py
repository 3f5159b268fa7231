"""`switchboard rabbitmq-policy`: the queue-version policy matches our four queues and no one else's, and
applied on this machine's RabbitMQ it converts queues already holding messages in place."""

from __future__ import annotations

import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kombu import Connection, Exchange, Queue

from switchboard.rabbitmq_policy import POLICY_NAME, queues_pattern, set_policy_args
from tasks.app import ALL_QUEUES
from tests.conftest import own_broker
from tests.helpers import service_env

ROOT = Path(__file__).resolve().parent.parent


def test_pattern_matches_exactly_our_queues() -> None:
    pattern = re.compile(queues_pattern(ALL_QUEUES))
    assert all(pattern.fullmatch(name) for name in ALL_QUEUES)
    # the dot is literal, the name whole: another application's queues on the vhost keep their own settings
    for other in ("dispatchXdefault", "ingest2", "my.ingest", "dispatch.default.dlq", "celeryev.1234", ""):
        assert not pattern.search(other), other


def test_priority_and_vhost_reach_rabbitmqctl() -> None:
    args = set_policy_args("sb/prod", ALL_QUEUES, priority=7)
    assert args[:3] == ["set_policy", "-p", "sb/prod"]
    assert args[args.index("--priority") + 1] == "7"
    assert args[-3:] == [POLICY_NAME, queues_pattern(ALL_QUEUES), '{"queue-version":2}']


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "switchboard.cli", "rabbitmq-policy", *args], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture
def vhost_url(run_id: str) -> Iterator[str]:
    cleanups: list = []
    yield own_broker("rabbitmq", 0, f"policy{uuid.uuid4().hex[:6]}", run_id, cleanups)
    for cleanup in reversed(cleanups):
        cleanup()


def _policies(vhost: str) -> dict[str, str]:
    out = subprocess.run(["rabbitmqctl", "-q", "list_queues", "-p", vhost, "--no-table-headers", "name", "policy"],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    return {parts[0]: (parts[1] if len(parts) > 1 else "") for parts in (line.split() for line in out.splitlines())
            if parts}


def test_apply_converts_our_queues_in_place(vhost_url: str, tmp_path: Path) -> None:
    vhost = vhost_url.rsplit("/", 1)[1]
    with Connection(vhost_url) as conn:
        channel = conn.channel()
        for name in (*ALL_QUEUES, "other-app"):
            Queue(name)(channel).declare()
        producer = conn.Producer(channel)
        for n in range(3):
            producer.publish({"n": n}, exchange=Exchange(""), routing_key="ingest", delivery_mode=2)
    env = service_env(vhost_url, "redis://127.0.0.1:6379/11", "http://127.0.0.1:9", f"tpolicy{uuid.uuid4().hex[:6]}:")

    printed = _cli(env)
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout.startswith(f"rabbitmqctl set_policy -p {vhost} ")
    assert _policies(vhost) == dict.fromkeys((*ALL_QUEUES, "other-app"), "")  # printing applies nothing

    applied = _cli(env, "--apply")
    assert applied.returncode == 0, applied.stderr
    deadline = time.monotonic() + 30
    while (policies := _policies(vhost)) != {**dict.fromkeys(ALL_QUEUES, POLICY_NAME), "other-app": ""}:
        assert time.monotonic() < deadline, policies
        time.sleep(0.2)
    with Connection(vhost_url) as conn:
        depth = conn.channel().queue_declare(queue="ingest", passive=True).message_count
        assert depth == 3  # the queue's messages survive its conversion to version 2
        # and a declaration without arguments (every worker's and receiver's) still matches the queue
        Queue("ingest")(conn.channel()).declare()


def test_redis_broker_is_refused_without_a_vhost() -> None:
    env = service_env("redis://127.0.0.1:6379/9", "redis://127.0.0.1:6379/11", "http://127.0.0.1:9", "tpolicy:")
    refused = _cli(env)
    assert refused.returncode == 1
    assert "not RabbitMQ" in refused.stderr
    given = _cli(env, "--vhost", "/")
    assert given.returncode == 0 and given.stdout.startswith("rabbitmqctl set_policy -p / ")


@pytest.mark.parametrize("version", [1, 2])
def test_the_bench_vhost_sets_the_policy_unless_asked_for_version_1(version: int) -> None:
    from bench.stack import RabbitVhost

    with RabbitVhost(queue_version=version) as vhost:
        listed = subprocess.run(["rabbitmqctl", "-q", "list_policies", "-p", vhost.name, "--no-table-headers"],
                                capture_output=True, text=True, timeout=60, check=True).stdout
        assert (POLICY_NAME in listed) == (version == 2), listed
        assert ('{"queue-version":2}' in listed) == (version == 2), listed
