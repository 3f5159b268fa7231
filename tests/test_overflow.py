"""Queue overflow and route options end to end: the Genesys emulator's queue observations set the primary
queue's occupancy; a ZTP event routed to QUEUE_ZTP_PRIMARY becomes a work item in the overflow queue with
priority +1 above 85%, in the primary below it, and in the primary (counted) when statistics fail. The
occupancy is cached in Redis: many concurrent reads make one analytics query. A chat target posts to the
Slack emulator; escalation_minutes sets a work item's dateDue and PagerDuty's custom_details."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import pytest
import redis

from clients.genesys import QUEUE_OBSERVATIONS, GenesysClient
from switchboard.overflow import OCCUPANCY_METRICS, occupancy
from switchboard.store import Keys, redis_client
from switchboard.waiting import wait_for
from tasks.occupancy import cache_key, cached_occupancy
from tests.conftest import REDIS_STATE_URL, _broker_url
from tests.helpers import ROOT, ReceiverServer, WorkerProcess, config_copy, service_env
from tests.posting import Sandbox, post, unique_iot, unique_ztp, wait_outcome

QUEUES = {"QUEUE_ZTP_PRIMARY": "6f1d2c3b-0000-4000-8000-000000000006",
          "QUEUE_ZTP_OVERFLOW": "6f1d2c3b-0000-4000-8000-000000000007",
          "QUEUE_ZTP_L1_VERIFICATION": "6f1d2c3b-0000-4000-8000-000000000002"}
PRIMARY = QUEUES["QUEUE_ZTP_PRIMARY"]
MEDIUM = 50  # targets.yaml genesys_workitem priority for medium (a ZTP TIMEOUT is medium)


def _fetcher(client: GenesysClient, queue_id: str):  # noqa: ANN202 - a test-local closure
    return lambda: occupancy(client.queue_observations([queue_id], OCCUPANCY_METRICS)[queue_id])


def test_many_concurrent_reads_make_one_observation_query(genesys, sb: Sandbox, state_redis: redis.Redis,
                                                          prefix: str) -> None:
    client, _ = genesys
    queue_id = str(uuid.uuid4())
    sb.send("PUT", f"/_sandbox/genesys/queues/{queue_id}", {"oInteracting": 17, "oWaiting": 1, "oOnQueueUsers": 20})
    key = cache_key(prefix, queue_id)
    with ThreadPoolExecutor(max_workers=16) as pool:
        answers = list(pool.map(lambda _: cached_occupancy(state_redis, key, _fetcher(client, queue_id), 30),
                                range(200)))
    assert answers == [pytest.approx(0.9)] * 200
    assert len(sb.requests(QUEUE_OBSERVATIONS)) == 1
    assert 0 < state_redis.pttl(key) <= 30_000  # cached for cache_s, then asked again


def test_a_failed_query_is_unknown_and_cached_too(genesys, sb: Sandbox, state_redis: redis.Redis,
                                                   prefix: str) -> None:
    client, tokens = genesys
    tokens.token()  # the token first, so the scripted fault hits the observation query
    queue_id = str(uuid.uuid4())
    sb.faults("genesys", script=[{"status": 503, "count": 1}])
    key = cache_key(prefix, queue_id)
    answers = [cached_occupancy(state_redis, key, _fetcher(client, queue_id), 30) for _ in range(20)]
    assert answers == [None] * 20  # an analytics outage costs one query per period, not one per dispatch
    assert len(sb.requests(QUEUE_OBSERVATIONS, rejected=True)) == 1


def _forget_occupancy(ctx: dict) -> None:
    redis_client(ctx["env"]["SWITCHBOARD_REDIS_URL"]).delete(cache_key(ctx["keys"].prefix, PRIMARY))


@pytest.fixture
def primary_queue(pipeline: dict, clean_sandbox) -> Iterator[Sandbox]:
    """A reset sandbox and no cached occupancy of the primary queue, before and after (other tests post ZTP
    events through the same pipeline and must not inherit this test's busy queue)."""
    _forget_occupancy(pipeline)
    redis_client(pipeline["env"]["SWITCHBOARD_REDIS_URL"]).delete(f"{pipeline['keys'].prefix}oauth:genesys")
    yield Sandbox(clean_sandbox.url)
    _forget_occupancy(pipeline)


def _workitem(ctx: dict, sb: Sandbox, payload: dict) -> tuple[dict, dict]:
    event_id = post(ctx, "ztp", payload)
    trace = wait_outcome(ctx, event_id)
    assert trace["outcome"] == "dispatched", trace
    [item] = sb.workitems(externalTag=f"switchboard:{event_id}:genesys_workitem")
    return item, trace


def test_overflow_above_85_percent_and_primary_below(pipeline: dict, primary_queue: Sandbox) -> None:
    sb = primary_queue
    sb.send("PUT", f"/_sandbox/genesys/queues/{PRIMARY}", {"oInteracting": 17, "oWaiting": 1, "oOnQueueUsers": 20})
    # three events at once: each overflows, on one analytics query (the others read the cached answer)
    ids = [post(pipeline, "ztp", unique_ztp(provisioning_status="TIMEOUT", error_code=None)) for _ in range(3)]
    for event_id in ids:
        trace = wait_outcome(pipeline, event_id)
        assert trace["outcome"] == "dispatched", trace
        [item] = sb.workitems(externalTag=f"switchboard:{event_id}:genesys_workitem")
        assert item["queueId"] == QUEUES["QUEUE_ZTP_OVERFLOW"] and item["priority"] == MEDIUM + 1
        assert item["skillIds"] == ["9a8b7c6d-0000-4000-8000-000000000001"]  # the route's skills travel along
        assert "overflow: QUEUE_ZTP_PRIMARY occupancy 0.90 > 0.85" in trace["targets"]["genesys_workitem"]["detail"]
    assert len(sb.requests(QUEUE_OBSERVATIONS)) == 1

    _forget_occupancy(pipeline)  # instead of waiting out occupancy_cache_s
    sb.send("PUT", f"/_sandbox/genesys/queues/{PRIMARY}", {"oInteracting": 10, "oWaiting": 0})
    item, trace = _workitem(pipeline, sb, unique_ztp(provisioning_status="TIMEOUT", error_code=None))
    assert item["queueId"] == PRIMARY and item["priority"] == MEDIUM
    assert "QUEUE_ZTP_PRIMARY occupancy 0.50 <= 0.85" in trace["targets"]["genesys_workitem"]["detail"]
    query = sb.requests(QUEUE_OBSERVATIONS)[-1]
    assert query["json"]["filter"]["predicates"] == [{"dimension": "queueId", "value": PRIMARY}]


def test_unreadable_statistics_keep_the_primary_and_are_counted(pipeline: dict, primary_queue: Sandbox) -> None:
    sb = primary_queue
    state = redis_client(pipeline["env"]["SWITCHBOARD_REDIS_URL"])
    counter = pipeline["keys"].counter("occupancy_unknown:QUEUE_ZTP_PRIMARY")
    before = int(state.get(counter) or 0)
    sb.send("PUT", f"/_sandbox/genesys/queues/{PRIMARY}", {"oInteracting": 20, "oOnQueueUsers": 20})
    # The token is fetched by the genesys.token endpoint (its own fault namespace), so the one scripted
    # 503 of the API hits the first API call of the dispatch: the observation query.
    sb.faults("genesys", script=[{"status": 503, "count": 1}])
    item, trace = _workitem(pipeline, sb, unique_ztp(provisioning_status="TIMEOUT", error_code=None))
    assert item["queueId"] == PRIMARY and item["priority"] == MEDIUM
    assert "occupancy of QUEUE_ZTP_PRIMARY unknown: kept it" in trace["targets"]["genesys_workitem"]["detail"]
    assert int(state.get(counter) or 0) == before + 1


def test_routes_without_overflow_never_ask_for_statistics(pipeline: dict, primary_queue: Sandbox) -> None:
    item, _ = _workitem(pipeline, primary_queue, unique_ztp("ztp-success-callback.json"))
    assert item["queueId"] == QUEUES["QUEUE_ZTP_L1_VERIFICATION"]
    assert primary_queue.requests(QUEUE_OBSERVATIONS) == []


@pytest.fixture(scope="module")
def options_stack(run_id: str, sandbox, state_redis: redis.Redis,
                  tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """Receiver + worker with rules that exercise the other route options: a chat target, escalation minutes
    on a work item (dateDue) and on PagerDuty (custom_details), and an explicit work item priority."""
    cleanups: list = []
    broker = _broker_url("rabbitmq", f"routeopts-{uuid.uuid4().hex[:6]}", run_id, cleanups)
    prefix = f"t{run_id}ro{uuid.uuid4().hex[:4]}:"
    rules = ("rules:\n"
             "  - name: test-chat\n    match: {kind: [iot], metric_type: [test_chat]}\n"
             "    targets: [{target: ops_chat, escalation_minutes: 15}]\n"
             "  - name: test-escalation\n    match: {kind: [ztp], state: [IN_PROGRESS]}\n"
             "    targets: [{target: genesys_workitem, queue: QUEUE_ZTP_L1_TRIAGE, escalation_minutes: 7,\n"
             "               workitem_priority: 90, priority_delta: 2},\n"
             "              {target: pagerduty, escalation_minutes: 7}]\n")
    tmp = tmp_path_factory.mktemp("route-options")
    config_dir = config_copy(tmp / "config", {"routing.yaml": [("rules:\n", rules)]})
    env = service_env(broker, REDIS_STATE_URL, sandbox.url, prefix, SWITCHBOARD_CONFIG_DIR=str(config_dir))
    with WorkerProcess(env, tmp) as worker, ReceiverServer(env) as server:
        yield {"env": env, "server": server, "url": server.url, "keys": Keys(prefix), "worker": worker}
    for cleanup in reversed(cleanups):
        cleanup()


def test_a_chat_route_posts_to_the_slack_webhook(options_stack: dict, clean_sandbox) -> None:
    sb = Sandbox(clean_sandbox.url)
    event_id = post(options_stack, "iot", unique_iot(alertType="test_chat"))
    trace = wait_outcome(options_stack, event_id)
    assert trace["outcome"] == "dispatched" and trace["targets"]["ops_chat"]["result"] == "dispatched", trace
    [message] = [m for m in sb.get("/_sandbox/slack/messages") if event_id in m["text"]]
    assert "rule test-chat" in message["text"] and "Escalate if not handled within 15 min." in message["text"]
    assert "+1" not in message["text"]  # no phone number (the customer's is in the CRM, never in the text)


def test_escalation_minutes_set_due_date_and_pagerduty_details(options_stack: dict, clean_sandbox) -> None:
    sb = Sandbox(clean_sandbox.url)
    event_id = post(options_stack, "ztp", unique_ztp(provisioning_status="IN_PROGRESS", error_code=None))
    trace = wait_outcome(options_stack, event_id)
    assert trace["outcome"] == "dispatched", trace
    [item] = sb.workitems(externalTag=f"switchboard:{event_id}:genesys_workitem")
    created = datetime.fromisoformat(item["dateCreated"].replace("Z", "+00:00"))
    due = datetime.fromisoformat(item["dateDue"].replace("Z", "+00:00"))
    assert 6 * 60 - 5 <= (due - created).total_seconds() <= 7 * 60 + 5  # 7 min, not medium's 480
    assert item["priority"] == 92  # workitem_priority 90 + priority_delta 2
    events = wait_for(lambda: [e for e in sb.requests("/v2/enqueue")
                               if e["json"]["payload"]["custom_details"].get("event_id") == event_id], 10, 0.05,
                      "the PagerDuty event")
    assert events[0]["json"]["payload"]["custom_details"]["escalation_minutes"] == 7


def test_seed_config_loads_with_the_overflow_queues() -> None:
    from switchboard.config import load_config

    genesys = load_config(ROOT / "config").vendors["genesys"]
    assert {k: genesys["queues"][k] for k in QUEUES} == QUEUES and genesys["occupancy_cache_s"] == 5
    assert Path(ROOT / "config" / "routing.yaml").read_text().count("QUEUE_ZTP_OVERFLOW") == 1
