"""The bench's output: headline keys (the worst broker's figure for each target), the table, the machine
and versions it ran on."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path
from typing import Any

import redis

TARGETS = {  # key: (how it is judged, threshold)
    "ingress_ratio": (">=", 0.6),
    "ingress_p99_ratio": ("<=", 2.0),
    "pipeline_ratio": (">=", 0.4),
    "p99_ms_half_load": ("<=", 50.0),
    "drain_fraction": (">=", 0.95),
    "answers_429_after_warm_up": ("<=", 0),
    "rss_growth": ("abs<=", 0.05),
}


def headline(per_broker: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Each target's figure from the broker where it is worst (a target holds only if it holds on both)."""
    out: dict[str, Any] = {}
    for key, (how, _) in TARGETS.items():
        values = [b["summary"][key] for b in per_broker.values() if key in b.get("summary", {})]
        if not values:
            continue
        if how == ">=":
            out[key] = min(values)
        elif how == "<=":
            out[key] = max(values)
        else:
            out[key] = max(values, key=abs)
    return out


def met(key: str, value: float) -> bool:
    how, threshold = TARGETS[key]
    if how == ">=":
        return value >= threshold
    if how == "<=":
        return value <= threshold
    return abs(value) <= threshold


def round_ratios(noop_runs: list[float], rounds: list[float]) -> list[float]:
    """Each pipeline round's events/s over the mean of the no-op runs just before and just after it (round i
    ran between no-op runs i and i + 1), so each ratio's baseline is the machine's speed at that time."""
    assert len(noop_runs) == len(rounds) + 1, (noop_runs, rounds)
    return [round(rate / ((noop_runs[i] + noop_runs[i + 1]) / 2), 3) for i, rate in enumerate(rounds)]


def pipeline_rounds(r: dict[str, Any]) -> list[float]:
    return round_ratios([n["tasks_per_s"] for n in r["noop_runs"]],
                        [p["events_per_s"] for p in r["pipeline_rounds"]])


