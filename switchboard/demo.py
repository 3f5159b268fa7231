"""``switchboard demo``: start the whole service, post every sample signed, check what came of it.

Exits 0 only if every event reached its expected outcome and action, duplicates were answered 200,
and Flower lists the workers and the tasks of a processed event.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests

from switchboard.config import load_config
from switchboard.demo_scenario import DUPLICATES, FIRST_WAVE, SECOND_WAVE
from switchboard.dev_defaults import signing_secret
from switchboard.ledger import Ledger
from switchboard.runner import ROOT, free_port
from switchboard.sender import post_signed
from switchboard.settings import load_settings
from switchboard.store import Keys, redis_client
from switchboard.waiting import wait_for

SAMPLES = ROOT / "samples"
METRICS_PORTS = ("INGEST_METRICS_PORT", "CRITICAL_METRICS_PORT", "DEFAULT_METRICS_PORT", "BULK_METRICS_PORT")
TASK_NAMES = {"switchboard.stage.normalize", "switchboard.stage.dedupe", "switchboard.stage.enrich",
              "switchboard.stage.gate", "switchboard.stage.route", "switchboard.dispatch"}
FUSED_TASK_NAMES = {"switchboard.ingest", "switchboard.dispatch"}  # service.yaml pipeline_grain: fused


def _say(text: str) -> None:
    print(text, flush=True)


class Demo:
    def __init__(self) -> None:
        env = dict(os.environ)
        for name in ("PORT", "FLOWER_PORT", "SANDBOX_PORT", "SWITCHBOARD_EMBEDDED_REDIS_PORT", *METRICS_PORTS):
            env.setdefault(name, str(free_port()))
        env.setdefault("METRICS_DIR", str(ROOT / "var" / "demo-metrics"))
        env.setdefault("SWITCHBOARD_KEY_PREFIX", "demo:")
        self.env = env
        self.base = f"http://127.0.0.1:{env['PORT']}"
        self.flower = f"http://127.0.0.1:{env['FLOWER_PORT']}"
        self.sandbox = env.get("SWITCHBOARD_PAGERDUTY_URL") or f"http://127.0.0.1:{env['SANDBOX_PORT']}"
        redis_url = env.get("SWITCHBOARD_REDIS_URL") or f"redis://127.0.0.1:{env['SWITCHBOARD_EMBEDDED_REDIS_PORT']}/1"
        self.settings = load_settings({**env, "SWITCHBOARD_REDIS_URL": redis_url})
        self.config = load_config(self.settings.config_dir)
        self.ledger = Ledger(redis_client(redis_url), Keys(self.settings.key_prefix), 3600)
        self.rows: list[dict[str, Any]] = []
        self.failures: list[str] = []
        self.counts: dict[str, int] = {}

    def start(self, log_path: Path) -> subprocess.Popen:
        log_path.parent.mkdir(exist_ok=True)
        self.log = log_path.open("w")
        _say(f"starting the service (logs: {log_path})")
        return subprocess.Popen([sys.executable, "-m", "switchboard.cli", "up"], env=self.env, cwd=ROOT,
                                stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)

    def wait_ready(self) -> None:
        wait_for(lambda: requests.get(f"{self.base}/readyz", timeout=2).status_code == 200, 120, 0.5,
                 "receiver /readyz")
        wait_for(lambda: requests.get(f"{self.sandbox}/_sandbox/health", timeout=2).ok, 60, 0.5, "vendor sandbox")
        wait_for(lambda: len(self._flower_workers()) >= 4, 120, 1.0, "Flower to list the four workers")
        _say(f"ready: receiver {self.base}, Flower {self.flower}, sandbox {self.sandbox}")

    def _flower_workers(self) -> list[str]:
        return sorted(requests.get(f"{self.flower}/api/workers", params={"refresh": "1"}, timeout=5).json())

    def post(self, spec: dict[str, Any], request_id: str) -> requests.Response:
        source = spec["source"]
        body = (SAMPLES / spec["file"]).read_bytes()
        return post_signed(self.base, source, self.config.sources[source], body,
                           signing_secret(self.config, self.settings, source), request_id=request_id,
                           msg_id=f"msg_{request_id}")

    def run_wave(self, wave: list[dict[str, Any]]) -> None:
        for spec in wave:
            response = self.post(spec, request_id=f"demo-{spec['file']}")
            row = {"file": spec["file"], "status": response.status_code, "spec": spec,
                   "event_id": response.json().get("event_id")}
            self.rows.append(row)
            _say(f"  posted {spec['file']:<28} -> {response.status_code}")
        pending = [r for r in self.rows if r["status"] == 202 and "outcome" not in r]
        wait_for(lambda: all((self.ledger.trace(r["event_id"]) or {}).get("outcome") for r in pending), 90, 0.2,
                 "every event's outcome")
        for row in pending:
            trace = self.ledger.trace(row["event_id"]) or {}
            row["outcome"] = trace.get("outcome")
            row["alert_key"] = trace.get("alert_key")

    def check(self) -> None:
        received = requests.get(f"{self.sandbox}/_sandbox/requests", params={"path": "/v2/enqueue"}, timeout=5).json()
        keys = {r["file"]: r.get("alert_key") for r in self.rows}
        for row in self.rows:
            if "check" in row:  # already judged (the duplicate re-posts)
                continue
            spec = row["spec"]
            problems = []
            if row["status"] != 202:
                problems.append(f"answered {row['status']}")
            if row.get("outcome") != spec["outcome"]:
                problems.append(f"outcome {row.get('outcome')} != {spec['outcome']}")
            if "pd" in spec:
                sent = [e["json"] for e in received if e["json"].get("dedup_key") == row.get("alert_key")
                        and _matches_event(e["json"], row["event_id"], spec["pd"]["event_action"])]
                if len(sent) != 1:
                    problems.append(f"{len(sent)} PagerDuty events for it (expected 1)")
                else:
                    problems += _compare(sent[0], spec["pd"])
            elif "workitem" in spec:
                problems += self._check_workitem(row["event_id"], "genesys_workitem", spec["workitem"])
            elif "call" in spec:
                problems += self._check_call(row, spec["call"])
            elif "held" in spec:
                trace = self.ledger.trace(row["event_id"]) or {}
                if spec["held"] not in (trace.get("reason") or ""):
                    problems.append(f"held for {trace.get('reason')!r}, expected {spec['held']}")
                else:
                    release = [s.get("release_at") for s in trace.get("stages", []) if s.get("release_at")]
                    when = time.strftime("%H:%M:%S", time.localtime(release[-1])) if release else "later"
                    row["note"] = f"{spec['held']} cooldown: the resolve is sent at {when}"
            elif "resolution" in spec:
                stored = requests.get(f"{self.sandbox}/_sandbox/orchestrator/resolutions", timeout=5).json()
                mine = [r for r in stored["resolutions"] if r["ztp_event_id"] == spec["resolution"]["ztp_event_id"]]
                if len(mine) != 1:
                    problems.append(f"{len(mine)} orchestrator resolutions for it (expected 1)")
            if "same_key_as" in spec and row.get("alert_key") != keys.get(spec["same_key_as"]):
                problems.append("dedup_key differs from the trigger's")
            row["check"] = "OK" if not problems else "; ".join(problems)
            if problems:
                self.failures.append(f"{row['file']}: {row['check']}")

    def _workitems(self, event_id: str, target: str) -> list[dict[str, Any]]:
        items = requests.get(f"{self.sandbox}/_sandbox/genesys/workitems", timeout=5).json()
        return [w for w in items if w.get("externalTag") == f"switchboard:{event_id}:{target}"]

    def _check_workitem(self, event_id: str, target: str, expected: dict[str, Any]) -> list[str]:
        items = self._workitems(event_id, target)
        if len(items) != 1:
            return [f"{len(items)} Genesys work items for it (expected 1)"]
        genesys = self.config.vendors["genesys"]
        problems = []
        if items[0].get("queueId") != genesys["queues"][expected["queue"]]:
            problems.append(f"work item queue {items[0].get('queueId')} is not {expected['queue']}")
        if "skills" in expected and items[0].get("skillIds", []) != [genesys["skills"][n] for n in expected["skills"]]:
            problems.append(f"work item skills {items[0].get('skillIds')} are not {expected['skills']}")
        return problems

    def _check_call(self, row: dict[str, Any], expected: dict[str, Any]) -> list[str]:
        """A call if the customer's local time was inside the window when dispatched, else a work item."""
        from datetime import UTC, datetime

        from switchboard.dialing import plan_call

        customers = requests.get(f"{self.sandbox}/_sandbox/crm/customers", timeout=5).json()
        customer = next(c for c in customers if c.get("customerId") == expected["customer"])
        trace = self.ledger.trace(row["event_id"]) or {}
        target = next(iter(trace.get("targets") or {"iot_call": None}))
        finished = datetime.fromtimestamp(trace.get("finished_at") or 0, UTC)
        plan = plan_call(customer, finished, self.config.windows["dialing"])
        callbacks = [c for c in requests.get(f"{self.sandbox}/_sandbox/genesys/callbacks", timeout=5).json()
                     if (c.get("data") or {}).get("event_id") == row["event_id"]]
        items = self._workitems(row["event_id"], target)
        row["note"] = f"{'call' if plan.call else 'work item'}: {plan.reason}"
        want = (1, 0) if plan.call else (0, 1)
        if (len(callbacks), len(items)) != want:
            return [f"{len(callbacks)} callbacks and {len(items)} work items; expected {want} ({plan.reason})"]
        return []

    def check_duplicates(self) -> None:
        for name in DUPLICATES:
            spec = next(s for s in FIRST_WAVE if s["file"] == name)
            # Same request id for Genesys; a new webhook-id but the same payload key for IoT.
            rid = f"demo-{name}" if spec["source"] in ("genesys", "cxone") else f"demo-retry-{name}"
            response = self.post(spec, request_id=rid)
            ok = response.status_code == 200 and response.json().get("status") == "duplicate"
            self.rows.append({"file": f"{name} (again)", "status": response.status_code, "spec": spec,
                              "event_id": response.json().get("event_id"), "outcome": "duplicate",
                              "check": "OK" if ok else "expected 200 duplicate"})
            if not ok:
                self.failures.append(f"{name} repost answered {response.status_code}, not 200 duplicate")

    def check_flower(self) -> None:
        workers = self._flower_workers()
        event_id = self.rows[0]["event_id"]

        def names() -> set[str]:
            tasks = requests.get(f"{self.flower}/api/tasks", params={"limit": 1000}, timeout=5).json()
            return {t["name"] for t in tasks.values() if event_id in str(t.get("args"))}

        try:
            expected = FUSED_TASK_NAMES if self.config.service["pipeline_grain"] == "fused" else TASK_NAMES
            seen = wait_for(lambda: names() >= expected and names(), 30, 0.5, "Flower to list the event's tasks")
        except Exception as exc:  # noqa: BLE001 - reported as a failed check
            seen = set()
            self.failures.append(f"Flower: {exc}")
        _say(f"Flower lists workers {workers} and {len(seen)} task kinds for event {event_id}")
        if not any(w.startswith("ingest@") for w in workers):
            self.failures.append("Flower does not list the ingest worker")

    def table(self) -> None:
        _say(f"\n{'sample':<36} {'HTTP':>4}  {'outcome':<13} {'event_id':<32}  check")
        for row in self.rows:
            note = f" ({row['note']})" if row.get("note") else ""
            _say(f"{row['file']:<36} {row['status']:>4}  {str(row.get('outcome')):<13} "
                 f"{str(row.get('event_id')):<32}  {row.get('check')}{note}")


