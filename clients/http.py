"""The shared HTTP layer: one pooled ``requests.Session`` per process, timeouts, error classes.

Every vendor answer is classified once, here: 2xx ok; 408/425/429/5xx and network errors retryable
(with the vendor's ``Retry-After`` when given); redirects and other 4xx permanent. One quick in-process
retry (tenacity) only where resending cannot act twice: a connection that was never established, or an
idempotent method; durable retries with backoff belong to the Celery task.

A request goes straight to the session's transport adapter (requests' documented lower-level API) with the
session's default headers, not through ``Session.request``: that merged seven settings, cookies and hooks
per call (~40% of a vendor call's CPU in a dispatch worker, bench/profile.py) for features vendor calls do
not use. Cookies are neither kept nor sent (the vendors' APIs authenticate by header), and redirects are not
followed: requests would replay a POST redirected by 301/302 as a GET without its body, and the event would
look delivered; a redirect is a permanent error naming where it points. With a proxy variable set, the
session's full path runs instead (it resolves proxies and ``no_proxy`` per URL).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

import orjson
import requests
from requests.adapters import BaseAdapter, HTTPAdapter
from tenacity import RetryCallState, retry, stop_after_attempt, wait_random
from urllib3.exceptions import NewConnectionError

RETRYABLE_STATUS = {408, 425, 429, 500, 502, 503, 504}
# Proxy variables: requests resolves them per URL (no_proxy), so with any set it must read them per request.
PROXY_SETTINGS = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")

_sessions: dict[int, requests.Session] = {}


def session() -> requests.Session:
    """The process's pooled session (a new one after fork: sockets must not be shared by children)."""
    pid = os.getpid()
    s = _sessions.get(pid)
    if s is None:
        s = requests.Session()
        # Without proxy variables the environment is read once, here: per request, requests walked os.environ
        # for proxies (~5% of a dispatch worker's CPU, bench/profile.py). The CA bundle variables it would
        # read per request are read now (``_send`` does not pass through the per-request merge that read
        # them); vendor auth is always explicit, so ~/.netrc is never wanted.
        s.trust_env = uses_proxy_settings()
        s.verify = ca_bundle() or True
        adapter = HTTPAdapter(pool_connections=16, pool_maxsize=32)
        s.mount("http://", adapter)
        s.mount("https://", adapter)
        _sessions.clear()
        _sessions[pid] = s
    return s


def uses_proxy_settings(env: dict[str, str] | None = None) -> bool:
    """Whether a proxy variable is set, so requests must keep reading the environment per request."""
    names = {k.lower() for k, v in (os.environ if env is None else env).items() if v}
    return any(name in names for name in PROXY_SETTINGS)


def ca_bundle(env: dict[str, str] | None = None) -> str | None:
    """The CA bundle requests would take from the environment (its own order of precedence)."""
    env = os.environ if env is None else env
    return env.get("REQUESTS_CA_BUNDLE") or env.get("CURL_CA_BUNDLE") or None


@dataclass
class VendorError(Exception):
    """A vendor call that did not succeed; ``retryable`` says whether trying again can help."""

    message: str
    retryable: bool
    status: int | None = None
    retry_after_s: float | None = None
    body: str = ""

    def __str__(self) -> str:
        status = f"HTTP {self.status}" if self.status else "network"
        return f"{status}: {self.message}"


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date); None if absent/bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def classify(response: requests.Response) -> VendorError | None:
    if 200 <= response.status_code < 300:
        return None
    body = response.text[:2000]
    if 300 <= response.status_code < 400:
        location = response.headers.get("Location") or "nowhere"
        return VendorError(message=f"redirect to {location} not followed: configure the vendor's address "
                                   f"it points to", retryable=False, status=response.status_code, body=body)
    return VendorError(
        message=body or response.reason or "error",
        retryable=response.status_code in RETRYABLE_STATUS,
        status=response.status_code,
        retry_after_s=parse_retry_after(response.headers.get("Retry-After")),
        body=body,
    )


IDEMPOTENT_METHODS = {"GET", "HEAD", "OPTIONS", "PUT", "DELETE"}


def _never_sent(exc: BaseException) -> bool:
    """True if the request cannot have reached the server (the connection was never established)."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, NewConnectionError)


def _safe_to_resend(state: RetryCallState) -> bool:
    exc = state.outcome.exception() if state.outcome else None
    if not isinstance(exc, requests.ConnectionError):
        return False
    # A POST whose connection dropped after it was sent may have acted: resending it here could act
    # twice. It goes back to the dispatch as "uncertain" instead, which verifies or refuses to guess.
    return state.args[0].upper() in IDEMPOTENT_METHODS or _never_sent(exc)


def prepare(s: requests.Session, method: str, url: str, *, headers: dict[str, str] | None = None,
            json: Any = None, **kwargs: Any) -> requests.PreparedRequest:
    """The request as the session would prepare it, without its cookies, hooks and settings merge: the
    session's default headers under the caller's (a caller's header wins whatever its case), a JSON body
    encoded by orjson (compact, UTF-8; NaN goes as null where requests refused it)."""
    merged = {**s.headers, **headers} if headers else dict(s.headers)
    if json is not None:
        merged["Content-Type"] = "application/json"
        kwargs["data"] = orjson.dumps(json)
    prepared = requests.PreparedRequest()
    prepared.prepare(method=method.upper(), url=url, headers=merged, **kwargs)
    return prepared


@retry(retry=_safe_to_resend, stop=stop_after_attempt(2), wait=wait_random(0.05, 0.2), reraise=True)
def _send(method: str, url: str, timeout: tuple[float, float], **kwargs: Any) -> requests.Response:
    s = session()
    prepared = prepare(s, method, url, **kwargs)
    if s.trust_env:
        return s.send(prepared, timeout=timeout, allow_redirects=False)
    adapter: BaseAdapter = s.get_adapter(prepared.url or url)
    response = adapter.send(prepared, stream=False, timeout=timeout, verify=s.verify, cert=s.cert, proxies={})
    response.content  # noqa: B018 - read the body now: only then does the connection go back to the pool
    return response


def call(method: str, url: str, *, timeout: tuple[float, float], **kwargs: Any) -> requests.Response:
    """Send one request; return the 2xx response or raise a classified ``VendorError``."""
    try:
        response = _send(method, url, timeout, **kwargs)
    except requests.Timeout as exc:
        raise VendorError(f"timeout: {type(exc).__name__}", retryable=True) from exc
    except requests.RequestException as exc:
        raise VendorError(f"network error: {type(exc).__name__}", retryable=True) from exc
    error = classify(response)
    if error is not None:
        raise error
    return response
