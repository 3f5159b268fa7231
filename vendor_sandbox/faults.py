"""Thread-safe fault injection and rate limiting shared by all vendor emulators.

``Faults`` holds, per vendor, a queue of scripted answers, a random failure rate and two added latencies:
``latency_ms`` is slept before the request is handled, ``latency_after_ms`` after it was handled (the work
item exists, the request is recorded) and before the answer is sent: "the vendor acted, the answer is slow".
A scripted entry with ``"pass": true`` is handled normally, with that entry's latencies.
``RateLimiter`` enforces ``limit`` requests per ``window_s`` seconds per (vendor, key), sliding window."""

from __future__ import annotations

import math
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

MAX_SCRIPT_COUNT = 100_000


@dataclass(frozen=True)
class ScriptedAnswer:
    """One injected answer: HTTP status, optional Retry-After seconds, optional JSON body, extra delays.
    ``passthrough``: no injected answer, the request is handled normally (only the delays apply)."""

    status: int
    retry_after: int | None = None
    body: Any = None
    latency_ms: float = 0.0
    latency_after_ms: float = 0.0
    passthrough: bool = False

    def describe(self) -> dict[str, Any]:
        if self.passthrough:
            return {"pass": True, "latency_ms": self.latency_ms, "latency_after_ms": self.latency_after_ms}
        return {
            "status": self.status,
            "retry_after": self.retry_after,
            "body": self.body,
            "latency_ms": self.latency_ms,
            "latency_after_ms": self.latency_after_ms,
        }


@dataclass(frozen=True)
class Decision:
    """What to do with the next request: sleep ``delay_s`` then send ``answer`` (None: handle normally);
    sleep ``after_s`` between handling it (recording it) and sending the answer."""

    delay_s: float
    answer: ScriptedAnswer | None
    after_s: float = 0.0


@dataclass
class _VendorFaults:
    script: deque[ScriptedAnswer] = field(default_factory=deque)
    failure_rate: float = 0.0
    failure_status: int = 500
    latency_ms: float = 0.0
    latency_after_ms: float = 0.0

    def describe(self) -> dict[str, Any]:
        return {
            "script": [answer.describe() for answer in self.script],
            "failure_rate": self.failure_rate,
            "failure_status": self.failure_status,
            "latency_ms": self.latency_ms,
            "latency_after_ms": self.latency_after_ms,
        }


def _opt_int(spec: Mapping[str, Any], key: str, default: int | None, low: int, high: int) -> int | None:
    value = spec.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{key} must be an integer between {low} and {high}, got {value!r}")
    return value


def _int(spec: Mapping[str, Any], key: str, default: int, low: int, high: int) -> int:
    value = _opt_int(spec, key, default, low, high)
    if value is None:
        raise ValueError(f"{key} must be an integer between {low} and {high}, got null")
    return value


def _number(spec: Mapping[str, Any], key: str, default: float, low: float, high: float) -> float:
    value = spec.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise ValueError(f"{key} must be a number between {low} and {high}, got {value!r}")
    return float(value)


def _check_keys(spec: Mapping[str, Any], allowed: set[str], what: str) -> None:
    if not isinstance(spec, Mapping):
        raise ValueError(f"{what} must be a JSON object")
    unknown = sorted(set(spec) - allowed)
    if unknown:
        raise ValueError(f"unknown {what} field(s): {', '.join(unknown)}")


SCRIPT_KEYS = {"status", "count", "retry_after", "body", "latency_ms", "latency_after_ms"}


def _parse_entry(item: Any) -> ScriptedAnswer:
    if isinstance(item, Mapping) and item.get("pass") is True:
        _check_keys(item, {"pass", "count", "latency_ms", "latency_after_ms"}, "pass-through script entry")
        return ScriptedAnswer(
            status=0,
            latency_ms=_number(item, "latency_ms", 0, 0, 600_000),
            latency_after_ms=_number(item, "latency_after_ms", 0, 0, 600_000),
            passthrough=True,
        )
    _check_keys(item, SCRIPT_KEYS, "script entry")
    if "status" not in item:
        raise ValueError('script entry needs a status (or "pass": true)')
    return ScriptedAnswer(
        status=_int(item, "status", 0, 100, 599),
        retry_after=_opt_int(item, "retry_after", None, 0, 86_400),
        body=item.get("body"),
        latency_ms=_number(item, "latency_ms", 0, 0, 600_000),
        latency_after_ms=_number(item, "latency_after_ms", 0, 0, 600_000),
    )


def parse_script(items: Any) -> list[ScriptedAnswer]:
    """Expand ``[{"status", "count"=1, "retry_after"?, "body"?, "latency_ms"=0, "latency_after_ms"=0}]``
    (or ``{"pass": true, "count"?, "latency_ms"?, "latency_after_ms"?}``) into single answers."""
    if not isinstance(items, list):
        raise ValueError("script must be a list")
    answers: list[ScriptedAnswer] = []
    for item in items:
        answer = _parse_entry(item)
        answers.extend([answer] * _int(item, "count", 1, 1, MAX_SCRIPT_COUNT))
    return answers


