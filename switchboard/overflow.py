"""Queue overflow, the pure part: a Genesys queue's occupancy from its observation metrics, and which queue
and priority a work item gets given a route's ``overflow`` option and that occupancy.

Occupancy = (oInteracting + oWaiting) / oOnQueueUsers: the interactions the queue holds right now
(connected to an agent, or waiting for one) per agent who is on queue to take them. Genesys' queue
observation query answers an instantaneous snapshot of these counts ("Instantaneous Observations",
https://developer.genesys.cloud/analyticsdatamanagement/analytics/index); oWaiting counts interactions
waiting for an agent and oInteracting those connected to one (a description of the metrics:
https://forum.sggu.com/t/real-time-queue-observation-reporting-via-the-analytics-api/71); only agents
in an on-queue presence, and not already over-utilised, receive ACD-routed work
(https://developer.genesys.cloud/analyticsdatamanagement/analytics/observation/user-query), hence
oOnQueueUsers as the capacity. A queue at 1.0 has as much work as on-queue agents; above 1.0 work waits.

A queue with nobody on queue has no capacity: with work in it that is infinite occupancy (overflow), with
none it is 0 (an idle, unstaffed queue says nothing about load; keep the configured primary).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

OCCUPANCY_METRICS = ("oInteracting", "oWaiting", "oOnQueueUsers")


def occupancy(observations: dict[str, float]) -> float:
    """(oInteracting + oWaiting) / oOnQueueUsers; a metric Genesys did not answer counts as 0."""
    load = float(observations.get("oInteracting") or 0) + float(observations.get("oWaiting") or 0)
    capacity = float(observations.get("oOnQueueUsers") or 0)
    if capacity <= 0:
        return math.inf if load > 0 else 0.0
    return load / capacity


@dataclass(frozen=True)
class QueueChoice:
    queue: str           # the queue name the work item goes to
    priority_delta: int  # added to the work item's priority because of the overflow (0 on the primary)
    decision: str        # "primary", "overflow" or "unknown" (occupancy could not be read: primary kept)
    note: str            # for the ledger: why


def choose_queue(primary: str, overflow: dict[str, Any] | None, occupancy_now: float | None) -> QueueChoice:
    """The primary queue, or the overflow queue (with its priority delta) when occupancy is above the threshold.

    ``occupancy_now`` None means the statistics could not be read: the primary is kept, because a work item
    in a busy queue is still worked, while one sent to the overflow queue on a guess may take agents from
    work that needs them more; the caller counts these so a blind spot shows on a graph.
    """
    if not overflow:
        return QueueChoice(primary, 0, "primary", "")
    threshold = float(overflow["when_occupancy_above"])
    if occupancy_now is None:
        return QueueChoice(primary, 0, "unknown", f"occupancy of {primary} unknown: kept it")
    shown = "no agent on queue" if math.isinf(occupancy_now) else f"{occupancy_now:.2f}"
    if occupancy_now > threshold:
        return QueueChoice(overflow["queue"], int(overflow.get("priority_delta", 1)), "overflow",
                           f"overflow: {primary} occupancy {shown} > {threshold:g}")
    return QueueChoice(primary, 0, "primary", f"{primary} occupancy {shown} <= {threshold:g}")


def workitem_priority(base: int | None, route_delta: int, overflow_delta: int) -> int | None:
    """The work item's priority: the base (route's, else the target's per severity) plus the deltas.
    Without a base and without deltas there is no priority (Genesys applies its default)."""
    if base is None and not route_delta and not overflow_delta:
        return None
    return (base or 0) + route_delta + overflow_delta
