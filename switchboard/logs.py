"""Logging for every process: one JSON line per record, the event's id and alert key on every line of
the task handling it, and redaction of phone numbers, secrets, tokens and signatures.

python-json-logger does the JSON, with orjson (a third of a line's cost with the stdlib encoder; a pool logs
several lines per event). Redaction is ours (no library knows our secrets): it runs on the
finished line, so a message, an extra field or a traceback cannot leak what a pattern or a configured
secret value matches.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import orjson
from pythonjsonlogger.json import JsonEncoder
from pythonjsonlogger.orjson import OrjsonFormatter

_context: ContextVar[dict[str, Any]] = ContextVar("switchboard_log_context", default={})  # noqa: B039 - never mutated

# Phone numbers in the shapes people and vendors write them; dates and ids do not fit these.
PHONE = re.compile(r"(?<![\w+])(\+\d{8,15}|\+\d{1,3}[ .-]\(?\d{1,4}\)?[ .-]\d{2,4}[ .-]\d{2,4}(?:[ .-]\d{2,4})?"
                   r"|\(?\b\d{3}\)?[ .-]\d{3}[ .-]\d{4}\b)")
PATTERNS = [
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{6,}"), r"\1 [redacted]"),
    (re.compile(r"whsec_[A-Za-z0-9+/=]+"), "whsec_[redacted]"),
    (re.compile(r"\bv1,[A-Za-z0-9+/]{20,}={0,2}"), "v1,[redacted]"),          # Standard Webhooks signature
    (re.compile(r"(?i)\b(sha256=)?[0-9a-f]{64}\b"), "[signature]"),           # hex HMAC-SHA256
    (re.compile(r"(?i)(\"?(?:access_token|client_secret|password|api[_-]?key|token|secret|authorization)\"?"
                r"\s*[:=]\s*\"?)[^\s\",}]+"), r"\1[redacted]"),
    (PHONE, "[phone]"),
]
SECRET_ENV = re.compile(r"^SWITCHBOARD_(SECRET_|PD_KEY_)|(_SECRET|_TOKEN|_API_KEY|_AUTH_TOKEN|_ACCESS_KEY_SECRET)$")


def secret_values(env: dict[str, str] | None = None) -> list[str]:
    """Configured secret values (each of a comma-separated rotation list), longest first."""
    env = dict(os.environ if env is None else env)
    values = {v.strip() for k, raw in env.items() if SECRET_ENV.search(k) for v in raw.split(",")}
    return sorted((v for v in values if len(v) >= 6), key=len, reverse=True)


def _any_word(*words: str) -> Callable[[str, str], bool]:
    def check(_text: str, lower: str) -> bool:
        for word in words:  # noqa: SIM110 - a generator costs a microsecond more on every line
            if word in lower:
                return True
        return False
    return check


# Shapes, not words: an ASCII line is translated (in C, ~1.5 µs) so that a plain substring test says whether
# the pattern could match; a line with other characters runs the pattern (\d and case folding reach beyond
# ASCII). The hex and phone scans were 27 of the 31 µs a usual line spent here, on every line of every process.
# Every ASCII character has an entry in the tables: a missing one is a failed lookup per character in
# str.translate (3x the cost of the whole translation).
_ASCII = [chr(code) for code in range(128)]
_HEX_SHAPE = str.maketrans({c: "x" if c in "0123456789abcdefABCDEF" else "." for c in _ASCII})
_PHONE_SHAPE = str.maketrans({c: "0" if c.isdigit() else " " if c in " .-" else c for c in _ASCII})
_HEX_RUN = "x" * 64


def _may_hold_hex_run(text: str, _lower: str) -> bool:
    """64 hex digits in a row: what the signature pattern needs."""
    return not text.isascii() or _HEX_RUN in text.translate(_HEX_SHAPE)


def _may_hold_phone(text: str, _lower: str) -> bool:
    """A "+" (the international shapes) or ddd[)] ddd dddd with [ .-] between (the North American one)."""
    if "+" in text or not text.isascii():
        return True
    shape = text.translate(_PHONE_SHAPE)
    return "000 000 0000" in shape or "000) 000 0000" in shape


# What a pattern needs before it can match (None: always run it). Checking first skips the costly scans on
# the usual line (the six patterns took ~60 µs a line, ~10% of a pool's CPU; bench/profile.py).
_NEEDS: list[Callable[[str, str], bool] | None] = [
    _any_word("bearer", "basic"), None, _any_word("v1,"), _may_hold_hex_run,
    _any_word("token", "secret", "password", "api", "authorization"), _may_hold_phone]


def redact(text: str, secrets: list[str] | None = None) -> str:
    for value in secrets if secrets is not None else secret_values():
        text = text.replace(value, "[secret]")
    lower = text.lower()
    for (pattern, replacement), may_match in zip(PATTERNS, _NEEDS, strict=True):
        if may_match is None or may_match(text, lower):
            text = pattern.sub(replacement, text)
    return text


@contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Put ``fields`` (event_id, alert_key, ...) on every record logged inside the block."""
    token = _context.set({**_context.get(), **{k: v for k, v in fields.items() if v is not None}})
    try:
        yield
    finally:
        _context.reset(token)


class ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in _context.get().items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


class RedactingJsonFormatter(OrjsonFormatter):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.secrets = secret_values()

    def jsonify_log_record(self, log_data: Any) -> str:
        try:
            return super().jsonify_log_record(log_data)
        except orjson.JSONEncodeError:
            # what orjson refuses (a lone surrogate from a malformed input, an int beyond 64 bits) is still
            # logged: the stdlib writes it escaped
            return json.dumps(log_data, cls=JsonEncoder)

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record), self.secrets)


class RedactingTextFormatter(logging.Formatter):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.secrets = secret_values()

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record), self.secrets)


def configure(level: int | str = logging.INFO, fmt: str | None = None) -> None:
    """Root handler on stderr: JSON (default) or text (``SWITCHBOARD_LOG_FORMAT=text``), always redacted."""
    fmt = fmt or os.environ.get("SWITCHBOARD_LOG_FORMAT", "json")
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "text":
        handler.setFormatter(RedactingTextFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    else:
        handler.setFormatter(RedactingJsonFormatter("%(asctime)s %(levelname)s %(name)s %(processName)s %(message)s",
                                                    rename_fields={"levelname": "level", "asctime": "time"}))
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
