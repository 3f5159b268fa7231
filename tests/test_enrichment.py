"""Enrichment: the pure stage (mapped, unmapped, routing-key variable unset), the customer cache shared by
enrich and dispatch against real Redis and the CRM emulator (a hit never calls the CRM, a miss once, a CRM
failure never stops the event), `switchboard crm prefetch`, and the config audit through a real worker
(default key at PagerDuty, counter, Redis record in `switchboard status`, one chat message per entity)."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import requests
from prometheus_client import REGISTRY

from clients.crm import CRMClient
from clients.http import VendorError
from switchboard.config import load_config
from switchboard.config_audit import ConfigAudit
from switchboard.customer_cache import UNKNOWN_TTL_S, CustomerCache
from switchboard.runner import free_port
from switchboard.stages import StageContext
from switchboard.stages.enrich import ROUTING_KEY_ENV_UNSET, UNMAPPED_ENTITY, enrich
from switchboard.store import Keys
from switchboard.waiting import wait_for
from tasks.enrichment import audit_text
from tests.conftest import REDIS_STATE_URL, _broker_url
from tests.helpers import ROOT, SECRETS, ReceiverServer, WorkerProcess, config_copy, service_env
from tests.posting import Sandbox, post, sample, unique_iot, wait_outcome
from tests.test_metrics import scrape, value
from vendor_sandbox.credentials import CRM_TOKEN

CONFIG = load_config(ROOT / "config")
ENV = {k: v for k, v in SECRETS.items() if k.startswith("SWITCHBOARD_PD_KEY_")}


def _alert(entity_id: str) -> dict:
    return {"event_id": "e1", "source": "genesys", "entity_id": entity_id, "severity": "critical"}


# --- the pure stage --------------------------------------------------------------------------------------


def test_mapped_entity_gets_its_units_routing_key_name_and_links() -> None:
    out = enrich(_alert("trunk-us-east-01"), StageContext(config=CONFIG, env=ENV))
    assert out["business_impact"] == "voice-network"
    assert out["routing_key_env"] == "SWITCHBOARD_PD_KEY_VOICE_NETWORK"
    assert out["entity_name"] == "US East SIP trunk"
    assert out["links"] == [{"href": "https://grafana.example.com/d/trunks?var-trunk=trunk-us-east-01",
                             "text": "Trunk dashboard"}]
    assert "config_audit" not in out


def test_unmapped_entity_pages_with_the_default_key_and_names_the_problem() -> None:
    out = enrich(_alert("trunk-nobody-mapped"), StageContext(config=CONFIG, env=ENV))
    assert out["business_impact"] == "unmapped"
    assert out["routing_key_env"] == "SWITCHBOARD_PD_KEY_DEFAULT"
    assert out["links"] == []
    assert out["config_audit"] == {"problem": UNMAPPED_ENTITY}
    assert "trunk-nobody-mapped" in audit_text(out) and "mappings.yaml" in audit_text(out)


def test_unit_whose_routing_key_variable_is_unset_pages_with_the_default_key() -> None:
    env = {k: v for k, v in ENV.items() if k != "SWITCHBOARD_PD_KEY_VOICE_NETWORK"}
    out = enrich(_alert("trunk-us-east-01"), StageContext(config=CONFIG, env=env))
    assert out["business_impact"] == "unmapped"
    assert out["routing_key_env"] == "SWITCHBOARD_PD_KEY_DEFAULT"
    assert out["links"][0]["href"].endswith("var-trunk=trunk-us-east-01")  # diagnostics are still useful
    assert out["config_audit"] == {"problem": ROUTING_KEY_ENV_UNSET, "business_unit": "voice-network",
                                   "routing_key_env": "SWITCHBOARD_PD_KEY_VOICE_NETWORK"}
    text = audit_text(out)
    assert "SWITCHBOARD_PD_KEY_VOICE_NETWORK" in text and "voice-network" in text
    assert not any(secret in text for secret in ENV.values())  # variable names only, never a key


def test_an_alert_without_an_entity_is_unmapped_not_an_error() -> None:
    out = enrich({"event_id": "e1", "source": "generic"}, StageContext(config=CONFIG, env=ENV))
    assert out["business_impact"] == "unmapped" and out["config_audit"]["problem"] == UNMAPPED_ENTITY


# --- the customer cache against real Redis and the CRM emulator --------------------------------------------


def _crm_requests(sb: Sandbox, customer: str) -> list[dict]:
    return [r for r in sb.requests(rejected=True) if r["vendor"] == "crm" and r["path"].endswith(f"/{customer}")]


def _put_customer(sb: Sandbox, **record: object) -> str:
    customer = f"CUST-{uuid.uuid4().hex[:8]}"
    sb.send("PUT", f"/_sandbox/crm/customers/{customer}",
            {"phone": "+15551230077", "timezone": "Europe/London", "doNotDisturb": False, "name": "Depot", **record})
    return customer


def _count(caller: str, result: str) -> float:
    return REGISTRY.get_sample_value("switchboard_crm_cache_total", {"caller": caller, "result": result}) or 0.0


def test_a_miss_asks_the_crm_once_and_a_hit_never(sb: Sandbox, state_redis: redis.Redis, prefix: str) -> None:
    customer = _put_customer(sb)
    cache = CustomerCache(state_redis, prefix, 300)
    crm = CRMClient(sb.url, CRM_TOKEN)
    hits, misses = _count("test", "hit"), _count("test", "miss")
    first = cache.lookup(customer, crm.customer, caller="test")
    again = cache.lookup(customer, crm.customer, caller="test")
    assert first == again and first["phone"] == "+15551230077"
    assert len(_crm_requests(sb, customer)) == 1  # the emulator saw the miss only
    assert (_count("test", "miss") - misses, _count("test", "hit") - hits) == (1, 1)
    assert 290 < state_redis.ttl(cache.key(customer)) <= 300


def test_an_unknown_customer_is_remembered_briefly(sb: Sandbox, state_redis: redis.Redis, prefix: str) -> None:
    cache = CustomerCache(state_redis, prefix, 300)
    crm = CRMClient(sb.url, CRM_TOKEN)
    assert cache.lookup("CUST-NOBODY", crm.customer, caller="test") is None
    assert cache.cached("CUST-NOBODY") == (True, None)
    assert 0 < state_redis.ttl(cache.key("CUST-NOBODY")) <= UNKNOWN_TTL_S


def test_a_crm_failure_is_raised_and_not_cached(sb: Sandbox, state_redis: redis.Redis, prefix: str) -> None:
    customer = _put_customer(sb)
    cache = CustomerCache(state_redis, prefix, 300)
    crm = CRMClient(sb.url, CRM_TOKEN)
    sb.faults("crm", script=[{"status": 503, "count": 1}])
    with pytest.raises(VendorError):
        cache.lookup(customer, crm.customer, caller="test")
    assert cache.cached(customer) == (False, None)
    assert cache.lookup(customer, crm.customer, caller="test")["name"] == "Depot"  # asked again, then cached
    assert [r["status"] for r in _crm_requests(sb, customer)] == [503, 200]


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "switchboard.cli", *args], env=env, capture_output=True, text=True,
                          timeout=60, cwd=ROOT)


def test_prefetch_warms_the_cache_and_reports_failures(sb: Sandbox, state_redis: redis.Redis, prefix: str,
                                                         tmp_path: Path) -> None:
    a, b = _put_customer(sb), _put_customer(sb)
    listing = tmp_path / "customers.txt"
    listing.write_text(f"# tomorrow's maintenance\n{b}\n\nCUST-NOBODY  # not in the CRM\n{a}\n")
    env = service_env("redis://127.0.0.1:1/0", REDIS_STATE_URL, sb.url, prefix)
    done = _cli(env, "crm", "prefetch", a, "--file", str(listing))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "fetched 3 (2 found, 1 unknown to the CRM), failed 0"
    cache = CustomerCache(state_redis, prefix, 300)
    assert cache.cached(a)[1]["name"] == cache.cached(b)[1]["name"] == "Depot"
    assert len(_crm_requests(sb, a)) == 1  # named twice, fetched once

    sb.faults("crm", script=[{"status": 503, "count": 1}])
    failed = _cli(env, "crm", "prefetch", a, b)
    assert failed.returncode == 1
    assert failed.stdout.strip() == f"fetched 1 (1 found, 0 unknown to the CRM), failed 1: {a}"
    assert "+1555" not in failed.stdout + failed.stderr  # no phone number in the output or the log


# --- through a real worker: the audit notification is on here (tests.helpers.config_copy turns it off) -------


@pytest.fixture(scope="module")
def stack(run_id: str, sandbox, state_redis: redis.Redis, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """Receiver + one worker on their own RabbitMQ vhost and key prefix, config-audit chat messages on."""
    cleanups: list = []
    broker = _broker_url("rabbitmq", f"enrich-{uuid.uuid4().hex[:6]}", run_id, cleanups)
    prefix = f"t{run_id}en{uuid.uuid4().hex[:4]}:"
    tmp = tmp_path_factory.mktemp("enrichment")
    config_dir = config_copy(tmp / "config", {"mappings.yaml": [("audit_notify_every_s: 0",
                                                                 "audit_notify_every_s: 86400")]})
    env = service_env(broker, REDIS_STATE_URL, sandbox.url, prefix, SWITCHBOARD_CONFIG_DIR=str(config_dir),
                      PROMETHEUS_MULTIPROC_DIR=str(tmp), SWITCHBOARD_WORKER_METRICS_PORT=str(free_port()))
    with WorkerProcess(env, tmp) as worker, ReceiverServer(env) as server:
        yield {"env": env, "server": server, "url": server.url, "keys": Keys(prefix), "worker": worker,
               "metrics": f"http://127.0.0.1:{env['SWITCHBOARD_WORKER_METRICS_PORT']}/metrics"}
    for cleanup in reversed(cleanups):
        cleanup()


def _audit_messages(sb: Sandbox, entity: str) -> list[dict]:
    return [r for r in sb.requests(rejected=True) if r["vendor"] == "slack" and entity in r["json"]["text"]]


def _pd_events(sb: Sandbox, dedup_key: str) -> list[dict]:
    return [r["json"] for r in sb.requests("/v2/enqueue") if r["json"].get("dedup_key") == dedup_key]


def test_unmapped_entity_is_paged_with_the_default_key_audited_and_told_once(stack: dict, clean_sandbox,
                                                                               state_redis: redis.Redis) -> None:
    sb = Sandbox(clean_sandbox.url)
    wait_for(lambda: requests.get(stack["metrics"], timeout=2).ok, 20, 0.2, "the worker's metrics endpoint")
    counted = value(scrape(stack["metrics"]), "switchboard_config_audit_total", problem=UNMAPPED_ENTITY)
    entity = f"trunk-audit-{uuid.uuid4().hex[:8]}"
    down = sample("genesys-trunk-down.json")
    down["event"]["trunkId"] = entity
    breach = sample("genesys-queue-abandon.json")  # another alert (its own alert_key) of the same entity
    breach["event"]["queueId"] = entity
    first = post(stack, "genesys", down)
    trace = wait_outcome(stack, first)
    assert trace["outcome"] == "dispatched", trace
    [event] = _pd_events(sb, trace["alert_key"])
    assert event["routing_key"] == "rk-default"  # never dropped: the default key pages someone
    second = post(stack, "genesys", breach)
    assert wait_outcome(stack, second)["outcome"]

    [record] = [e for e in ConfigAudit(state_redis, stack["keys"].prefix).list() if e["entity_id"] == entity]
    assert (record["problem"], record["source"], record["count"]) == (UNMAPPED_ENTITY, "genesys", 2)
    status = _cli(stack["env"], "status", "--json")
    assert status.returncode == 0, status.stderr
    listed = json.loads(status.stdout)["config_audit"]
    assert listed["entities"] >= 1 and entity in [e["entity_id"] for e in listed["recent"]]
    text = _cli(stack["env"], "status").stdout
    assert "config audit:" in text and entity in text

    # Both alerts decided at enrich, before their outcomes: a second message would already be queued ahead
    # of this sentinel's (same queue, FIFO), so once the sentinel's message is in, the count is final.
    sentinel = f"trunk-audit-{uuid.uuid4().hex[:8]}"
    down["event"]["trunkId"] = sentinel
    wait_outcome(stack, post(stack, "genesys", down))
    wait_for(lambda: _audit_messages(sb, sentinel), 30, 0.1, "the sentinel's audit message")
    messages = [m for m in _audit_messages(sb, entity) if m["status"] == 200]
    assert len(messages) == 1 and len(_audit_messages(sb, entity)) == 1
    assert "mappings.yaml" in messages[0]["json"]["text"] and "rk-default" not in messages[0]["json"]["text"]
    assert not [r for r in sb.requests(rejected=True) if r["vendor"] == "twilio"]  # chat only: nobody is paged
    wait_for(lambda: value(scrape(stack["metrics"]), "switchboard_config_audit_total",
                           problem=UNMAPPED_ENTITY) == counted + 3, 20, 0.2, "the worker's config-audit counter")


@pytest.mark.parametrize("fault", [{"status": 503, "count": 1}, {"pass": True, "latency_ms": 2600, "count": 1}],
                         ids=["crm-503", "crm-timeout"])
def test_crm_down_at_enrich_never_stops_the_event(stack: dict, clean_sandbox, fault: dict) -> None:
    sb = Sandbox(clean_sandbox.url)
    customer = _put_customer(sb)
    sb.faults("crm", script=[fault])
    state_redis = redis.Redis.from_url(REDIS_STATE_URL, decode_responses=True)
    state_redis.delete(f"{stack['keys'].prefix}crm-paused")
    event_id = post(stack, "iot", unique_iot(customerId=customer))
    trace = wait_outcome(stack, event_id, timeout=60)
    assert trace["outcome"] == "dispatched", trace
    assert [s["result"] for s in trace["stages"] if s["stage"] == "enrich"] == ["ok"]
    # enrich's failed ask (a slow one is recorded when the emulator finishes it), then the dispatch's own
    wait_for(lambda: len(_crm_requests(sb, customer)) == 2, 10, 0.1, "both CRM requests")
    assert trace["targets"]["iot_call"]["result"] == "dispatched"


def test_enrich_warms_the_cache_so_the_dispatch_never_asks_the_crm(stack: dict, clean_sandbox,
                                                                    state_redis: redis.Redis) -> None:
    sb = Sandbox(clean_sandbox.url)
    state_redis.delete(f"{stack['keys'].prefix}crm-paused")
    customer = _put_customer(sb)
    trace = wait_outcome(stack, post(stack, "iot", unique_iot(customerId=customer)))
    assert trace["outcome"] == "dispatched", trace
    assert [r["status"] for r in _crm_requests(sb, customer)] == [200]  # enrich's miss; dispatch hit the cache
    cache = CustomerCache(state_redis, stack["keys"].prefix, 300)
    assert cache.cached(customer)[0]

    warmed = _put_customer(sb)
    done = _cli(stack["env"], "crm", "prefetch", warmed)
    assert done.returncode == 0, done.stderr
    trace = wait_outcome(stack, post(stack, "iot", unique_iot(customerId=warmed)))
    assert trace["outcome"] == "dispatched", trace
    assert len(_crm_requests(sb, warmed)) == 1  # the prefetch's only: enrich and dispatch both hit
    samples = scrape(stack["metrics"])
    assert value(samples, "switchboard_crm_cache_total", caller="dispatch", result="hit") >= 2
    assert value(samples, "switchboard_crm_cache_total", caller="enrich", result="hit") >= 1
