"""``/metrics`` after a scenario: the receiver's counters and a worker pool's (multiprocess) counters and
histograms moved exactly as the scenario implies; gauges read from Redis are there."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
import redis
import requests
from prometheus_client.parser import text_string_to_metric_families

from switchboard.config import load_config
from switchboard.sender import post_signed
from switchboard.waiting import wait_for
from tests.helpers import SECRETS
from tests.posting import Sandbox, post, sample, wait_outcome


def scrape(url: str) -> dict[tuple[str, tuple], float]:
    text = requests.get(url, timeout=5).text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_move_with_a_scenario(pipeline: dict, clean_sandbox) -> None:
    sb = Sandbox(clean_sandbox.url)
    receiver = f"{pipeline['url']}/metrics"
    worker = f"http://127.0.0.1:{pipeline['env']['SWITCHBOARD_WORKER_METRICS_PORT']}/metrics"
    wait_for(lambda: requests.get(worker, timeout=2).ok, 20, 0.2, "the worker's metrics endpoint")
    r0, w0 = scrape(receiver), scrape(worker)

    bodies = []
    for _ in range(2):
        body = sample("genesys-trunk-down.json")
        body["event"]["trunkId"] = f"trunk-{uuid.uuid4().hex[:8]}"
        bodies.append(body)
    rid = uuid.uuid4().hex
    ids = [post(pipeline, "genesys", bodies[0], request_id=rid), post(pipeline, "genesys", bodies[1])]
    forged = requests.post(f"{pipeline['url']}/webhooks/genesys", json=bodies[0], timeout=5,
                           headers={"X-Request-Id": rid, "X-Genesys-Signature": "00"})
    assert forged.status_code == 401
    config = load_config(Path(pipeline["env"]["SWITCHBOARD_CONFIG_DIR"]))
    again = post_signed(pipeline["url"], "genesys", config.sources["genesys"], json.dumps(bodies[0]).encode(),
                        SECRETS["SWITCHBOARD_SECRET_GENESYS"].split(",")[0], request_id=rid)
    assert again.status_code == 200 and again.json()["status"] == "duplicate"
    for event_id in ids:
        assert wait_outcome(pipeline, event_id)["outcome"] == "dispatched"
    wait_for(lambda: value(scrape(worker), "switchboard_dispatch_attempts_total", target="pagerduty",
                           result="dispatched") >= value(w0, "switchboard_dispatch_attempts_total",
                                                          target="pagerduty", result="dispatched") + 2,
             10, 0.2, "the worker's counters")
    r1, w1 = scrape(receiver), scrape(worker)

    def delta(before: dict, after: dict, name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta(r0, r1, "switchboard_webhooks_total", source="genesys", status="202") == 2
    assert delta(r0, r1, "switchboard_webhooks_total", source="genesys", status="401") == 1
    assert delta(r0, r1, "switchboard_webhooks_total", source="genesys", status="200") == 1
    assert delta(r0, r1, "switchboard_idempotency_checks_total", source="genesys", result="miss") == 2
    assert delta(r0, r1, "switchboard_idempotency_checks_total", source="genesys", result="hit") == 1
    assert delta(w0, w1, "switchboard_dispatch_attempts_total", target="pagerduty", result="dispatched") == 2
    assert delta(w0, w1, "switchboard_end_to_end_seconds_count", target="pagerduty") == 2
    assert delta(w0, w1, "switchboard_end_to_end_seconds_sum", target="pagerduty") > 0
    for stage in ("normalize", "dedupe", "enrich", "gate", "route"):
        assert delta(w0, w1, "switchboard_stage_seconds_count", stage=stage) == 2
    assert delta(w0, w1, "switchboard_outcomes_total", outcome="dispatched", reason="delivered to pagerduty") == 2
    # gauges from Redis, on both endpoints
    for samples in (r1, w1):
        assert ("switchboard_dead_letters", ()) in samples and ("switchboard_deferred", ()) in samples
        assert value(samples, "switchboard_events", state="accepted") >= 2
    assert sb.requests("/v2/enqueue")  # the vendor really was called


def test_a_vendor_429_shows_as_a_lower_effective_rate_in_metrics_and_status(pipeline: dict, clean_sandbox,
                                                                           state_redis: redis.Redis) -> None:
    import subprocess
    import sys

    # The pipeline fixture lives for the session: a 429 from an earlier test (test_pipeline.py) would have
    # lowered this schedule's factor already, and the one 429 here would lower it again, below backoff_factor.
    for key in state_redis.scan_iter(f"{pipeline['keys'].prefix}ratelimit:pagerduty_events*"):
        state_redis.delete(key)
    Sandbox(clean_sandbox.url).faults("pagerduty", script=[{"status": 429, "count": 1, "retry_after": 1}])
    body = sample("genesys-trunk-down.json")
    body["event"]["trunkId"] = f"trunk-{uuid.uuid4().hex[:8]}"  # unmapped: the default routing key's schedule
    assert wait_outcome(pipeline, post(pipeline, "genesys", body))["outcome"] == "dispatched"
    cfg = load_config(Path(pipeline["env"]["SWITCHBOARD_CONFIG_DIR"])).vendors["rate_limits"]["pagerduty_events"]
    full = cfg["rate"] * (1 - cfg["critical_share"])
    labels = {"limit": "pagerduty_events", "key": "SWITCHBOARD_PD_KEY_DEFAULT", "lane": "main"}
    worker = f"http://127.0.0.1:{pipeline['env']['SWITCHBOARD_WORKER_METRICS_PORT']}/metrics"
    for url in (f"{pipeline['url']}/metrics", worker):
        samples = scrape(url)
        factor = value(samples, "switchboard_rate_limit_factor", **labels)
        # halved by the 429, recovering by recovery_per_s of the rate each second since
        assert cfg["backoff_factor"] <= factor < 1, factor
        assert value(samples, "switchboard_rate_limit_effective_rate", **labels) == \
            pytest.approx(full * factor, rel=0.05)
    out = subprocess.run([sys.executable, "-m", "switchboard.cli", "status", "--json"], env=pipeline["env"],
                         capture_output=True, text=True, timeout=60, check=True)
    [schedule] = [s for s in json.loads(out.stdout)["rate_limits"]
                  if (s["limit"], s["key"], s["lane"]) == tuple(labels.values())]
    assert schedule["configured_rate"] == pytest.approx(full) and schedule["factor"] < 1
    assert schedule["effective_rate"] < schedule["configured_rate"]
    text = subprocess.run([sys.executable, "-m", "switchboard.cli", "status"], env=pipeline["env"],
                          capture_output=True, text=True, timeout=60, check=True).stdout
    assert "RATE LIMIT" in text and "SWITCHBOARD_PD_KEY_DEFAULT" in text
