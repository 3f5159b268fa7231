"""Helpers and fixtures shared by the client tests (``tests/test_client*.py``, ``tests/test_http_layer.py``).

Module level on purpose: the token tests spawn OS processes that import these helpers by name.
"""

from __future__ import annotations

import multiprocessing
import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis

from clients.cxone import fetch_cxone_token
from clients.genesys import GenesysClient, fetch_genesys_token
from clients.http import VendorError
from clients.oauth import TokenManager
from tests.posting import Sandbox
from vendor_sandbox import credentials as creds

TOKEN_TIMEOUT = (3.05, 5.0)
WORKITEMS = "/api/v2/taskmanagement/workitems"
CXONE_DIAL = "/incontactapi/services/v33.0/queuecallback"
RESOLUTIONS = "/api/v1/events/resolutions"
TWILIO_MESSAGES = f"/2010-04-01/Accounts/{creds.TWILIO_ACCOUNT_SID}/Messages.json"
SAMPLES = Path(__file__).resolve().parent.parent / "samples"


# --- helpers (module level: the spawned worker processes import this module) -----------------------------


def genesys_tokens(client: redis.Redis, prefix: str, url: str, *,
                   secret: str = creds.GENESYS_CLIENT_SECRET, **options: Any) -> TokenManager:
    def fetch() -> Any:
        return fetch_genesys_token(url, creds.GENESYS_CLIENT_ID, secret, TOKEN_TIMEOUT)

    return TokenManager(client, prefix, "genesys", fetch, **options)


def cxone_tokens(client: redis.Redis, prefix: str, url: str, **options: Any) -> TokenManager:
    def fetch() -> Any:
        return fetch_cxone_token(url, creds.CXONE_CLIENT_ID, creds.CXONE_CLIENT_SECRET, creds.CXONE_ACCESS_KEY_ID,
                                 creds.CXONE_ACCESS_KEY_SECRET, TOKEN_TIMEOUT)

    return TokenManager(client, prefix, "cxone", fetch, **options)


def workitem(**changes: Any) -> dict[str, Any]:
    return {"name": "ZTP validation failed", "typeId": "type-ztp-alert", **changes}


def _share_worker(redis_url: str, prefix: str, sandbox_url: str, calls: int, run_for_s: float,
                  ready: Any, go: Any, results: Any) -> None:
    """One OS process: its own Redis client, TokenManager and GenesysClient; waits for ``go``, then creates
    work items until it made ``calls`` and ``run_for_s`` has passed. Errors come back as strings."""
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    client = GenesysClient(sandbox_url, genesys_tokens(r, prefix, sandbox_url))
    ready.put(os.getpid())
    go.wait(60)
    made, errors = 0, []
    start = time.monotonic()
    while made < calls or time.monotonic() - start < run_for_s:
        try:
            client.create_workitem(workitem(name=f"process {os.getpid()} call {made}"))
        except VendorError as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
        made += 1
    results.put({"pid": os.getpid(), "calls": made, "errors": errors})


def run_processes(count: int, redis_url: str, prefix: str, sandbox_url: str, *, calls: int = 0,
                  run_for_s: float = 0.0) -> tuple[list[dict[str, Any]], float]:
    """Start ``count`` spawned processes, release them together; their results and the seconds from the
    release to the last result."""
    ctx = multiprocessing.get_context("spawn")
    ready, results, go = ctx.Queue(), ctx.Queue(), ctx.Event()
    procs = [ctx.Process(target=_share_worker, daemon=True,
                         args=(redis_url, prefix, sandbox_url, calls, run_for_s, ready, go, results))
             for _ in range(count)]
    for proc in procs:
        proc.start()
    try:
        pids = {ready.get(timeout=60) for _ in procs}
        released = time.monotonic()
        go.set()
        out = [results.get(timeout=60 + run_for_s) for _ in procs]
        elapsed = time.monotonic() - released
        for proc in procs:
            proc.join(timeout=30)
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.kill()
                proc.join(timeout=10)
    assert [proc.exitcode for proc in procs] == [0] * count
    assert len(pids) == count and os.getpid() not in pids
    assert {o["pid"] for o in out} == pids
    return out, elapsed


def bearer_of(entry: dict[str, Any]) -> str:
    scheme, _, token = entry["headers"]["authorization"].partition(" ")
    assert scheme == "Bearer"
    return token


def statuses(sb: Sandbox, path: str) -> list[int]:
    return [e["status"] for e in sb.requests(path, rejected=True)]


def raises_vendor_error(action: Callable[[], Any]) -> VendorError:
    with pytest.raises(VendorError) as info:
        action()
    return info.value


def resolution(**changes: Any) -> dict[str, Any]:
    return {"ztp_event_id": f"evt_{uuid.uuid4().hex[:20]}", "resolution_status": "resolved",
            "resolution_code": "FIRMWARE_ROLLBACK", "agent_id": "agent-1742", "resolved_at": "2024-05-01T12:00:00Z",
            "device_mac": "AA:BB:CC:DD:EE:01", "orchestrator_action": "retry_provisioning", **changes}