def median_index(values: list[float]) -> int:
    """The index of the median (the lower one of an even count)."""
    order = sorted(range(len(values)), key=values.__getitem__)
    return order[(len(values) - 1) // 2]


def median_round(r: dict[str, Any]) -> dict[str, Any]:
    """The round whose ratio is the median: the figures (events/s, CPU per event) behind the headline ratio."""
    ratios = pipeline_rounds(r)
    i = median_index(ratios)
    return {**r["pipeline_rounds"][i], "round": i + 1, "ratio": ratios[i], "round_ratios": ratios}


def noop_rate(r: dict[str, Any]) -> float:
    """Every no-op run's mean: the baseline of the grain that ran once (the comparison of grains)."""
    rates = [n["tasks_per_s"] for n in r["noop_runs"]]
    return round(sum(rates) / len(rates), 1)


def noop_runs_around(r: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The no-op runs just before and just after the chosen grain's median round: its baseline."""
    i = r["pipeline"][r["grain"]]["round"]
    return r["noop_runs"][i - 1], r["noop_runs"][i]


def _noop_cpu_around(r: dict[str, Any]) -> list[dict[str, float]] | None:
    """Those two runs' CPU per task by role, or None if either has none."""
    cpu = [run.get("cpu_ms_per_task") for run in noop_runs_around(r)]
    return cpu if all(cpu) else None  # type: ignore[return-value]


# Broker tasks per event in a grain: fused, one ingest task and one dispatch (a bench event, a trunk down, has
# one target: config/routing.yaml's trunk-health rule); chain, the five stage tasks and the dispatch.
TASKS_PER_EVENT = {"fused": 2, "chain": 6}
VENDOR = "null vendor (sandbox)"


def pipeline_ceiling(r: dict[str, Any]) -> dict[str, float] | None:
    """The best pipeline ratio the chosen grain can reach on this machine, from this run's CPU figures: an event
    that did nothing but its broker tasks and the null vendor's request. CPU-bound on shared cores, a rate is
    cores / CPU per item, so that ratio is one no-op task's CPU over (tasks x a no-op task's CPU + the null
    vendor's CPU per event). The no-op figure is the mean of the runs around the median round (its baseline).
    Also what our own code costs per event beyond that, and the measured ratio as a share of the ceiling.
    None when the run has no CPU figures."""
    chosen = r["pipeline"][r["grain"]]
    around = _noop_cpu_around(r)
    cpu = chosen.get("cpu_ms_per_event")
    if not cpu or around is None:
        return None
    noop = sum(a["total"] for a in around) / 2
    vendor = cpu.get(VENDOR, 0.0)
    tasks = TASKS_PER_EVENT[r["grain"]]
    ceiling = noop / (tasks * noop + vendor)
    return {"ceiling_ratio": round(ceiling, 3), "noop_cpu_ms_per_task": round(noop, 3),
            "vendor_cpu_ms_per_event": vendor, "tasks_per_event": tasks,
            "own_cpu_ms_per_event": round(cpu["total"] - tasks * noop - vendor, 3),
            "share_of_ceiling": round(chosen["ratio"] / ceiling, 3)}


def summary(r: dict[str, Any]) -> dict[str, Any]:
    """One broker's target figures from its raw results."""
    out: dict[str, Any] = {}
    if "ingress" in r:
        out["ingress_ratio"] = r["ingress"]["ratio"]
        out["ingress_p99_ratio"] = r["ingress"]["p99_ratio"]
        if "floor_ratio" in r["ingress"]:
            out["ingress_floor_ratio"] = r["ingress"]["floor_ratio"]
    if "pipeline" in r:
        out["pipeline_ratio"] = r["pipeline"][r["grain"]]["ratio"]
        ceiling = pipeline_ceiling(r)
        if ceiling is not None:  # not a target: what the target is measured against on this machine
            out["pipeline_ceiling_ratio"] = ceiling["ceiling_ratio"]
    if "latency" in r:
        out["p99_ms_half_load"] = r["latency"]["at_50"]["p99_ms"]
    if "flow" in r:
        out["drain_fraction"] = r["flow"]["drain_fraction"]
        out["answers_429_after_warm_up"] = r["flow"]["answers_429_after_warm_up"]
    if "memory" in r:
        out["rss_growth"] = r["memory"]["rss_growth"]
    return out


def table(per_broker: dict[str, dict[str, Any]]) -> str:
    """A Markdown table: figure, baseline, ratio per broker."""
    rows = ["| broker | measure | figure | baseline (same run) | ratio | target |", "|---|---|---|---|---|---|"]
    for name, r in per_broker.items():
        if "skipped" in r:
            rows.append(f"| {name} | skipped | {r['skipped']} | | | |")
            continue
        s = r["summary"]
        if "ingress" in r:
            i = r["ingress"]
            rounds = _rounds(i.get("round_ratios"))
            rows.append(f"| {name} | ingress req/s{rounds} | {i['receiver']['req_per_s']} | "
                        f"bare Flask {i['bare']['req_per_s']} "
                        f"| {i['ratio']} | >= 0.6 {_ok('ingress_ratio', s)} |")
            rows.append(f"| {name} | ingress p50 / p99 ms{_rounds(i.get('round_p99_ratios'))} | "
                        f"{i['receiver']['p50_ms']} / {i['receiver']['p99_ms']} | "
                        f"{i['bare']['p50_ms']} / {i['bare']['p99_ms']} | p99 {i['p99_ratio']} | "
                        f"<= 2 {_ok('ingress_p99_ratio', s)} |")
            if "floor" in i:
                rows.append(f"| {name} | ingress floor req/s: HMAC, JSON, one claim-and-enqueue, no more "
                            f"(bench/floor_app.py){_rounds(i['floor_round_ratios'])} | {i['floor']['req_per_s']} | "
                            f"bare Flask {i['bare']['req_per_s']} | {i['floor_ratio']} (p99 {i['floor_p99_ratio']}) "
                            f"| |")
            if "cpu_ms_per_request" in i["receiver"]:
                rows.append(f"| {name} | ingress CPU ms per request (all processes) | "
                            f"{i['receiver']['cpu_ms_per_request']['total']} | "
                            f"bare Flask {i['bare']['cpu_ms_per_request']['total']} | | |")
        if "pipeline" in r:
            p, runs = r["pipeline"], r["noop_runs"]
            chosen = p[r["grain"]]
            before, after = noop_runs_around(r)
            around = [before["tasks_per_s"], after["tasks_per_s"]]
            rows.append(f"| {name} | pipeline events/s, grain {r['grain']} (median of {len(chosen['round_ratios'])} "
                        f"rounds' ratios: {' / '.join(map(str, chosen['round_ratios']))}) | {chosen['events_per_s']} "
                        f"| Celery no-op {round(sum(around) / 2, 1)} tasks/s (before / after its round: "
                        f"{around[0]} / {around[1]}) | {chosen['ratio']} | >= 0.4 {_ok('pipeline_ratio', s)} |")
            for grain, g in p.items():
                if grain != r["grain"]:
                    noop = noop_rate(r)
                    rows.append(f"| {name} | pipeline events/s, grain {grain} | {g['events_per_s']} | Celery no-op "
                                f"{noop} tasks/s (mean of all {len(runs)} runs) | {round(g['events_per_s'] / noop, 3)} "
                                f"| >= 0.4 (not chosen) |")
            cpu, noop_cpu = chosen.get("cpu_ms_per_event"), before.get("cpu_ms_per_task")
            if cpu and noop_cpu:
                rows.append(f"| {name} | CPU ms per event, grain {r['grain']} (all processes, its round) | "
                            f"{cpu['total']} | no-op {noop_cpu['total']} per task (the run before it) | | |")
            ceiling = pipeline_ceiling(r)
            if ceiling is not None:
                c = ceiling
                rows.append(f"| {name} | pipeline ceiling: an event costing only its {c['tasks_per_event']} no-op "
                            f"tasks and the null vendor's request ({c['tasks_per_event']} x "
                            f"{c['noop_cpu_ms_per_task']} + {c['vendor_cpu_ms_per_event']} ms CPU; our own code: "
                            f"{c['own_cpu_ms_per_event']} ms more) | {c['ceiling_ratio']} | Celery no-op | "
                            f"measured {chosen['ratio']} = {c['share_of_ceiling']} of it | "
                            f"{'0.4 above it' if c['ceiling_ratio'] < 0.4 else ''} |")
        if "latency" in r:
            lat = r["latency"]
            for share in ("at_25", "at_50", "at_90"):
                point = lat[share]
                target = f"<= 50 ms {_ok('p99_ms_half_load', s)}" if share == "at_50" else ""
                rows.append(f"| {name} | 202 -> vendor p50 / p99 ms at {share[3:]}% ({point['rate_per_s']}/s) | "
                            f"{point['p50_ms']} / {point['p99_ms']} | saturation {lat['saturation_per_s']}/s | | "
                            f"{target} |")
        if "flow" in r:
            f = r["flow"]
            rows.append(f"| {name} | flow-control drain/s | {f['drain_per_s']} | "
                        f"vendor limit {f['vendor_limit_per_s']}/s "
                        f"| {f['drain_fraction']} | >= 0.95 {_ok('drain_fraction', s)} |")
            rows.append(f"| {name} | vendor 429s after warm-up | {f['answers_429_after_warm_up']} | "
                        f"(all: {f['answers_429']}) | | 0 {_ok('answers_429_after_warm_up', s)} |")
        if "memory" in r:
            m = r["memory"]
            short = f" (of {m['target_events']:,}: time budget)" if m["events"] < m["target_events"] else ""
            for role in ("ingest_worker", "dispatch_worker", "gunicorn_worker"):
                x = m[role]
                rows.append(f"| {name} | RSS MB {role.replace('_', ' ')} after {m['events']:,} events{short} | "
                            f"{x['rss_mb_end']} (peak {x['peak_rss_mb']}) | after warm-up "
                            f"({m['after_warm_up_events']:,} events) {x['rss_mb_after_warm_up']} "
                            f"| {x['growth']:+.4f} | +-5% {_ok('rss_growth', s) if role == 'ingest_worker' else ''} |")
    return "\n".join(rows)


PIPELINE_ROLES = ("ingest pool main", "ingest pool children", "dispatch pool main", "dispatch pool children", "redis",
                  "rabbitmq", VENDOR, "bench driver", "other", "total")
INGRESS_ROLES = ("gunicorn pool children", "redis", "rabbitmq", "bench driver", "other", "total")


def _cpu_row(name: str, what: str, cpu: dict[str, float], roles: tuple[str, ...]) -> str:
    return f"| {name} | {what} | " + " | ".join(f"{cpu.get(role, 0.0):.2f}" for role in roles) + " |"


def cpu_tables(per_broker: dict[str, dict[str, Any]]) -> str:
    """The README's "Where the CPU goes": CPU ms per drained item by process role, and per ingress request."""
    rows = ["| broker | CPU ms (all processes) | " + " | ".join(PIPELINE_ROLES) + " |",
            "|---|---|" + "---|" * len(PIPELINE_ROLES)]
    for name, r in per_broker.items():
        if "pipeline" not in r:
            continue
        around = _noop_cpu_around(r)
        if around is not None:
            mean = {role: sum(a.get(role, 0.0) for a in around) / 2 for role in PIPELINE_ROLES}
            rows.append(_cpu_row(name, "per no-op task (mean of the runs before and after the median round)", mean,
                                 PIPELINE_ROLES))
        for grain, g in r["pipeline"].items():
            if "cpu_ms_per_event" in g:
                which = "median round" if grain == r["grain"] else "one run"
                rows.append(_cpu_row(name, f"per event, grain {grain} ({which})", g["cpu_ms_per_event"],
                                     PIPELINE_ROLES))
    rows += ["", "| broker | CPU ms per request (all processes) | gunicorn workers | redis | rabbitmq | "
                 "load generator (bench driver) | other | total |", "|---|---|---|---|---|---|---|---|"]
    for name, r in per_broker.items():
        for app, label in (("bare", "bare Flask 202"), ("receiver", "receiver"), ("floor", "ingress floor")):
            cpu = r.get("ingress", {}).get(app, {}).get("cpu_ms_per_request")
            if cpu:
                rows.append(_cpu_row(name, label, cpu, INGRESS_ROLES))
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    """``python -m bench.report [results.json]``: a results file's table and CPU tables, again."""
    args = sys.argv[1:] if argv is None else argv
    path = Path(args[0] if args else "bench/results.json")
    results = json.loads(path.read_text())["brokers"]
    print(table(results))
    print()
    print(cpu_tables(results))
    return 0


def _rounds(ratios: list[float] | None) -> str:
    """The ingress rows' note on their rounds' ratios; empty for a results file from before the rounds."""
    if not ratios:
        return ""
    return f" (median of {len(ratios)} alternating rounds' ratios: {' / '.join(map(str, ratios))})"


def _ok(key: str, s: dict[str, Any]) -> str:
    if key not in s:
        return ""
    return "met" if met(key, s[key]) else "**not met**"


def machine() -> dict[str, Any]:
    cpu = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gb": round(mem_kb / 1024 / 1024, 1),
            "kernel": platform.release(), "python": platform.python_version(), "load_average": os.getloadavg()}


def versions(redis_url: str) -> dict[str, str]:
    out = {name: version(name) for name in ("celery", "kombu", "redis", "flask", "gunicorn", "amqp")}
    out["redis_server"] = redis.Redis.from_url(redis_url).info("server")["redis_version"]
    try:
        status = subprocess.run(["rabbitmqctl", "-q", "version"], capture_output=True, text=True, timeout=30)
        out["rabbitmq_server"] = status.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        out["rabbitmq_server"] = "not available"
    return out


if __name__ == "__main__":
    raise SystemExit(main())
