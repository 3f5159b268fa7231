"""JSON text for what the pipeline writes to Redis per event (ledger entries, incident records): orjson,
read back by ``json.loads`` as the stdlib's ``json.dumps`` text was.

Why: the ledger's stage entries, fields and incident records were ~2% of a pool child's CPU with the stdlib
encoder (bench/profile.py), ~5x more than orjson takes. Same results: keys that are not strings become
strings, a datetime goes to ``default`` (``default=str`` writes ``2026-12-06 08:30:00+00:00``, as before), and
what orjson refuses (an int beyond 64 bits, a lone surrogate, nesting deeper than 254) or cannot encode is
handed to the stdlib, which writes it or raises the ``TypeError`` it always raised. One difference: NaN and
infinities are written ``null`` (the stdlib wrote ``NaN``, which is not JSON).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import orjson

_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME


def dumps(obj: Any, *, default: Callable[[Any], Any] | None = None) -> str:
    """``json.dumps(obj, default=default)``'s value, compact."""
    try:
        return orjson.dumps(obj, default=default, option=_OPTIONS).decode("utf-8")
    except orjson.JSONEncodeError:
        return json.dumps(obj, default=default)
