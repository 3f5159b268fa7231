"""The stalled sweep's pure decisions (switchboard/stalled.py): the cut, reading kombu's Redis messages, the plan."""

from __future__ import annotations

import base64
import json

from switchboard import stalled
from switchboard.stalled import held_event_ids, oldest_published_at, plan, sweep_cut


def _message(event_id: str | None = None, published_at: float | None = None, body_event: str | None = None) -> str:
    headers: dict = {}
    if event_id:
        headers["event_id"] = event_id
    if published_at is not None:
        headers["published_at"] = published_at
    body = base64.b64encode(json.dumps([[{"event_id": body_event}], {}, {}]).encode()).decode()
    return json.dumps({"body": body, "headers": headers, "properties": {"body_encoding": "base64"}})


def test_the_cut_is_the_stall_time_when_nothing_is_queued() -> None:
    assert sweep_cut(1000.0, 120, None) == 880.0


def test_the_cut_moves_back_behind_the_oldest_queued_message() -> None:
    # a backlog: the oldest queued message was published 300 s ago, so only events older than that - 120 s
    assert sweep_cut(1000.0, 120, 700.0) == 580.0
    # a queue that moves: about the stall time (less the moment its oldest message has waited)
    assert sweep_cut(1000.0, 120, 999.5) == 879.5


def test_oldest_published_at_reads_the_stamp_and_treats_unstamped_as_oldest() -> None:
    assert oldest_published_at([None, None]) is None
    assert oldest_published_at([_message("a", 50.0), None, _message("b", 20.0)]) == 20.0
    assert oldest_published_at([_message("a", 50.0), _message("old")]) == 0.0  # no stamp: nothing is swept
    assert oldest_published_at(["not json"]) == 0.0


def test_held_event_ids_reads_unacked_entries_by_header_or_body() -> None:
    entries = [json.dumps([json.loads(_message("e1", 1.0)), "", "ingest"]),
               json.dumps([json.loads(_message(None, 1.0, body_event="e2")), "", "dispatch.default"]),
               "garbage"]
    assert held_event_ids(entries) == {"e1", "e2"}


ROUTES = [{"target": "pagerduty", "priority": "critical"}, {"target": "genesys_workitem", "priority": "default"}]


def test_plan_republishes_only_the_dispatches_without_a_result() -> None:
    record = {"routed": json.dumps({"event_id": "e", "routes": ROUTES}), "body": "{}",
              "target:pagerduty": json.dumps({"result": "dispatched"})}
    decided = plan(record, 3)
    assert decided.action == stalled.REPUBLISH_DISPATCH
    assert [r["target"] for r in decided.routes] == ["genesys_workitem"]


def test_plan_settles_an_event_whose_targets_all_finished() -> None:
    record = {"routed": json.dumps({"routes": ROUTES}),
              "target:pagerduty": "{}", "target:genesys_workitem": "{}"}
    assert plan(record, 3).action == stalled.SETTLE


def test_plan_republishes_the_ingest_of_an_unrouted_event() -> None:
    assert plan({"body": '{"a": 1}'}, 3).action == stalled.REPUBLISH_INGEST


def test_plan_leaves_an_event_that_has_an_outcome() -> None:
    assert plan({"outcome": "dispatched", "body": "{}"}, 3).action == stalled.SETTLED


def test_plan_gives_up_after_max_sweeps_or_with_nothing_to_publish() -> None:
    assert plan({"body": "{}", "sweeps": "3"}, 3).action == stalled.GIVE_UP
    assert plan({"body": "{}", "sweeps": "2"}, 3).action == stalled.REPUBLISH_INGEST
    assert plan({"source": "ztp"}, 3).action == stalled.GIVE_UP
