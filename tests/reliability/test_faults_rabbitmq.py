"""Fault: RabbitMQ (the broker) goes away for our service under steady load, then comes back.

Two scenarios. The restart: a dedicated RabbitMQ node (its own ports and data directory; restarting the
machine's node would break every other test using it) is stopped under load, as a restart would, and
started again on the same data once senders have been told 503: queues are durable and messages
persistent, so what the broker confirmed is still there, and what a worker held unacknowledged is
queued again. The vhost outage, on the machine's node: the scenario takes only its own vhost down:
``set_vhost_limits max-connections 0`` (no new connection is admitted) and
``close_all_connections --vhost`` (every open one - receiver publishers, worker consumers - is closed by
the broker, as at a broker restart), held until senders have been told 503, then the limit is lifted.
What this exercises: every client losing its connection at once and reconnecting; unacknowledged
messages requeued by the broker and redelivered (tasks caught mid-run finish, cannot ack, and run again:
dispatch state makes that act once); publishes refused (receiver: 503; a task's own publishes wait, see
task_publish_retry_policy). Not exercised: loss of non-durable state inside RabbitMQ (queues are durable)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from switchboard.waiting import wait_for
from tests.helpers import ReceiverServer
from tests.reliability.accounting import assert_holds, settle_and_check
from tests.reliability.load import LoadGenerator
from tests.reliability.scenario import load, worker
from tests.reliability.stack import RabbitMQServer, Stack, build_stack, rabbitmqctl
from vendor_sandbox.server import SandboxServer

log = logging.getLogger(__name__)


def _outage_scenario(stack: Stack, outage: Callable[[LoadGenerator], None], name: str, *, events: int,
                     duration_s: float, drain_s: float = 90) -> None:
    """Steady load, ``outage`` once it is under way (it returns when the broker is back), then the invariant."""
    for vendor in ("pagerduty", "genesys"):
        stack.sandbox.faults(vendor, latency_after_ms=100)  # tasks mid-call when the broker goes
    with ReceiverServer(stack.env) as receiver:
        current = worker(stack)
        try:
            gen = load(receiver.url, stack, max_duration_s=duration_s, max_events=events).start()
            wait_for(lambda: len(gen.events) >= 40, 10, 0.02, "load under way")
            outage(gen)
            gen.join()
            for vendor in ("pagerduty", "genesys"):
                stack.sandbox.send("DELETE", f"/_sandbox/faults/{vendor}")
            report = settle_and_check(stack, gen, name, timeout=drain_s)
        finally:
            current.__exit__(None, None, None)
    gen.assert_only_allowed_answers()
    assert gen.statuses()[503] >= 5
    assert_holds(report)


def _told_503(gen: LoadGenerator, timeout: float) -> None:
    wait_for(lambda: gen.statuses().get(503, 0) >= 5, timeout, 0.05, "503 answers while the broker is away")


def test_rabbitmq_outage_under_load(fault_sandbox: SandboxServer, tmp_path: Path) -> None:
    stack = build_stack(tmp_path, "rabbitmq", fault_sandbox.url)

    def vhost_outage(gen: LoadGenerator) -> None:
        rabbitmqctl("set_vhost_limits", "-p", stack.vhost, '{"max-connections": 0}')
        try:
            rabbitmqctl("close_all_connections", "--vhost", stack.vhost, "reliability: broker outage")
            _told_503(gen, 15)
        finally:
            rabbitmqctl("clear_vhost_limits", "-p", stack.vhost)
    try:
        _outage_scenario(stack, vhost_outage, "RabbitMQ outage (vhost connections closed + refused)", events=160,
                         duration_s=8)
    finally:
        stack.close()


@pytest.mark.timeout(300)
def test_rabbitmq_restart_under_load(fault_sandbox: SandboxServer, tmp_path: Path) -> None:
    with RabbitMQServer() as node:
        stack = build_stack(tmp_path, "rabbitmq", fault_sandbox.url, broker_url=node.url)
        stack.node = node

        def restart(gen: LoadGenerator) -> None:
            started = time.monotonic()
            stopping = threading.Thread(target=node.stop)  # `rabbitmqctl stop` takes seconds
            stopping.start()
            _told_503(gen, 30)
            stopping.join(60)
            down_s = time.monotonic() - started
            node.start()
            log.warning("RabbitMQ node down for %.1f s, back after %.1f s", down_s, time.monotonic() - started)
        try:
            _outage_scenario(stack, restart, "RabbitMQ restart (dedicated node stopped and started)", events=200,
                             duration_s=12, drain_s=120)
        finally:
            stack.close()
