"""The OAuth token manager against the sandbox's token endpoints, with the cache in the real Redis: one token
shared by spawned OS processes, refreshed before expiry without 401s, one re-fetch after a 401,
compare-and-delete invalidation, credential failures raised once, a still-valid token kept while the token
endpoint fails."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
import redis

from clients.cxone import CXoneClient
from clients.genesys import GenesysClient
from clients.http import VendorError
from clients.oauth import CredentialError
from tests.client_support import (
    CXONE_DIAL,
    WORKITEMS,
    bearer_of,
    cxone_tokens,
    genesys_tokens,
    raises_vendor_error,
    run_processes,
    statuses,
    workitem,
)
from tests.posting import Sandbox

# --- the token shared by processes -------------------------------------------------------------------------


def test_processes_share_one_token(sb: Sandbox, redis_url: str, prefix: str) -> None:
    out, _ = run_processes(3, redis_url, prefix, sb.url, calls=5)
    assert [o["errors"] for o in out] == [[], [], []]
    oauth = sb.oauth("genesys")
    assert oauth["token_requests"] == 1 and oauth["tokens_issued"] == 1
    entries = sb.requests(WORKITEMS, rejected=True)
    assert len(entries) == 15 and {e["status"] for e in entries} == {200}
    assert len({bearer_of(e) for e in entries}) == 1


def test_processes_refresh_a_short_lived_token_before_it_expires(sb: Sandbox, redis_url: str, prefix: str) -> None:
    sb.send("PUT", "/_sandbox/oauth/genesys", {"expires_in": 2})
    sb.send("POST", "/_sandbox/ratelimit/genesys", {"limit": 1_000_000, "window_s": 60})
    out, elapsed = run_processes(2, redis_url, prefix, sb.url, run_for_s=5.0)
    assert [o["errors"] for o in out] == [[], []]
    entries = sb.requests(WORKITEMS, rejected=True)
    assert len(entries) == sum(o["calls"] for o in out)
    assert [e for e in entries if e["status"] != 200] == []  # not one 401: refreshed ahead of expiry
    oauth = sb.oauth("genesys")
    # 5 s of calls with 2 s tokens and no 401 needs at least 3 tokens; refreshing at ~80% of the lifetime
    # (and by one process at a time) needs no more than one per 1.5 s, plus the first and some slack: 4 on an
    # idle machine, 4-5 with the cores saturated, 6 once in a CI run (2026-12-07): a process that found the
    # token due could take the lock just after another had refreshed and let go of it, and refresh again
    # (fixed since; test_a_refresh_finished_while_deciding_is_not_repeated). Each process refreshing on its
    # own would need ~8, above the bound.
    assert 3 <= oauth["token_requests"] <= elapsed / (2 * 0.75) + 3, (oauth, elapsed)
    assert oauth["failed_requests"] == 0
    assert len({bearer_of(e) for e in entries}) == oauth["tokens_issued"]


class _PausingRedis(redis.Redis):
    """A real Redis client that runs ``pause`` once, before its first EXISTS: in ``TokenManager.token`` that is
    after it read a token due for refresh and before it takes the refresh lock."""

    pause: Callable[[], None] | None = None

    def exists(self, *names: Any) -> Any:
        pause, self.pause = self.pause, None
        if pause is not None:
            pause()
        return super().exists(*names)


def test_a_refresh_finished_while_deciding_is_not_repeated(sb: Sandbox, redis_url: str, prefix: str) -> None:
    """Worker A finds the token due for refresh; before A takes the lock, worker B refreshes it and lets go.
    A must use B's token, not fetch another: each worker refreshing in turn is what the lock is there to stop."""
    now = [time.time()]
    paused = _PausingRedis.from_url(redis_url)
    other = redis.Redis.from_url(redis_url)
    try:
        worker_a = genesys_tokens(paused, prefix, sb.url, clock=lambda: now[0])
        worker_b = genesys_tokens(other, prefix, sb.url, clock=lambda: now[0])
        first = worker_a.token()
        now[0] = json.loads(other.get(worker_a.key))["refresh_at"] + 1  # due for refresh, still valid
        refreshed_by_b: list[str] = []
        paused.pause = lambda: refreshed_by_b.append(worker_b.token())

        token = worker_a.token()

        assert refreshed_by_b and refreshed_by_b[0] != first  # B did refresh in between
        assert token == refreshed_by_b[0]
        oauth = sb.oauth("genesys")
        assert (oauth["token_requests"], oauth["tokens_issued"]) == (2, 2)  # the first token and B's, no third
        assert other.get(worker_a.key + ":lock") is None  # A let go of the lock it took
    finally:
        paused.close()
        other.close()


