"""The benchmark suite cannot rot: its entry point in tiny mode (``--quick``) on Redis, every phase, and a
results.json with the keys and sane values the README's table is made from. Figures are not judged here
(bench/results.json holds a full run's)."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import ROOT

KEYS = ("ingress_ratio", "pipeline_ratio", "p99_ms_half_load", "drain_fraction", "rss_growth")


@pytest.mark.timeout(240)
def test_the_bench_runs_every_phase_and_writes_its_results(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    done = subprocess.run([sys.executable, "-m", "bench", "--quick", "--brokers", "redis", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=220)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results = json.loads(out.read_text())
    assert all(key in results for key in KEYS), sorted(results)
    assert results["ingress_ratio"] > 0 and results["pipeline_ratio"] > 0 and results["drain_fraction"] > 0
    assert results["p99_ms_half_load"] > 0 and abs(results["rss_growth"]) < 1
    redis_run = results["brokers"]["redis"]
    assert redis_run["broker_db"] == "same"  # as make up deploys it: the gate pushes the ingest message
    runs = redis_run["noop_runs"]
    assert redis_run["ingress"]["bare"]["req_per_s"] > 0 and len(runs) == 2 and runs[0]["tasks_per_s"] > 0
    chosen = redis_run["pipeline"][results["grain"]]  # one round in tiny mode, between the two no-op runs
    assert chosen["round"] == 1 and chosen["round_ratios"] == [chosen["ratio"]] == [results["pipeline_ratio"]]
    assert chosen["ratio"] == round(chosen["events_per_s"] / ((runs[0]["tasks_per_s"] + runs[1]["tasks_per_s"]) / 2), 3)
    cpu = redis_run["pipeline"][results["grain"]]["cpu_ms_per_event"]
    assert cpu["ingest pool children"] > 0 and cpu["dispatch pool children"] > 0 and cpu["redis"] > 0
    assert cpu["total"] == pytest.approx(sum(v for k, v in cpu.items() if k != "total"), abs=0.01)
    assert runs[0]["cpu_ms_per_task"]["ingest pool children"] > 0
    assert redis_run["flow"]["events"] > 0 and redis_run["memory"]["ingest_worker"]["processes"] == 2
    memory = redis_run["memory"]
    assert memory["measured_events"] == memory["events"] - memory["after_warm_up_events"] > 0
    series = memory["gunicorn_worker"]["rss_mb_after_batches"]  # RSS after each batch: [events sent, MB]
    assert [sent for sent, _ in series] == sorted({sent for sent, _ in series}) and series[-1][0] == memory["events"]
    assert len(series) >= 2 and all(mb > 0 for _, mb in series)
    assert results["versions"]["celery"] and results["machine"]["cores"] >= 1 and results["grain"] in ("fused", "chain")
    assert "| redis | ingress req/s (median of 2 alternating rounds' ratios: " in done.stdout  # the table
    ingress = redis_run["ingress"]  # tiny mode: two rounds of 100 requests per app: bare, receiver, floor
    bare, receiver = ingress["bare"], ingress["receiver"]
    assert ingress["rounds"] == 2 and bare["requests"] == receiver["requests"] == 200
    assert ingress["round_ratios"] == [round(r / b, 3) for r, b in zip(receiver["round_req_per_s"],
                                                                      bare["round_req_per_s"], strict=True)]
    assert ingress["ratio"] == round(statistics.median(ingress["round_ratios"]), 3) == results["ingress_ratio"]
    assert ingress["p99_ratio"] == round(statistics.median(ingress["round_p99_ratios"]), 3)
    floor = ingress["floor"]  # the third app of each round, against the same round's bare figures
    assert floor["requests"] == 200 and ingress["floor_round_ratios"] == [
        round(f / b, 3) for f, b in zip(floor["round_req_per_s"], bare["round_req_per_s"], strict=True)]
    assert ingress["floor_ratio"] == round(statistics.median(ingress["floor_round_ratios"]), 3)
    assert redis_run["summary"]["ingress_floor_ratio"] == ingress["floor_ratio"]
    assert "| redis | ingress floor req/s: HMAC, JSON, one claim-and-enqueue" in done.stdout
    assert bare["cpu_ms_per_request"]["gunicorn pool children"] > 0  # summed over its rounds, per request
    assert receiver["cpu_ms_per_request"]["gunicorn pool children"] > 0 and receiver["cpu_ms_per_request"]["redis"] > 0
    ceiling = results["brokers"]["redis"]["summary"]["pipeline_ceiling_ratio"]
    assert 0 < ceiling < 0.5 and "| redis | pipeline ceiling: an event costing only its 2 no-op tasks" in done.stdout
    assert "| redis | per event, grain fused (median round) |" in done.stdout  # where the CPU goes


def test_cpu_accounting_splits_by_role_and_counts_only_the_interval() -> None:
    from bench.cpu import cpu_ms_per_item

    pools = {"ingest": 100}
    before = {100: ("celery worker -Q ingest", 1, 2.0), 101: ("celery worker -Q ingest", 100, 5.0),
              7: ("/usr/bin/redis-server 127.0.0.1:1234", 1, 1.0)}
    after = {100: ("celery worker -Q ingest", 1, 2.5), 101: ("celery worker -Q ingest", 100, 6.0),
             102: ("celery worker -Q ingest", 100, 0.5),  # a child started during the drain: all of it counts
             7: ("/usr/bin/redis-server 127.0.0.1:1234", 1, 1.25), 9: ("python -m vendor_sandbox", 1, 0.0)}
    out = cpu_ms_per_item(before, after, pools, items=100)
    assert out == {"ingest pool children": 15.0, "ingest pool main": 5.0, "redis": 2.5, "total": 22.5}


@pytest.mark.timeout(120)
def test_the_receiver_cpu_bench_measures_both_apps_in_one_process() -> None:
    done = subprocess.run([sys.executable, "-m", "bench.receiver_cpu", "--rounds", "2", "--per-round", "30"],
                          cwd=ROOT, capture_output=True, text=True, timeout=100)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads(done.stdout)
    assert [len(result["rounds"][name]) for name in ("bare", "receiver")] == [2, 2]
    # the receiver verifies, validates, claims and publishes; the bare app only answers: it must cost more
    assert result["receiver_cpu_ms_per_request"] > result["bare_cpu_ms_per_request"] > 0
    ratios = sorted(r / b for r, b in zip(result["rounds"]["receiver"], result["rounds"]["bare"], strict=True))
    assert ratios[0] - 0.01 <= result["ratio"] <= ratios[-1] + 0.01 and result["ratio"] > 1


def test_pipeline_ratio_is_the_median_of_rounds_against_the_no_op_runs_around_each() -> None:
    from bench.report import median_index, median_round, round_ratios

    # round 2 ran while the machine was slow: its no-op runs around it were not
    assert round_ratios([1000, 1000, 1200, 1100], [200, 110, 230]) == [0.2, 0.1, 0.2]
    assert median_index([0.2, 0.1, 0.25]) == 0 and median_index([0.3, 0.1, 0.2, 0.4]) == 2
    r = {"noop_runs": [{"tasks_per_s": v} for v in (1000, 800, 1000, 1000)],
         "pipeline_rounds": [{"events_per_s": v, "cpu_ms_per_event": {"total": c}} for v, c in
                             ((180, 9.0), (90, 14.0), (210, 8.5))]}
    chosen = median_round(r)
    assert (chosen["round"], chosen["ratio"], chosen["round_ratios"]) == (1, 0.2, [0.2, 0.1, 0.21])
    assert chosen["cpu_ms_per_event"] == {"total": 9.0}
    with pytest.raises(AssertionError):
        round_ratios([1000], [200])


def _run_with_cpu() -> dict:
    noop = {"ingest pool main": 0.5, "ingest pool children": 0.2, "dispatch pool main": 0.5,
            "dispatch pool children": 0.2, "redis": 0.1, "bench driver": 0.1}
    return {"grain": "fused", "noop_runs": [
                {"tasks_per_s": 1000, "cpu_ms_per_task": {**noop, "total": 1.6}},
                {"tasks_per_s": 1000, "cpu_ms_per_task": {**noop, "ingest pool main": 0.7, "total": 1.8}}],
            "pipeline": {"fused": {"events_per_s": 170, "round": 1, "ratio": 0.17, "round_ratios": [0.17],
                                   "cpu_ms_per_event": {"ingest pool children": 3.0, "dispatch pool children": 3.0,
                                                        "null vendor (sandbox)": 1.2, "redis": 1.6, "total": 8.8}}}}


def test_the_pipeline_ceiling_is_two_no_op_tasks_and_the_null_vendor_from_the_same_run() -> None:
    from bench.report import cpu_tables, pipeline_ceiling

    c = pipeline_ceiling(_run_with_cpu())
    # no-op: the mean of the runs around round 1 (1.6, 1.8) = 1.7 ms; an event: 2 x 1.7 + 1.2 = 4.6 ms
    assert c == {"ceiling_ratio": round(1.7 / 4.6, 3), "noop_cpu_ms_per_task": 1.7, "vendor_cpu_ms_per_event": 1.2,
                 "tasks_per_event": 2, "own_cpu_ms_per_event": 4.2, "share_of_ceiling": round(0.17 / (1.7 / 4.6), 3)}
    no_cpu = _run_with_cpu()
    del no_cpu["noop_runs"][1]["cpu_ms_per_task"]
    assert pipeline_ceiling(no_cpu) is None
    tables = cpu_tables({"redis": _run_with_cpu()})
    noop_row = next(line for line in tables.splitlines() if "per no-op task" in line)
    cells = [float(x) for x in noop_row.strip("|").split("|")[2:]]
    assert cells[0] == 0.6 and cells[-1] == 1.7 and sum(cells[:-1]) == pytest.approx(1.7, abs=0.01)
    event_row = next(line for line in tables.splitlines() if "grain fused (median round)" in line)
    assert event_row.endswith("| 0.00 | 3.00 | 0.00 | 3.00 | 1.60 | 0.00 | 1.20 | 0.00 | 0.00 | 8.80 |")


@pytest.mark.timeout(180)
def test_the_pipeline_cpu_bench_runs_every_event_through_both_tasks_and_counts_round_trips() -> None:
    done = subprocess.run([sys.executable, "-m", "bench.pipeline_cpu", "--events", "30", "--warm-up", "5"],
                          cwd=ROOT, capture_output=True, text=True, timeout=160)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads(done.stdout)  # the run itself fails unless every event was dispatched once
    assert result["events"] == result["counted_events"] == 30
    assert result["ingest_cpu_us_per_event"] > 0 and result["dispatch_cpu_us_per_event"] > 0
    for task in ("ingest", "dispatch"):
        trips = result["round_trips_per_event"][task]
        # every event claims its work in Redis at least once, and the sites add up to the total
        assert trips["total"] >= 1 and sum(trips["sites"].values()) == pytest.approx(trips["total"], abs=0.1)
        assert all(" <- " in site or site == "(not our code)" for site in trips["sites"])
    ingest_sites = result["round_trips_per_event"]["ingest"]["sites"]
    assert any(site.startswith("ledger.take") for site in ingest_sites)
    # fan_out: the incident record, the routing and the stages in one round trip, then the dispatch's publish
    assert sum(n for site, n in ingest_sites.items() if "fan_out" in site) == 1, ingest_sites
    assert sum(n for site, n in ingest_sites.items() if site.startswith("kept_publisher._send")) == 1, ingest_sites