def _matches_event(event: dict[str, Any], event_id: str, action: str) -> bool:
    if event.get("event_action") != action:
        return False
    if action == "trigger":
        return event.get("payload", {}).get("custom_details", {}).get("event_id") == event_id
    return True


def _compare(event: dict[str, Any], expected: dict[str, Any]) -> list[str]:
    actual = {"event_action": event.get("event_action"), "routing_key": event.get("routing_key"),
              "severity": event.get("payload", {}).get("severity"),
              "timestamp": event.get("payload", {}).get("timestamp")}
    return [f"{k} {actual[k]!r} != {v!r}" for k, v in expected.items() if actual[k] != v]


def run_demo() -> int:
    demo = Demo()
    proc = demo.start(ROOT / "var" / "demo-up.log")
    try:
        demo.wait_ready()
        _say("first wave: every sample, signed")
        demo.run_wave(FIRST_WAVE)
        _say("second wave: the trunk recovers")
        demo.run_wave(SECOND_WAVE)
        _say("re-posting with the same idempotency keys")
        demo.check_duplicates()
        demo.check()
        demo.check_flower()
        demo.counts = demo.ledger.counts()
    except Exception as exc:  # noqa: BLE001 - any failure ends the demo red, with the reason
        demo.failures.append(f"{type(exc).__name__}: {exc}")
    finally:
        _stop(proc)
    demo.table()
    if demo.counts:
        _say(f"\nledger counts: {json.dumps(demo.counts)}")
    if demo.failures:
        _say("\nDEMO FAILED:\n  " + "\n  ".join(demo.failures))
        return 1
    _say("\ndemo passed: every event reached its expected outcome")
    return 0


def _stop(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    except ProcessLookupError:
        pass