# --- 401 and invalidation ----------------------------------------------------------------------------------


def test_revoked_token_costs_one_401_and_one_token_request(sb: Sandbox, genesys: tuple) -> None:
    client, tokens = genesys
    client.create_workitem(workitem())
    first = tokens.token()
    assert sb.send("POST", "/_sandbox/oauth/genesys/revoke")["revoked"] == 1

    assert client.create_workitem(workitem(name="after revocation"))["id"]
    oauth = sb.oauth("genesys")
    assert oauth["token_requests"] == 2 and oauth["tokens_issued"] == 2
    entries = sb.requests(WORKITEMS, rejected=True)
    assert [e["status"] for e in entries] == [200, 401, 200]
    assert bearer_of(entries[0]) == bearer_of(entries[1]) == first
    assert bearer_of(entries[2]) != first
    assert tokens.token() == bearer_of(entries[2])  # the new token is the cached one

    client.create_workitem(workitem(name="next one"))
    assert sb.oauth("genesys")["token_requests"] == 2


def test_401_with_a_fresh_token_is_permanent(sb: Sandbox, genesys: tuple) -> None:
    client, _ = genesys
    sb.faults("genesys", script=[{"status": 401, "count": 2}])
    exc = raises_vendor_error(lambda: client.create_workitem(workitem()))
    assert exc.status == 401 and exc.retryable is False and not isinstance(exc, CredentialError)
    assert "fresh token" in exc.message and json.loads(exc.body)["status"] == 401
    assert sb.oauth("genesys")["token_requests"] == 2  # one re-fetch, no loop
    assert statuses(sb, WORKITEMS) == [401, 401]


def test_invalidate_deletes_only_the_token_that_failed(sb: Sandbox, state_redis: redis.Redis, prefix: str) -> None:
    worker_1 = genesys_tokens(state_redis, prefix, sb.url)
    worker_2 = genesys_tokens(state_redis, prefix, sb.url)
    token_a = worker_1.token()
    assert worker_2.token() == token_a

    assert worker_1.invalidate(f"not-{token_a}") is False
    assert worker_2.token() == token_a and sb.oauth("genesys")["token_requests"] == 1

    assert worker_1.invalidate(token_a) is True
    assert state_redis.get(worker_1.key) is None
    token_b = worker_2.token()
    assert token_b != token_a and sb.oauth("genesys")["token_requests"] == 2

    # worker 1 reports its stale 401 late: worker 2's fresh token survives.
    assert worker_1.invalidate(token_a) is False
    assert worker_1.token() == token_b and sb.oauth("genesys")["token_requests"] == 2


# --- credential failures -----------------------------------------------------------------------------------


def test_genesys_credential_failure_raised_once(sb: Sandbox, state_redis: redis.Redis, genesys: tuple) -> None:
    client, tokens = genesys
    sb.send("PUT", "/_sandbox/oauth/genesys", {"fail": 1})
    with pytest.raises(CredentialError) as info:
        client.create_workitem(workitem())
    exc = info.value
    assert isinstance(exc, VendorError) and exc.retryable is False and exc.status == 401
    assert "invalid_client" in exc.body
    oauth = sb.oauth("genesys")
    assert (oauth["token_requests"], oauth["failed_requests"], oauth["tokens_issued"]) == (1, 1, 0)
    assert statuses(sb, WORKITEMS) == [] and state_redis.get(tokens.key) is None

    # Once the login service accepts us again, the next call works with one more token request.
    assert client.create_workitem(workitem())["id"]
    assert sb.oauth("genesys")["token_requests"] == 2


def test_genesys_wrong_secret_one_token_request_per_call(sb: Sandbox, state_redis: redis.Redis, prefix: str) -> None:
    client = GenesysClient(sb.url, genesys_tokens(state_redis, prefix, sb.url, secret="not-the-secret"))
    for expected in (1, 2, 3):
        with pytest.raises(CredentialError):
            client.create_workitem(workitem())
        assert sb.oauth("genesys")["failed_requests"] == expected
    assert sb.oauth("genesys")["token_requests"] == 3 and statuses(sb, WORKITEMS) == []


def test_cxone_wrong_access_key_secret_is_a_credential_error(sb: Sandbox, state_redis: redis.Redis,
                                                             prefix: str) -> None:
    sb.send("PUT", "/_sandbox/oauth/cxone", {"access_key_secret": "other"})
    client = CXoneClient(sb.url, cxone_tokens(state_redis, prefix, sb.url))
    with pytest.raises(CredentialError) as info:
        client.dial({"skill": 4711, "phoneNumber": "+15551234567"})
    exc = info.value
    assert isinstance(exc, VendorError) and exc.retryable is False and exc.status == 400
    assert "invalid_grant" in exc.body
    oauth = sb.oauth("cxone")
    assert (oauth["token_requests"], oauth["failed_requests"], oauth["tokens_issued"]) == (1, 1, 0)
    assert statuses(sb, CXONE_DIAL) == []


