"""Pure request checks of the receiver: body parsing, signature dispatch, idempotency keys.

Each failure raises ``Rejection`` carrying the exact status and JSON body the receiver answers.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from switchboard.generic_mapping import MISSING, lookup
from switchboard.idempotency import IdempotencyKey
from switchboard.signatures import SignatureError, verify_hmac_header, verify_standard_webhooks
from switchboard.store import Keys


@dataclass
class Rejection(Exception):
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e400 parses to inf: the NaN/Infinity JSON does not have, by another name
        raise ValueError(f"number {text[:20]} is out of range")
    return value


# No source nests deeper than a few levels. A payload nested hundreds deep in a field the schema tolerates
# would pass the receiver, then cost every later json.loads (Celery, the worker) a recursion near Python's limit.
MAX_DEPTH = 32


def _depth_over(value: Any, limit: int) -> bool:
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def parse_json(body: bytes) -> Any:
    """Strict JSON: UTF-8, no NaN/Infinity (nor numbers beyond a float's range), no duplicate keys (Python
    keeps the last while another parser may keep the first: the signature holds over the raw body, yet the
    event would mean different things to different readers), no lone surrogates (``"\\ud800"`` is
    not text; it would fail later, in Redis keys, logs or vendor calls)."""
    try:
        text = body.decode("utf-8")
        payload = json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float,
                             object_pairs_hook=_no_duplicate_keys)
        # A lone surrogate can only come from a \u escape (the strict UTF-8 decode above refuses encoded
        # ones): without a backslash-u in the body, the re-encoding that finds one (~a third of this check) is
        # skipped.
        if "\\u" in text:
            json.dumps(payload, ensure_ascii=False).encode("utf-8")  # raises on a lone surrogate anywhere
    except UnicodeEncodeError as exc:
        raise Rejection(400, {"error": "body is not valid JSON", "detail": "a \\u escape is a lone surrogate"}) from exc
    except UnicodeDecodeError as exc:
        raise Rejection(400, {"error": "body is not valid UTF-8"}) from exc
    except RecursionError as exc:
        raise Rejection(400, {"error": "body is nested too deeply"}) from exc
    except ValueError as exc:
        raise Rejection(400, {"error": "body is not valid JSON", "detail": str(exc)[:200]}) from exc
    if _depth_over(payload, MAX_DEPTH):
        raise Rejection(400, {"error": "body is nested too deeply", "detail": f"more than {MAX_DEPTH} levels"})
    return payload


def verify_signature(source_cfg: dict[str, Any], body: bytes, headers: Mapping[str, str], secrets: list[str],
                     now: float) -> str | None:
    """Verify per the source's scheme; return the Standard Webhooks message id when there is one. ``headers``
    answer lower-case names (a dict so keyed, or the request's case-insensitive headers)."""
    sig = source_cfg["signature"]
    try:
        if sig["scheme"] == "standard-webhooks":
            return verify_standard_webhooks(body, headers, secrets, now=now, tolerance_s=sig["tolerance_s"])
        verify_hmac_header(body, headers.get(sig["header"].lower()), secrets,
                           encoding=sig["encoding"], prefix=sig["prefix"])
        return None
    except SignatureError as exc:
        raise Rejection(401, {"error": "invalid signature", "detail": str(exc)}) from exc


def _bounded(value: str) -> str:
    """Key material as sent, unless it is long or odd: then its hash (keys stay short and printable)."""
    if len(value) <= 128 and value.isprintable():
        return value
    return "sha256:" + hashlib.sha256(value.encode()).hexdigest()


def idempotency_keys(source: str, source_cfg: dict[str, Any], keys: Keys, body: bytes, headers: Mapping[str, str],
                     payload: dict[str, Any], webhook_id: str | None) -> list[IdempotencyKey]:
    idem = source_cfg["idempotency"]
    window = idem["window_s"]
    out: list[IdempotencyKey] = []
    if webhook_id is not None:
        out.append(IdempotencyKey(keys.idem(source, "webhook-id", _bounded(webhook_id)), window))
    else:
        request_id = headers.get(idem["header"].lower()) if idem.get("header") else None
        if request_id:
            out.append(IdempotencyKey(keys.idem(source, "request-id", _bounded(request_id)), window))
        else:
            digest = hashlib.sha256(body).hexdigest()
            out.append(IdempotencyKey(keys.idem(source, "body", digest), window))
    for spec in idem["payload_keys"]:
        names = spec["fields_"]
        values = [lookup(payload, name) for name in names]  # a name may be a dotted path (alert.id)
        if any(v is None or v is MISSING for v in values):
            continue
        material = "|".join(str(v) for v in values)
        out.append(IdempotencyKey(keys.idem(source, "+".join(names), _bounded(material)), spec["window_s"]))
    return out
