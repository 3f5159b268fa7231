"""The accounting invariant, checked at the end of every scenario once faults have ended and the broker
has drained (no message ready or unacknowledged anywhere, so nothing can still run):

- every event the receiver took (202, or 200 "duplicate" for a retry of one it took) has exactly one
  terminal outcome in the ledger, and the ledger's counters agree: accepted - internal = events taken,
  accepted = sum of outcome counters;
- per target, the events whose target result is ``dispatched`` are exactly the events the vendor acted on
  (PagerDuty: an alert opened with the event's dedup_key; Genesys: a work item tagged with its event id);
- no event made the vendor act twice (two alerts, two work items). PagerDuty triggers re-sent with the
  same dedup_key after an uncertain attempt are counted (``resent``): PagerDuty folds them into the one
  alert, which is why that target's ``on_uncertain`` is ``resend``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from switchboard.ledger import OUTCOMES
from switchboard.waiting import wait_for
from tests.reliability.load import LoadGenerator
from tests.reliability.stack import Stack

ENQUEUE = "/v2/enqueue"


@dataclass
class Report:
    scenario: str
    events_sent: int
    accepted: int
    lost: int
    duplicated: int
    resent: int = 0
    verified_existing: int = 0  # redelivered dispatches that found the vendor had already acted
    outcomes: dict[str, int] = field(default_factory=dict)
    answers: dict[str, int] = field(default_factory=dict)
    max_latency_s: float = 0.0
    problems: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def drain(stack: Stack, load: LoadGenerator, timeout: float = 90) -> None:
    """Wait until every taken event has an outcome and the broker holds no message at all."""
    ledger = stack.ledger()
    ids = [e.event_id for e in load.accepted()]

    def settled() -> bool:
        pipe = ledger.r.pipeline()
        for event_id in ids:
            pipe.hget(stack.keys.ledger(event_id), "outcome")
        return all(pipe.execute()) and stack.broker_messages() == 0

    try:
        wait_for(settled, timeout, 0.25, "every accepted event to reach an outcome and the broker to drain")
    except Exception:  # noqa: BLE001 - the invariant check below says what is missing
        pass


def check(stack: Stack, load: LoadGenerator, scenario: str) -> Report:
    """Compute the figures and every broken rule (``problems``); ``assert_holds`` fails on any."""
    ledger = stack.ledger()
    taken = load.accepted()
    ids = [e.event_id for e in taken]
    problems: list[str] = []
    if len(set(ids)) != len(ids):
        problems.append("two sent events were given the same event id")
    counts = ledger.counts()
    internal = int(ledger.r.get(stack.keys.counter("internal")) or 0)
    outcome_total = sum(counts[o] for o in OUTCOMES)
    if counts["accepted"] - internal != len(taken):
        problems.append(f"ledger accepted-internal={counts['accepted'] - internal} but the receiver took {len(taken)}")
    if outcome_total != counts["accepted"]:
        problems.append(f"ledger accepted={counts['accepted']} but outcomes sum to {outcome_total}")
    traces = {event_id: ledger.trace(event_id) for event_id in ids}
    lost = [i for i, t in traces.items() if not t or not t["outcome"]]
    if lost:
        problems.append(f"{len(lost)} taken events without an outcome, e.g. {lost[:3]}")
    pd_alerts = Counter(a["dedup_key"] for a in stack.sandbox.get("/_sandbox/pagerduty/alerts"))
    pd_sends = Counter(r["json"]["payload"]["custom_details"]["event_id"] for r in stack.sandbox.requests(ENQUEUE)
                       if r["json"].get("event_action") == "trigger")
    workitems = Counter(w.get("externalTag") for w in stack.sandbox.workitems())
    duplicated, resent, verified = 0, 0, 0
    twice: list[str] = []
    for event in taken:
        trace = traces.get(event.event_id) or {}
        verified += any(s.get("result") == "verified-existing" for s in trace.get("stages", []))
        result = (trace.get("targets") or {}).get(event.target, {}).get("result")
        if event.target == "pagerduty":
            acted = pd_alerts.get(trace.get("alert_key"), 0)
            resent += pd_sends.get(event.event_id, 0) > 1
        else:
            acted = workitems.get(f"switchboard:{event.event_id}:{event.target}", 0)
        duplicated += acted > 1
        if acted > 1:
            twice.append(f"{event.event_id} ({event.target})")
        if (result == "dispatched") != (acted >= 1):
            problems.append(f"{event.event_id} ({event.target}): ledger says {result}, vendor acted {acted} times")
    if duplicated:
        problems.append(f"{duplicated} events made the vendor act twice, e.g. {twice[:3]}")
    return Report(scenario, len(load.events), len(taken), len(lost), duplicated, resent, verified,
                  {o: counts[o] for o in OUTCOMES if counts[o]},
                  {str(k): v for k, v in sorted(load.statuses().items(), key=str)},
                  round(load.max_latency_s(), 3), problems)


def settle_and_check(stack: Stack, load: LoadGenerator, scenario: str, timeout: float = 90) -> Report:
    drain(stack, load, timeout)
    report = check(stack, load, scenario)
    from tests.reliability.results import record

    record(report)
    return report


def assert_holds(report: Report) -> None:
    assert not report.problems, f"{report.scenario}: accounting invariant broken: {report.problems[:10]}"
    assert report.lost == 0 and report.duplicated == 0