# --- token endpoint outage ---------------------------------------------------------------------------------


def test_credentials_rejected_at_refresh_alert_at_once_but_the_valid_token_keeps_working(
        sb: Sandbox, state_redis: redis.Redis, prefix: str) -> None:
    now = [time.time()]
    alerts: list[CredentialError] = []
    tokens = genesys_tokens(state_redis, prefix, sb.url, clock=lambda: now[0], on_credential_failure=alerts.append)
    client = GenesysClient(sb.url, tokens)
    client.create_workitem(workitem())
    original = tokens.token()
    now[0] = json.loads(state_redis.get(tokens.key))["refresh_at"] + 1  # due for refresh, still valid
    sb.send("PUT", "/_sandbox/oauth/genesys", {"fail": 1})  # e.g. the client secret was rotated away
    for i in range(2):
        assert client.create_workitem(workitem(name=f"still working {i}"))["id"]
    assert len(alerts) == 1 and isinstance(alerts[0], CredentialError) and alerts[0].status == 401
    assert {bearer_of(e) for e in sb.requests(WORKITEMS)} == {original}
    assert sb.oauth("genesys")["failed_requests"] == 1  # one refresh attempt, then the backoff


def test_token_endpoint_5xx_keeps_the_valid_token(sb: Sandbox, state_redis: redis.Redis, prefix: str) -> None:
    now = [time.time()]
    tokens = genesys_tokens(state_redis, prefix, sb.url, clock=lambda: now[0])
    client = GenesysClient(sb.url, tokens)
    client.create_workitem(workitem())
    original = tokens.token()
    record = json.loads(state_redis.get(tokens.key))
    now[0] = record["refresh_at"] + 1  # due for refresh, still valid for hours
    assert now[0] < record["expires_at"]

    sb.faults("genesys.token", script=[{"status": 503, "count": 1}])
    for i in range(3):
        assert client.create_workitem(workitem(name=f"during the outage {i}"))["id"]
    oauth = sb.oauth("genesys")
    # One failed refresh, then a backoff: the other calls do not hammer the token endpoint.
    assert (oauth["token_requests"], oauth["failed_requests"], oauth["tokens_issued"]) == (2, 1, 1)
    entries = sb.requests(WORKITEMS, rejected=True)
    assert [e["status"] for e in entries] == [200] * 4 and {bearer_of(e) for e in entries} == {original}
    assert state_redis.pttl(tokens.key + ":refresh-failed") > 0

    # The backoff ends and the token endpoint is back: the next call refreshes and uses the new token.
    state_redis.delete(tokens.key + ":refresh-failed")
    client.create_workitem(workitem(name="after the outage"))
    oauth = sb.oauth("genesys")
    assert (oauth["token_requests"], oauth["tokens_issued"]) == (3, 2)
    renewed = bearer_of(sb.requests(WORKITEMS)[-1])
    assert renewed != original and tokens.token() == renewed


def test_token_endpoint_malformed_2xx_keeps_the_valid_token(sb: Sandbox, state_redis: redis.Redis,
                                                            prefix: str) -> None:
    now = [time.time()]
    tokens = genesys_tokens(state_redis, prefix, sb.url, clock=lambda: now[0])
    client = GenesysClient(sb.url, tokens)
    client.create_workitem(workitem())
    now[0] = json.loads(state_redis.get(tokens.key))["refresh_at"] + 1
    sb.faults("genesys.token", script=[{"status": 200, "body": {"message": "down for maintenance"}}])
    assert client.create_workitem(workitem(name="during maintenance"))["id"]
    assert statuses(sb, WORKITEMS) == [200, 200]


def test_token_endpoint_5xx_without_a_valid_token_is_retryable(sb: Sandbox, state_redis: redis.Redis,
                                                               prefix: str) -> None:
    now = [time.time()]
    tokens = genesys_tokens(state_redis, prefix, sb.url, clock=lambda: now[0])
    client = GenesysClient(sb.url, tokens)
    client.create_workitem(workitem())
    now[0] = json.loads(state_redis.get(tokens.key))["expires_at"] + 1
    sb.faults("genesys.token", script=[{"status": 503, "retry_after": 3}])
    exc = raises_vendor_error(lambda: client.create_workitem(workitem()))
    assert not isinstance(exc, CredentialError)
    assert exc.status == 503 and exc.retryable is True and exc.retry_after_s == 3
    assert statuses(sb, WORKITEMS) == [200]
