"""Sign and post a webhook the way each platform does (``switchboard send``, the demo, the tests)."""

from __future__ import annotations

import time
import uuid
from typing import Any

import requests

from switchboard.signatures import sign_hmac, sign_standard_webhooks


def signed_headers(source_cfg: dict[str, Any], body: bytes, secret: str, *, request_id: str | None = None,
                   msg_id: str | None = None, timestamp: int | None = None) -> dict[str, str]:
    sig = source_cfg["signature"]
    headers = {"Content-Type": "application/json"}
    if sig["scheme"] == "standard-webhooks":
        headers.update(sign_standard_webhooks(body, secret, msg_id or f"msg_{uuid.uuid4().hex}",
                                              int(time.time()) if timestamp is None else timestamp))
    else:
        headers[sig["header"]] = sign_hmac(body, secret, encoding=sig["encoding"], prefix=sig["prefix"])
        if request_id:
            headers[source_cfg["idempotency"].get("header") or "X-Request-Id"] = request_id
    return headers


def post_signed(base_url: str, source: str, source_cfg: dict[str, Any], body: bytes, secret: str,
                timeout: float = 10.0, **kwargs: Any) -> requests.Response:
    headers = signed_headers(source_cfg, body, secret, **kwargs)
    return requests.post(f"{base_url.rstrip('/')}/webhooks/{source}", data=body, headers=headers, timeout=timeout)
