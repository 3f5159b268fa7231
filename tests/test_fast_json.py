"""The JSON the pipeline stores in Redis (switchboard/fast_json.py): read back as the stdlib's text was."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from switchboard import fast_json

# unbounded ints (beyond orjson's 64 bits), any text (lone surrogates included), keys that are not strings
values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=5)
    | st.dictionaries(st.text(max_size=8) | st.integers(-5, 5) | st.booleans(), inner, max_size=5),
    max_leaves=30)


@settings(max_examples=300, deadline=None)
@given(values)
def test_reads_back_as_the_stdlibs_text(value: Any) -> None:
    assert json.loads(fast_json.dumps(value)) == json.loads(json.dumps(value))


def _nested(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize("value", [{"big": 2**70}, {"surrogate": "\ud800"}, {"deep": _nested(300)}],
                         ids=["big-int", "surrogate", "deep"])
def test_what_orjson_refuses_is_written_by_the_stdlib(value: Any) -> None:
    assert fast_json.dumps(value) == json.dumps(value)


def test_datetimes_go_to_default_as_before() -> None:
    entry = {"stage": "route", "at": 1.5, "held_until": datetime(2026, 12, 6, 8, 30, tzinfo=UTC)}
    assert json.loads(fast_json.dumps(entry, default=str)) == json.loads(json.dumps(entry, default=str))
    assert json.loads(fast_json.dumps(entry, default=str))["held_until"] == "2026-12-06 08:30:00+00:00"


def test_what_nothing_can_encode_raises_the_stdlibs_type_error() -> None:
    with pytest.raises(TypeError, match="not JSON serializable"):
        fast_json.dumps({"when": datetime(2026, 12, 6, tzinfo=UTC)})
    with pytest.raises(TypeError, match="not JSON serializable"):
        fast_json.dumps({"x": object()})


def test_nan_is_written_as_null() -> None:
    assert json.loads(fast_json.dumps({"value": math.nan, "inf": math.inf})) == {"value": None, "inf": None}
