"""Calls to an OAuth-protected vendor API: bearer token from the shared manager, one retry after a 401.

A 401 means the token was revoked or expired early: invalidate it, fetch another, try once more. A
second 401 with a brand-new token is not a token problem, so it is raised as permanent.
"""

from __future__ import annotations

from typing import Any

import requests

from clients.http import VendorError, call
from clients.oauth import TokenManager


def authed_call(tokens: TokenManager, method: str, url: str, *, timeout: tuple[float, float],
                **kwargs: Any) -> requests.Response:
    headers = dict(kwargs.pop("headers", None) or {})
    for attempt in (1, 2):
        token = tokens.token()
        headers["Authorization"] = f"Bearer {token}"
        try:
            return call(method, url, timeout=timeout, headers=headers, **kwargs)
        except VendorError as exc:
            if exc.status != 401:
                raise
            tokens.invalidate(token)
            if attempt == 2:
                raise VendorError(f"{tokens.name}: 401 even with a fresh token: {exc.message}", retryable=False,
                                  status=401, body=exc.body) from exc
    raise AssertionError("unreachable")
