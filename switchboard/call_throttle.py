"""Protect the contact center during mass events: what a proactive call does when the Genesys queue that
would take it is busy (issue "Flow control", queue-occupancy throttle). Pure; occupancy comes from
``tasks.occupancy`` (Genesys queue observations, cached in Redis).

Above ``above`` (0.8) occupancy: critical calls go ahead (a customer's freezer failing is why we call);
default-priority calls are slowed (re-queued ``slow_s`` later, not counted as an attempt) up to
``max_slowdowns`` times, then become a work item; bulk calls become a work item at once. A work item is
worked when agents have room; a call would ring into a queue that has none. Unknown occupancy: call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class CallDecision:
    action: str        # "call" | "slow" | "workitem"
    reason: str = ""


def decide(occupancy: float | None, priority: str, slowed: int, cfg: dict[str, Any]) -> CallDecision:
    if occupancy is None or occupancy <= cfg["above"] or priority == "critical":
        return CallDecision("call")
    busy = f"queue occupancy {occupancy:.2f} above {cfg['above']:g}"
    if priority == "bulk":
        return CallDecision("workitem", f"{busy}: a low-priority call becomes a work item")
    if slowed < cfg["max_slowdowns"]:
        return CallDecision("slow", f"{busy}: call slowed ({slowed + 1}/{cfg['max_slowdowns']})")
    return CallDecision("workitem", f"{busy} after {slowed} slowdowns: the call becomes a work item")