class Faults:
    """Per-vendor fault state. ``configure`` merges: only the given fields change (``script`` replaces)."""

    def __init__(self, seed: int | None = None) -> None:
        self._lock = threading.Lock()
        self._vendors: dict[str, _VendorFaults] = {}
        self._random = random.Random(seed)

    def configure(self, vendor: str, spec: Mapping[str, Any]) -> dict[str, Any]:
        """Apply ``{script, failure_rate, failure_status, latency_ms, latency_after_ms, seed}``; ValueError if
        invalid."""
        _check_keys(
            spec, {"script", "failure_rate", "failure_status", "latency_ms", "latency_after_ms", "seed"}, "fault"
        )
        script = parse_script(spec["script"]) if "script" in spec else None
        current = self.describe(vendor)
        rate = _number(spec, "failure_rate", current["failure_rate"], 0.0, 1.0)
        status = _int(spec, "failure_status", current["failure_status"], 100, 599)
        latency = _number(spec, "latency_ms", current["latency_ms"], 0, 600_000)
        latency_after = _number(spec, "latency_after_ms", current["latency_after_ms"], 0, 600_000)
        seed = _opt_int(spec, "seed", None, 0, 2**63)
        with self._lock:
            state = self._vendors.setdefault(vendor, _VendorFaults())
            if script is not None:
                state.script = deque(script)
            state.failure_rate, state.failure_status, state.latency_ms = rate, status, latency
            state.latency_after_ms = latency_after
            if seed is not None:
                self._random.seed(seed)
            return state.describe()

    def describe(self, vendor: str) -> dict[str, Any]:
        with self._lock:
            return self._vendors.get(vendor, _VendorFaults()).describe()

    def decide(self, vendor: str) -> Decision:
        """Consume the next scripted answer, else roll the random failure; always add the base latencies."""
        with self._lock:
            state = self._vendors.get(vendor)
            if state is None:
                return Decision(0.0, None)
            answer = state.script.popleft() if state.script else None
            if answer is None and state.failure_rate > 0 and self._random.random() < state.failure_rate:
                answer = ScriptedAnswer(status=state.failure_status)
            extra = answer.latency_ms if answer is not None else 0.0
            extra_after = answer.latency_after_ms if answer is not None else 0.0
            delay_s = (state.latency_ms + extra) / 1000.0
            after_s = (state.latency_after_ms + extra_after) / 1000.0
            if answer is not None and answer.passthrough:
                answer = None
            return Decision(delay_s, answer, after_s)

    def clear(self, vendor: str | None = None) -> None:
        with self._lock:
            if vendor is None:
                self._vendors.clear()
            else:
                self._vendors.pop(vendor, None)

    def reset(self) -> None:
        self.clear()


class RateLimiter:
    """Sliding-window limit per (vendor, key). Vendors register defaults; ``configure`` overrides them."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self._defaults: dict[str, tuple[int, float]] = {}
        self._limits: dict[str, tuple[int, float]] = {}
        self._windows: dict[tuple[str, str], deque[float]] = {}

    @staticmethod
    def _check(limit: int, window_s: float) -> tuple[int, float]:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValueError(f"limit must be an integer >= 1, got {limit!r}")
        if isinstance(window_s, bool) or not isinstance(window_s, int | float) or not window_s > 0:
            raise ValueError(f"window_s must be a number > 0, got {window_s!r}")
        return limit, float(window_s)

    def set_default(self, vendor: str, limit: int, window_s: float) -> None:
        with self._lock:
            self._defaults[vendor] = self._check(limit, window_s)

    def configure(self, vendor: str, limit: int, window_s: float) -> dict[str, Any]:
        """Set the vendor's limit (existing windows are kept); raises ValueError if invalid."""
        checked = self._check(limit, window_s)
        with self._lock:
            self._limits[vendor] = checked
        return self.config(vendor)

    def config(self, vendor: str) -> dict[str, Any]:
        with self._lock:
            limit, window_s = self._limits.get(vendor) or self._defaults.get(vendor) or (None, None)
        return {"vendor": vendor, "limit": limit, "window_s": window_s}

    def hit(self, vendor: str, key: str) -> int | None:
        """Count one request for ``key``; None if allowed, else whole seconds (>= 1) until a slot frees."""
        with self._lock:
            config = self._limits.get(vendor) or self._defaults.get(vendor)
            if config is None:
                return None
            limit, window_s = config
            now = self._clock()
            window = self._windows.setdefault((vendor, key), deque())
            while window and window[0] <= now - window_s:
                window.popleft()
            if len(window) >= limit:
                frees_at = window[len(window) - limit] + window_s
                return max(1, math.ceil(frees_at - now))
            window.append(now)
            return None

    def reset(self) -> None:
        """Forget all windows and configured overrides (vendor defaults stay)."""
        with self._lock:
            self._windows.clear()
            self._limits.clear()
