"""vendor_sandbox/schemas.py: the compiled validator (jsonschema-rs) that accepts requests quickly agrees with
jsonschema, which judges everything it refuses, on every schema of the sandbox: valid requests, each rule
broken, and random values put anywhere in a valid PagerDuty event. A fast accept of what jsonschema refuses
would let an invalid request through our vendors' contract; that is what these tests would catch."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vendor_sandbox import crm, cxone, genesys_schemas, orchestrator, pagerduty
from vendor_sandbox.schemas import SchemaValidator, schema_errors

VALID_TRIGGER = {
    "routing_key": "R0UT1NGKEY0000000000000000000001",
    "event_action": "trigger",
    "dedup_key": "trunk-7",
    "client": "Switchboard",
    "client_url": "https://switchboard.example/alerts/7",
    "links": [{"href": "https://switchboard.example/runbook", "text": "runbook"}],
    "images": [{"src": "https://switchboard.example/graph.png", "alt": "graph"}],
    "payload": {"summary": "Trunk 7 down", "source": "genesys:trunk:7", "severity": "critical",
                "timestamp": "2026-12-06T16:37:00.123+00:00", "component": "trunk", "group": "voice",
                "class": "trunk.down", "custom_details": {"count": 3, "nested": {"a": [1, 2.5, None, True]}}},
}


def _with(path: tuple[Any, ...], value: Any, base: dict[str, Any] = VALID_TRIGGER) -> Any:
    event = copy.deepcopy(base)
    target = event
    for step in path[:-1]:
        target = target[step]
    if value is _DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return event


_DELETE = object()
PAGERDUTY_CASES = [
    VALID_TRIGGER,
    {"routing_key": "R1", "event_action": "acknowledge", "dedup_key": "k"},
    {"routing_key": "R1", "event_action": "resolve", "dedup_key": "k"},
    _with(("payload", "timestamp"), "2015-07-17T08:42:58.315+0000"),
    _with(("payload", "timestamp"), "2026-12-06T16:37:00Z"),
    _with(("payload", "summary"), "😀" * 1024),
    json.loads('{"routing_key": "\\ud800", "event_action": "trigger", '  # a lone surrogate: valid JSON text
               '"payload": {"summary": "s", "source": "s", "severity": "info"}}'),
    # each rule broken once
    _with(("routing_key",), _DELETE),
    _with(("routing_key",), ""),
    _with(("routing_key",), 42),
    _with(("event_action",), "escalate"),
    _with(("payload",), _DELETE),
    {"routing_key": "R1", "event_action": "resolve"},
    _with(("dedup_key",), "k" * 256),
    _with(("links", 0, "href"), _DELETE),
    _with(("images", 0, "src"), "http://plain.example/graph.png"),
    _with(("payload", "summary"), ""),
    _with(("payload", "summary"), "😀" * 1025),
    _with(("payload", "severity"), "fatal"),
    _with(("payload", "source"), _DELETE),
    _with(("payload", "timestamp"), "2026-12-06"),
    _with(("payload", "timestamp"), "yesterday at noon"),
    _with(("payload", "timestamp"), "2026-13-06T16:37:00Z"),
    _with(("payload", "custom_details"), ["not", "an", "object"]),
    [VALID_TRIGGER],
    "trigger",
    None,
    10 ** 30,
]
GENERIC_CASES = [{}, [], "x", 0, 1.5, True, None, {"unknown": 1}, {"id": None, "name": ["a"]}, 10 ** 30]
VALIDATORS = {
    "pagerduty.event": pagerduty.EVENT_VALIDATOR,
    "pagerduty.change": pagerduty.CHANGE_EVENT_VALIDATOR,
    "genesys.workitem_create": genesys_schemas.WORKITEM_CREATE_VALIDATOR,
    "genesys.workitem_query": genesys_schemas.WORKITEM_QUERY_VALIDATOR,
    "genesys.create_callback": genesys_schemas.CREATE_CALLBACK_VALIDATOR,
    "genesys.observation_query": genesys_schemas.OBSERVATION_QUERY_VALIDATOR,
    "cxone.queue_callback": cxone.QUEUE_CALLBACK_VALIDATOR,
    "crm.customer": crm.CUSTOMER_VALIDATOR,
    "orchestrator.resolution": orchestrator.RESOLUTION_VALIDATOR,
}


def _agree(validator: SchemaValidator, instance: Any) -> None:
    full = validator.full.is_valid(instance)
    assert validator.accepts_fast(instance) == full, instance
    assert (schema_errors(validator, instance) == []) == full, instance


@pytest.mark.parametrize("instance", PAGERDUTY_CASES, ids=range(len(PAGERDUTY_CASES)))
def test_both_validators_agree_on_pagerduty_events(instance: Any) -> None:
    _agree(pagerduty.EVENT_VALIDATOR, instance)


def test_the_cases_hold_valid_and_invalid_events() -> None:
    verdicts = [pagerduty.EVENT_VALIDATOR.full.is_valid(case) for case in PAGERDUTY_CASES]
    assert verdicts[:7] == [True] * 7 and not any(verdicts[7:])


@pytest.mark.parametrize("name", sorted(VALIDATORS))
def test_both_validators_agree_on_every_sandbox_schema(name: str) -> None:
    for instance in GENERIC_CASES:
        _agree(VALIDATORS[name], instance)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30)
    | st.sampled_from(["", "trigger", "critical", "https://x", "2026-12-06T16:37:00Z", "2026-12-06", "k" * 256]),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=6,
)
PATHS = [("routing_key",), ("event_action",), ("dedup_key",), ("links",), ("links", 0), ("links", 0, "href"),
         ("images", 0, "src"), ("payload",), ("payload", "summary"), ("payload", "severity"),
         ("payload", "source"), ("payload", "timestamp"), ("payload", "custom_details"), ("extra",)]


@settings(max_examples=300, deadline=None)
@given(path=st.sampled_from(PATHS), value=JSON_VALUES | st.just(_DELETE))
def test_both_validators_agree_on_any_value_anywhere_in_an_event(path: tuple[Any, ...], value: Any) -> None:
    if value is _DELETE and path == ("extra",):
        return
    _agree(pagerduty.EVENT_VALIDATOR, _with(path, value))
