"""The GCRA rate limits on a real Redis (its clock): spacing, burst, horizon, the critical lane, AIMD
back-off and recovery; the ingress check; the ingest-depth guard."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import redis

from switchboard.ingress_limit import DepthGuard, check_ingress
from switchboard.rate_limit import RateLimiter
from switchboard.waiting import wait_for

BASE = {"burst": 1.0, "per": "bucket", "critical_share": 0.0, "horizon_s": 30.0, "backoff_factor": 0.5,
        "min_factor": 0.1, "recovery_per_s": 0.0001}


@pytest.fixture
def limiter(state_redis: redis.Redis, run_id: str) -> Iterator[RateLimiter]:
    prefix = f"t{run_id}rl{uuid.uuid4().hex[:6]}:"
    yield RateLimiter(state_redis, prefix)
    for key in state_redis.scan_iter(f"{prefix}*"):
        state_redis.delete(key)


def test_slots_are_spaced_at_the_rate_with_the_burst_up_front(limiter: RateLimiter) -> None:
    cfg = {**BASE, "rate": 10.0, "burst": 3.0}
    waits = [limiter.acquire("b", "k", cfg).wait_s for _ in range(8)]
    assert waits[:3] == [0, 0, 0]  # the burst
    # then one slot every 100 ms (give or take the milliseconds between calls)
    for i, wait in enumerate(waits[3:], start=1):
        assert abs(wait - i * 0.1) < 0.02, (i, wait)


def test_beyond_the_horizon_nothing_is_reserved(limiter: RateLimiter) -> None:
    cfg = {**BASE, "rate": 1.0, "horizon_s": 2.0}
    slots = [limiter.acquire("b", "k", cfg) for _ in range(5)]
    assert [s.reserved for s in slots] == [True, True, True, False, False]
    assert 0.9 < slots[3].wait_s <= 1.01  # come back when the horizon has moved on
    # an unreserved answer took nothing: the next reservation is still the 4th slot
    assert not limiter.acquire("b", "k", cfg).reserved


def test_keys_have_their_own_schedules(limiter: RateLimiter) -> None:
    cfg = {**BASE, "rate": 1.0}
    assert limiter.acquire("b", "rk-a", cfg).wait_s == 0 and limiter.acquire("b", "rk-b", cfg).wait_s == 0
    assert limiter.acquire("b", "rk-a", cfg).wait_s > 0.9


def test_a_bulk_backlog_never_delays_critical(limiter: RateLimiter) -> None:
    cfg = {**BASE, "rate": 10.0, "critical_share": 0.1}
    bulk = [limiter.acquire("b", "k", cfg) for _ in range(50)]  # ~5.5 s of reserved bulk slots
    assert bulk[-1].wait_s > 5
    critical = [limiter.acquire("b", "k", cfg, critical=True) for _ in range(2)]
    assert critical[0].reserved and critical[0].wait_s == 0  # its own lane
    assert critical[1].reserved and 0.9 < critical[1].wait_s < 1.1  # the lane runs at 10% of 10/s


def test_a_429_halves_the_rate_and_it_recovers(limiter: RateLimiter) -> None:
    cfg = {**BASE, "rate": 10.0, "recovery_per_s": 0.0001}
    limiter.acquire("b", "k", cfg)
    assert limiter.penalize("b", "k", cfg) == pytest.approx(5.0, abs=0.01)
    assert limiter.penalize("b", "k", cfg) == pytest.approx(2.5, abs=0.01)
    first, second = limiter.acquire("b", "k", cfg), limiter.acquire("b", "k", cfg)
    assert second.wait_s - first.wait_s == pytest.approx(0.4, abs=0.02)  # spaced at 2.5/s now
    assert first.rate == pytest.approx(2.5, abs=0.01)
    fast = {**cfg, "recovery_per_s": 1000.0}  # recovers fully within a millisecond of Redis time
    wait_for(lambda: limiter.acquire("b", "k", fast).rate == pytest.approx(10.0, abs=0.01), 2, 0.002, "recovery")
    floor = {**cfg, "min_factor": 0.5}
    for _ in range(5):
        limiter.penalize("b", "k2", floor)
    assert limiter.acquire("b", "k2", floor).rate == pytest.approx(5.0, abs=0.01)


def test_ingress_check_answers_a_retry_after(limiter: RateLimiter) -> None:
    assert [check_ingress(limiter, "genesys", 3, 60) for _ in range(3)] == [0, 0, 0]
    assert 1 <= check_ingress(limiter, "genesys", 3, 60) <= 20
    assert check_ingress(limiter, "iot", 3, 60) == 0  # per source


def test_depth_guard_reads_the_depth_at_most_every_period() -> None:
    now, depth, reads = [0.0], [5], []

    def read() -> int:
        reads.append(now[0])
        return depth[0]

    guard = DepthGuard(read, max_depth=10, every_s=1.0, clock=lambda: now[0])
    assert not guard.over()
    depth[0] = 12
    assert not guard.over()  # cached for a second
    now[0] = 1.0
    assert guard.over() and len(reads) == 2
    assert not DepthGuard(read, max_depth=0, every_s=1.0).over()  # 0: no guard

    def broken() -> int:
        raise ConnectionError("broker down")

    assert not DepthGuard(broken, max_depth=1, every_s=1.0).over()  # the publish will say 503 itself


def test_a_critical_flood_drains_at_the_full_rate(limiter: RateLimiter) -> None:
    cfg = {**BASE, "rate": 10.0, "critical_share": 0.1}
    waits = sorted(limiter.acquire("b", "k", cfg, critical=True).wait_s for _ in range(40))
    # both schedules together: 40 slots over ~4 s at 10/s (the main lane alone would need 4.4 s)
    assert 3.7 < waits[-1] < 4.2, waits[-5:]
    per_second = [sum(1 for w in waits if s <= w < s + 1) for s in range(4)]
    assert all(count <= 12 for count in per_second), per_second  # the rate, plus one early slot per lane
