"""OAuth token manager: one access token per vendor, cached in Redis and shared by every worker process.

Why hand-written: requests-oauthlib and authlib cache tokens per process; we need one token shared by
many workers on many machines, refreshed by exactly one of them (a Redis lock) at ~80% of its lifetime
with jitter, invalidated on a 401 only if it is still the token that failed (compare-and-delete), and a
credential failure raised as its own error instead of being retried forever.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis
import requests

from clients.http import VendorError, call
from switchboard.metrics import OAUTH_REFRESH_FAILURES

log = logging.getLogger("switchboard.oauth")

# Delete the cached token only if it is the one that was rejected: another worker may already have
# stored a fresh one, which must survive.
_INVALIDATE = """
local raw = redis.call('GET', KEYS[1])
if raw and cjson.decode(raw)['access_token'] == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class CredentialError(VendorError):
    """The token endpoint rejected our credentials: retrying cannot help until an operator fixes them."""


@dataclass(frozen=True)
class Token:
    access_token: str
    expires_in: float


def request_token(vendor: str, url: str, *, auth: tuple[str, str], form: dict[str, str],
                  timeout: tuple[float, float], default_expires_in: float) -> Token:
    """POST a token request; CredentialError if the vendor refuses our credentials (400/401/403)."""
    try:
        response = call("POST", url, timeout=timeout, auth=auth, data=form)
    except VendorError as exc:
        if exc.status in (400, 401, 403):
            raise CredentialError(f"{vendor} token request rejected: {exc.message}", retryable=False,
                                  status=exc.status, body=exc.body) from exc
        raise
    return parse_token(response, vendor, default_expires_in=default_expires_in)


def parse_token(response: requests.Response, vendor: str, *, default_expires_in: float) -> Token:
    """The token in a 2xx answer; a 2xx without one is a (retryable) vendor fault, not a crash."""
    try:
        data = response.json()
        return Token(access_token=str(data["access_token"]),
                     expires_in=float(data.get("expires_in") or default_expires_in))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise VendorError(f"{vendor} token endpoint answered {response.status_code} without a usable "
                          f"access_token", retryable=True, status=response.status_code,
                          body=response.text[:500]) from exc


class TokenManager:
    """``token()`` returns a valid access token for ``name``, fetching one through ``fetch`` when needed."""

    def __init__(self, client: redis.Redis, key_prefix: str, name: str, fetch: Callable[[], Token], *,
                 refresh_fraction: float = 0.8, jitter_fraction: float = 0.05, lock_timeout_s: float = 15.0,
                 refresh_backoff_s: float = 10.0, clock: Callable[[], float] = time.time,
                 on_credential_failure: Callable[[CredentialError], None] | None = None) -> None:
        self.r = client
        self.name = name
        self.key = f"{key_prefix}oauth:{name}"
        self.fetch = fetch
        self.refresh_fraction = refresh_fraction
        self.jitter_fraction = jitter_fraction
        self.lock_timeout_s = lock_timeout_s
        self.clock = clock
        self.refresh_backoff_s = refresh_backoff_s
        self.on_credential_failure = on_credential_failure
        self._invalidate = client.register_script(_INVALIDATE)

    def _cached(self) -> dict | None:
        raw = self.r.get(self.key)
        return json.loads(raw) if raw else None

    def _fresh(self) -> str | None:
        """The cached token if it is not yet due for refresh (read again: another worker may have refreshed)."""
        cached = self._cached()
        return cached["access_token"] if cached and self.clock() < cached["refresh_at"] else None

    def token(self) -> str:
        now = self.clock()
        cached = self._cached()
        if cached and now < cached["refresh_at"]:
            return cached["access_token"]
        if cached and now < cached["expires_at"]:
            # Due for refresh but still valid: one worker refreshes, the others keep using this one; after
            # a failed refresh nobody tries again for refresh_backoff_s (the token endpoint has its own limit).
            backoff_key = f"{self.key}:refresh-failed"
            if self.r.exists(backoff_key):
                return cached["access_token"]
            lock = self.r.lock(f"{self.key}:lock", timeout=self.lock_timeout_s, blocking=False)
            if not lock.acquire():
                return cached["access_token"]
            try:
                # Read again under the lock: another worker may have refreshed and let go of the lock since our
                # read, and refreshing again would spend one more of the token endpoint's requests (the likely
                # cause of 6 token requests instead of 4-5 in tests/test_client_tokens.py on a busy CI machine).
                fresh = self._fresh()
                if fresh is not None:
                    return fresh
                try:
                    return self._refresh()
                except VendorError as exc:
                    self.r.set(backoff_key, "1", px=int(self.refresh_backoff_s * 1000))
                    if isinstance(exc, CredentialError):
                        # Say so now, loudly, but keep working on the still-valid token until it expires.
                        if self.on_credential_failure is None:
                            raise
                        self.on_credential_failure(exc)
                    log.warning("token refresh for %s failed (%s); the current token is still valid", self.name,
                                exc)
                    return cached["access_token"]
            finally:
                _release(lock)
        # No usable token: wait for whoever is fetching, or fetch ourselves.
        lock = self.r.lock(f"{self.key}:lock", timeout=self.lock_timeout_s, blocking_timeout=self.lock_timeout_s)
        if not lock.acquire():
            raise VendorError(f"{self.name} token: another worker holds the refresh lock too long", retryable=True)
        try:
            fresh = self._fresh()  # whoever held the lock may have fetched one
            return fresh if fresh is not None else self._refresh()
        finally:
            _release(lock)

    def _refresh(self) -> str:
        fetched_at = self.clock()
        try:
            token = self.fetch()
        except VendorError as exc:
            OAUTH_REFRESH_FAILURES.labels(self.name, "credential" if isinstance(exc, CredentialError)
                                          else "unavailable").inc()
            raise
        lifetime = max(1.0, float(token.expires_in))
        fraction = self.refresh_fraction * (1 - random.uniform(0, self.jitter_fraction))
        record = {"access_token": token.access_token, "fetched_at": fetched_at,
                  "refresh_at": fetched_at + lifetime * fraction, "expires_at": fetched_at + lifetime}
        self.r.set(self.key, json.dumps(record), px=int(lifetime * 1000))
        log.info("fetched a new %s access token (expires in %ss)", self.name, int(lifetime))
        return token.access_token

    def invalidate(self, access_token: str) -> bool:
        """Forget ``access_token`` after the API answered 401 to it (no-op if already replaced)."""
        return bool(self._invalidate(keys=[self.key], args=[access_token]))


def _release(lock: redis.lock.Lock) -> None:
    try:
        lock.release()
    except redis.exceptions.LockError:
        pass  # it expired while we fetched; the token was still stored
