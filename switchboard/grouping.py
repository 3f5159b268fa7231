"""Storm control as pure functions: the dependency graph, who may be grouped, and the storm test.

The I/O (who leads a business unit's group, the hourly counters, which entities are firing) lives in
``switchboard.incidents``; these functions only decide.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any


def parents_of(dependencies: dict[str, list[str]]) -> dict[str, list[str]]:
    """Invert ``parent -> children`` into ``child -> parents``."""
    parents: dict[str, list[str]] = {}
    for parent, children in dependencies.items():
        for child in children:
            parents.setdefault(child, []).append(parent)
    return parents


def ancestors(entity: str, parents: dict[str, list[str]]) -> list[str]:
    """Every ancestor of ``entity``, nearest first (a cycle in the graph cannot loop: each is visited once)."""
    out: list[str] = []
    frontier = list(parents.get(entity, []))
    while frontier:
        node = frontier.pop(0)
        if node in out or node == entity:
            continue
        out.append(node)
        frontier.extend(parents.get(node, []))
    return out


def firing_root(entity: str, parents: dict[str, list[str]], firing: Callable[[list[str]], dict[str, str]]
                ) -> tuple[str, str] | None:
    """The farthest firing ancestor and its incident's alert_key, or None. ``firing`` maps entities to the
    alert_key of their firing incident (one lookup for all ancestors)."""
    chain = ancestors(entity, parents)
    if not chain:
        return None
    lit = firing(chain)
    for node in reversed(chain):
        if node in lit:
            return node, lit[node]
    return None


def cycles(dependencies: dict[str, list[str]]) -> list[str]:
    """Entities that are their own ancestor (a config error)."""
    parents = parents_of(dependencies)
    return sorted(e for e in set(parents) if e in _all_ancestors(e, parents))


def _all_ancestors(entity: str, parents: dict[str, list[str]]) -> set[str]:
    seen: set[str] = set()
    frontier = list(parents.get(entity, []))
    while frontier:
        node = frontier.pop()
        if node not in seen:
            seen.add(node)
            frontier.extend(parents.get(node, []))
    return seen


def groupable(alert: dict[str, Any], grouping: dict[str, Any]) -> bool:
    return (grouping["window_s"] > 0 and alert["status"] == "firing" and alert["kind"] in grouping["kinds"]
            and alert["severity"] in grouping["severities"])


def baseline(history: Iterable[int], minimum: int) -> float:
    """Alerts per hour considered normal: the mean of the past hours, never below ``minimum``."""
    counts = list(history)
    mean = sum(counts) / len(counts) if counts else 0.0
    return max(float(minimum), mean)


def in_storm(this_hour: int, history: Iterable[int], storm: dict[str, Any]) -> bool:
    return this_hour > storm["factor"] * baseline(history, storm["min_baseline_per_hour"])


def with_attachments(alert: dict[str, Any], attached: dict[str, int]) -> dict[str, Any]:
    """The lead incident's alert, updated to list every entity attached to it (and how many alerts each)."""
    out = dict(alert)
    out["attributes"] = {**(alert.get("attributes") or {}),
                         "attached_entities": sorted(attached),
                         "attached_alerts": sum(attached.values())}
    out["attached"] = len(attached)
    return out
