"""Queue-occupancy throttle for proactive calls: while the Genesys callback queue is above 80% occupancy,
critical calls go ahead, default ones are slowed then become work items, bulk ones become work items at once;
a quiet queue gets its calls. Pure decisions, then end to end through a worker and the Genesys emulator."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from switchboard.call_throttle import decide
from tests.posting import Sandbox, post, sample, wait_outcome

CFG = {"above": 0.8, "slow_s": 30.0, "max_slowdowns": 3}


@pytest.mark.parametrize(("occupancy", "priority", "slowed", "action"), [
    (None, "bulk", 0, "call"),          # statistics unknown: call
    (0.8, "bulk", 0, "call"),           # at the threshold: call
    (0.95, "critical", 9, "call"),      # critical always calls
    (0.95, "bulk", 0, "workitem"),
    (0.95, "default", 0, "slow"),
    (0.95, "default", 2, "slow"),
    (0.95, "default", 3, "workitem"),   # slowed max_slowdowns times: a work item
])
def test_decision_table(occupancy: float | None, priority: str, slowed: int, action: str) -> None:
    assert decide(occupancy, priority, slowed, CFG).action == action


def _zone_at_local_hour(hour: int) -> str:
    offset = (hour - datetime.now(UTC).hour + 12) % 24 - 12
    return f"Etc/GMT{'-' if offset >= 0 else '+'}{abs(offset)}"


@pytest.fixture
def callback_queue(pipeline: dict, clean_sandbox, state_redis) -> Iterator[tuple[Sandbox, str]]:
    """The callback queue's id; left idle and uncached afterwards (other tests share this worker)."""
    from switchboard.config import load_config
    from tasks.occupancy import cache_key

    config = load_config(pipeline["config_dir"])
    queue_id = config.vendors["genesys"]["queues"][config.targets["iot_call"]["call"]["queue"]]
    sb = Sandbox(clean_sandbox.url)

    def set_occupancy(interacting: int, waiting: int, on_queue: int) -> None:
        sb.send("PUT", f"/_sandbox/genesys/queues/{queue_id}",
                {"oInteracting": interacting, "oWaiting": waiting, "oOnQueueUsers": on_queue})
        state_redis.delete(cache_key(pipeline["keys"].prefix, queue_id))

    yield sb, set_occupancy
    set_occupancy(0, 0, 10)


def _iot(pipeline: dict, sb: Sandbox, metric: str) -> str:
    customer = f"CUST-{uuid.uuid4().hex[:8]}"
    sb.send("PUT", f"/_sandbox/crm/customers/{customer}",
            {"phone": "+15551239999", "doNotDisturb": False, "name": "Test", "timezone": _zone_at_local_hour(11)})
    return post(pipeline, "iot", sample("iot-temp-critical.json", alertType=metric, customerId=customer,
                                        sensorId=f"sensor-{uuid.uuid4().hex[:8]}",
                                        idempotencyKey=uuid.uuid4().hex))


def test_a_busy_queue_slows_and_diverts_non_critical_calls(pipeline: dict, callback_queue) -> None:
    sb, set_occupancy = callback_queue
    set_occupancy(9, 1, 10)  # (9 + 1) / 10 = 1.0 > 0.8
    critical, default, bulk = (_iot(pipeline, sb, m) for m in ("temp_critical", "test_default_call", "test_bulk_call"))
    traces = {name: wait_outcome(pipeline, e, timeout=60)
              for name, e in (("critical", critical), ("default", default), ("bulk", bulk))}
    assert all(t["outcome"] == "dispatched" for t in traces.values()), traces
    callbacks = {c["data"].get("event_id") for c in sb.get("/_sandbox/genesys/callbacks")}
    assert critical in callbacks and default not in callbacks and bulk not in callbacks
    for name, event_id in (("default", default), ("bulk", bulk)):
        [item] = sb.workitems(externalTag=f"switchboard:{event_id}:iot_call")
        assert "[occupancy]" in traces[name]["targets"]["iot_call"]["detail"]
    slowed = [s for s in traces["default"]["stages"] if s.get("result") == "slowed"]
    assert len(slowed) == 2 and "queue occupancy 1.00 above 0.8" in slowed[0]["reason"]
    assert not [s for s in traces["bulk"]["stages"] if s.get("result") == "slowed"]
    assert not [s for s in traces["critical"]["stages"] if s.get("result") == "slowed"]


def test_a_quiet_queue_gets_its_calls(pipeline: dict, callback_queue) -> None:
    sb, set_occupancy = callback_queue
    set_occupancy(3, 0, 10)
    event_id = _iot(pipeline, sb, "test_default_call")
    trace = wait_outcome(pipeline, event_id)
    assert trace["outcome"] == "dispatched" and trace["targets"]["iot_call"]["detail"].startswith("callback")
