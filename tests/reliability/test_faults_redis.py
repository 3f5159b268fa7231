"""Fault: the Redis server stopped under steady load (SIGTERM, as a service manager restarts it) and
started again on the same port once senders have been told 503. A dedicated redis-server on a free port,
persisting every write (appendonly, appendfsync always) as a production store would.

While it is down the receiver answers 503 + Retry-After (never a 500, never past its timeout) and the
senders' retries are accepted once it is back; a task that meets the store down hands its message back
to the broker (tasks/store_outage.py) instead of failing, which would acknowledge it.

Two deployments: Redis as the state store with RabbitMQ as broker, and Redis as store AND broker. Nothing
may be lost in either. With Redis as the broker this took three fixes: kombu 5.7 killed the worker when its
broker connection dropped, and dropped a message taken just as Redis went away (tasks/kombu_fixes.py); and
an event accepted just before Redis went away was neither published nor released, so the sender's retry
was a "duplicate" of an event in no queue (webhook_app/late_publish.py). A third deployment puts broker and
store in one Redis database, where the receiver's gate script also enqueues the event (tasks/redis_push.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from switchboard.waiting import wait_for
from tests.helpers import ReceiverServer
from tests.reliability.accounting import Report, assert_holds, settle_and_check
from tests.reliability.load import LoadGenerator
from tests.reliability.scenario import load, worker
from tests.reliability.stack import RedisServer, build_stack
from vendor_sandbox.server import SandboxServer


def _restart_scenario(sandbox: SandboxServer, tmp_path: Path, broker: str,
                      one_database: bool = False) -> tuple[Report, LoadGenerator]:
    with RedisServer(tmp_path / "redis") as server:
        broker_url = f"{server.url}/{1 if one_database else 0}" if broker == "redis" else None
        stack = build_stack(tmp_path, broker, sandbox.url, redis_url=f"{server.url}/1", broker_url=broker_url)
        try:
            for vendor in ("pagerduty", "genesys"):
                stack.sandbox.faults(vendor, latency_after_ms=100)  # calls in flight when Redis goes
            with ReceiverServer(stack.env) as receiver:
                assert (receiver.state.push_builder is not None) is one_database
                current = worker(stack)
                try:
                    gen = load(receiver.url, stack, max_duration_s=8, max_events=160).start()
                    wait_for(lambda: len(gen.events) >= 40, 10, 0.02, "load under way")
                    server.stop()
                    # down until the senders have been told 503 a few times, then back on the same port
                    wait_for(lambda: gen.statuses().get(503, 0) >= 5, 15, 0.02, "503 answers while Redis is down")
                    server.start()
                    gen.join()
                    for vendor in ("pagerduty", "genesys"):
                        stack.sandbox.send("DELETE", f"/_sandbox/faults/{vendor}")
                    name = f"Redis restart (store; broker {broker}{', one database' if one_database else ''})"
                    report = settle_and_check(stack, gen, name, timeout=60 if broker == "redis" else 90)
                finally:
                    current.__exit__(None, None, None)
            return report, gen
        finally:
            stack.close()


def test_redis_store_restart_with_rabbitmq_broker(fault_sandbox: SandboxServer, tmp_path: Path) -> None:
    report, gen = _restart_scenario(fault_sandbox, tmp_path, "rabbitmq")
    gen.assert_only_allowed_answers()
    assert gen.statuses()[503] >= 5
    assert_holds(report)


@pytest.mark.timeout(240)
def test_redis_store_and_broker_restart(fault_sandbox: SandboxServer, tmp_path: Path) -> None:
    report, gen = _restart_scenario(fault_sandbox, tmp_path, "redis")
    gen.assert_only_allowed_answers()
    assert gen.statuses()[503] >= 5
    assert_holds(report)


@pytest.mark.timeout(240)
def test_redis_store_and_broker_in_one_database_restart(fault_sandbox: SandboxServer, tmp_path: Path) -> None:
    """The receiver's gate pushes the ingest message itself (tasks/redis_push.py): an event is accepted and
    enqueued in one script, so nothing is held for a late publish, and still nothing is lost."""
    report, gen = _restart_scenario(fault_sandbox, tmp_path, "redis", one_database=True)
    gen.assert_only_allowed_answers()
    assert gen.statuses()[503] >= 5
    assert_holds(report)
