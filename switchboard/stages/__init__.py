"""Pure pipeline stages: ``stage(alert, ctx) -> alert | Outcome``.

No Celery, no HTTP, no Redis here: the Celery tasks in ``tasks/`` load the context, call a stage and
pass its result on, so every stage is testable on its own and the chain's grain can change freely.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from switchboard.config import Config


@dataclass(frozen=True)
class Outcome:
    """A stage's decision that ends the event's journey here (recorded in the ledger)."""

    kind: str
    reason: str
    release_at: float | None = None  # for "deferred": when to look at the event again (epoch seconds)
    hold_data: dict[str, Any] | None = None  # for "deferred": what to hold, if not the stage's input


@dataclass
class StageContext:
    config: Config
    env: dict[str, str] = field(default_factory=dict)
    now: float = 0.0
    incidents: Any = None  # switchboard.incidents.IncidentStore (per-alert_key state in Redis), if any
    # A Redis pipeline for writes that may wait until the task sends its ledger batch (before any outcome
    # or dispatch is recorded), if the task has one: passed on to ``incidents``, never used by a stage itself.
    writes: Any = None


Alert = dict[str, Any]
STAGE_ORDER = ("normalize", "dedupe", "enrich", "gate", "route")
