"""Context size limits: vendor attributes are never truncated silently.

When any attribute value is over the vendor's limit (Genesys custom attributes: 255 characters), only
the summary fields travel, plus ``payload_ref``; the caller stores the full payload under that reference
(``GET /payloads/<ref>`` on the receiver returns it).
"""

from __future__ import annotations

import json
from typing import Any


def as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, sort_keys=True, default=str)


def fit_attributes(full: dict[str, Any], summary_keys: tuple[str, ...], limit: int,
                   payload_ref: str) -> tuple[dict[str, str], bool]:
    """``(attributes, overflowed)``: all of ``full`` as text if every value fits, else summary + ref."""
    text = {k: as_text(v) for k, v in full.items()}
    if all(len(v) <= limit for v in text.values()):
        return text, False
    fitted = {k: text[k] for k in summary_keys if k in text and len(text[k]) <= limit}
    fitted["payload_ref"] = payload_ref
    fitted["truncated"] = "see payload_ref"
    return fitted, True
