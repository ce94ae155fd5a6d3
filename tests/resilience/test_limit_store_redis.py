"""The Redis limiter store against a real Redis: same answers as memory, never raises."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import redis

from sloguard.resilience._clock import ManualClock
from sloguard.resilience._limit_store import MemoryLimiterStore, RedisLimiterStore
from sloguard.resilience._limit_store_redis import _safe_url
from sloguard.resilience._ratelimit import Algorithm, LimitDecision, RateLimit
from tests.harness.processes import free_port
from tests.harness.servers import RedisServer

ALGORITHMS = [
    pytest.param(Algorithm.GCRA, id="gcra"),
    pytest.param(Algorithm.SLIDING_WINDOW, id="sliding"),
]


def fast_recovery(url: str, **kwargs: object) -> RedisLimiterStore:
    return RedisLimiterStore(url, backoff_s=0.01, max_backoff_s=0.05, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_ten_seconds_at_three_times_100_per_second_admits_1000_within_one_percent(
    redis_server: RedisServer, algorithm: Algorithm
) -> None:
    clock = ManualClock()
    store = RedisLimiterStore(redis_server.url, timeout_s=2.0, clock=clock)
    limit = RateLimit("api", 100, 1.0, burst=1, algorithm=algorithm)
    admitted = 0
    for _ in range(3000):
        admitted += store.decide_sync(limit, "client").allowed
        clock.advance(1 / 300)
    assert abs(admitted - 1000) <= 10


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_redis_and_memory_give_the_same_answers(
    redis_server: RedisServer, algorithm: Algorithm
) -> None:
    # both stores see the same instants (memory reads monotonic, Redis wall time)
    redis_clock = ManualClock(start=1_700_000_000.0, wall_start=1_700_000_000.0)
    memory_clock = ManualClock(start=1_700_000_000.0, wall_start=1_700_000_000.0)
    shared = RedisLimiterStore(redis_server.url, timeout_s=2.0, clock=redis_clock)
    local = MemoryLimiterStore(clock=memory_clock)
    limit = RateLimit("same", 5, 2.0, burst=3, algorithm=algorithm)
    for step in range(40):
        cost = 1 + step % 3
        a, b = shared.decide_sync(limit, "k", cost), local.decide_sync(limit, "k", cost)
        assert (a.allowed, a.remaining) == (b.allowed, b.remaining)
        assert a.retry_after_s == pytest.approx(b.retry_after_s, abs=2e-6)
        redis_clock.advance(0.13)
        memory_clock.advance(0.13)


def test_redis_time_is_the_default_clock(redis_server: RedisServer) -> None:
    store = RedisLimiterStore(redis_server.url, timeout_s=2.0)
    limit = RateLimit("login", 2, 60.0)
    answers = [store.decide_sync(limit, "10.0.0.1") for _ in range(3)]
    assert [d.allowed for d in answers] == [True, True, False]
    assert 29.0 < answers[2].retry_after_s <= 30.0
    assert 0 < redis.Redis.from_url(redis_server.url).pttl("sloguard:rl:login:10.0.0.1") <= 60_001


def test_a_refusal_by_one_limit_charges_none_in_redis(redis_server: RedisServer) -> None:
    store = RedisLimiterStore(redis_server.url, timeout_s=2.0, clock=ManualClock())
    wide, narrow = RateLimit("wide", 10, 60.0), RateLimit("narrow", 1, 60.0)
    store.decide_all_sync([(wide, "k", 1), (narrow, "k", 1)])
    refused = store.decide_all_sync([(wide, "k", 1), (narrow, "k", 1)])
    assert [(d.allowed, d.remaining) for d in refused] == [(True, 9), (False, 0)]
    assert store.decide_sync(wide, "k").remaining == 8


def test_a_flushed_script_cache_is_reloaded(redis_server: RedisServer) -> None:
    store = RedisLimiterStore(redis_server.url, timeout_s=2.0)
    limit = RateLimit("s", 10, 60.0)
    store.decide_sync(limit, "k")
    assert redis_server.command("SCRIPT", "FLUSH") == "+OK"
    assert store.decide_sync(limit, "k").remaining == 8

    async def again() -> LimitDecision:
        redis_server.command("SCRIPT", "FLUSH")
        try:
            return await store.decide(limit, "k")
        finally:
            await store.aclose()

    assert asyncio.run(again()).remaining == 7


def test_concurrent_async_decisions_share_script_calls_and_count_exactly(
    redis_server: RedisServer,
) -> None:
    store = RedisLimiterStore(redis_server.url, timeout_s=2.0)
    limit = RateLimit("hot", 100, 3600.0)

    async def crowd() -> list[LimitDecision]:
        try:
            return await asyncio.gather(*(store.decide(limit, "k") for _ in range(300)))
        finally:
            await store.aclose()

    decisions = asyncio.run(crowd())
    assert sum(d.allowed for d in decisions) == 100
    assert store.calls < 30


def test_a_single_async_caller_makes_one_inline_script_call_per_decision(
    redis_server: RedisServer,
) -> None:
    store = RedisLimiterStore(redis_server.url, timeout_s=2.0)
    limit = RateLimit("solo", 100, 3600.0)
    flushes: list[str] = []

    def factory(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
        if "RedisLimiterStore" in coro.__qualname__:
            flushes.append(coro.__qualname__)
        return asyncio.Task(coro, loop=loop, **kwargs)

    async def one_by_one() -> list[LimitDecision]:
        asyncio.get_running_loop().set_task_factory(factory)
        try:
            return [await store.decide(limit, "k") for _ in range(20)]
        finally:
            await store.aclose()

    decisions = asyncio.run(one_by_one())
    assert [d.remaining for d in decisions] == list(range(99, 79, -1))
    assert (store.calls, flushes) == (20, [])


@pytest.mark.parametrize(
    "max_batch",
    [pytest.param(256, id="group-commit"), pytest.param(1, id="lead-handed-on-every-call")],
)
def test_threads_share_script_calls_and_count_exactly(
    redis_server: RedisServer, max_batch: int
) -> None:
    store = RedisLimiterStore(redis_server.url, max_batch=max_batch, timeout_s=1.0)
    limit = RateLimit(f"threads-{max_batch}", 500, 3600.0)
    admitted: list[int] = []

    def worker() -> None:
        admitted.append(sum(store.decide_sync(limit, "k").allowed for _ in range(100)))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(admitted) == 500
    assert store.degraded_decisions == 0
    assert store.calls < 800 if max_batch > 1 else store.calls == 800


def test_an_unreachable_redis_fails_open_flagged_degraded(caplog: pytest.LogCaptureFixture) -> None:
    store = RedisLimiterStore(f"redis://:s3cret@127.0.0.1:{free_port()}/0")
    open_limit = RateLimit("open", 1, 60.0)
    closed_limit = RateLimit("closed", 1, 60.0, fail_closed=True)

    async def closed_decision() -> LimitDecision:
        try:
            return await store.decide(closed_limit, "k")
        finally:
            await store.aclose()

    with caplog.at_level(logging.WARNING, "sloguard.resilience.ratelimit"):
        opened = [store.decide_sync(open_limit, "k") for _ in range(3)]
        closed = asyncio.run(closed_decision())
    assert all(d.allowed and d.degraded for d in opened)
    assert (closed.allowed, closed.code, closed.degraded) == (False, "RATE_503", True)
    assert not store.healthy
    assert "unreachable" in caplog.text
    assert "s3cret" not in caplog.text


def test_passwords_are_masked_in_logged_urls() -> None:
    assert _safe_url("redis://user:pw@127.0.0.1:6379/0") == "redis://user:***@127.0.0.1:6379/0"
    assert _safe_url("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"


def test_a_hung_redis_answers_degraded_within_the_timeout(tmp_path: Path) -> None:
    server = RedisServer(tmp_path).start()
    try:
        sync_store, async_store = (RedisLimiterStore(server.url) for _ in range(2))
        limit = RateLimit("hung", 10, 60.0)
        assert not sync_store.decide_sync(limit, "k").degraded

        async def hung_decision() -> LimitDecision:
            try:
                return await async_store.decide(limit, "k")
            finally:
                await async_store.aclose()

        server.pause()
        began = time.monotonic()
        sync_answer = sync_store.decide_sync(limit, "k")
        async_answer = asyncio.run(hung_decision())
        assert time.monotonic() - began < 0.5
        assert sync_answer.degraded
        assert async_answer.degraded
    finally:
        server.resume()
        server.stop()


def test_stop_and_restart_under_load_never_raises_and_recovers(tmp_path: Path) -> None:
    server = RedisServer(tmp_path).start()
    store = fast_recovery(server.url)
    open_limit = RateLimit("open", 1_000_000, 1.0)
    closed_limit = RateLimit("closed", 1_000_000, 1.0, fail_closed=True)
    seen: list[tuple[str, bool, bool, str | None]] = []

    async def caller(name: str, stop: asyncio.Event) -> None:
        limit = open_limit if name == "open" else closed_limit
        while not stop.is_set():
            d = await store.decide(limit, name)
            seen.append((name, d.allowed, d.degraded, d.code))
            await asyncio.sleep(0.001)

    async def scenario() -> None:
        stop = asyncio.Event()
        callers = [asyncio.create_task(caller(n, stop)) for n in ("open", "closed") * 8]
        await asyncio.sleep(0.2)
        server.kill()
        await asyncio.sleep(0.3)
        await asyncio.to_thread(server.start, same_port=True)
        mark = len(seen)
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline and not any(not s[2] for s in seen[mark:]):
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.1)
        stop.set()
        await asyncio.gather(*callers)
        await store.aclose()

    try:
        asyncio.run(scenario())
    finally:
        server.stop()
    degraded = [s for s in seen if s[2]]
    assert {(n, allowed, code) for n, allowed, _, code in degraded} == {
        ("open", True, None),
        ("closed", False, "RATE_503"),
    }
    assert not seen[-1][2]
    assert store.healthy


def test_the_sync_api_fails_open_while_redis_is_down_and_resumes(tmp_path: Path) -> None:
    server = RedisServer(tmp_path).start()
    try:
        store = fast_recovery(server.url)
        limit = RateLimit("sync", 100, 60.0)
        assert not store.decide_sync(limit, "k").degraded
        server.kill()
        down = [store.decide_sync(limit, "k") for _ in range(50)]
        server.start(same_port=True)
        deadline = time.monotonic() + 5.0
        while store.decide_sync(limit, "k").degraded and time.monotonic() < deadline:
            time.sleep(0.01)
        assert all(d.allowed and d.degraded for d in down)
        assert store.healthy
    finally:
        server.stop()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("algorithm", "expected", "tolerance"),
    [
        # the burst of 5 absorbs arrival jitter; it is admitted once on top of the rate
        pytest.param(Algorithm.GCRA, 1005, 10, id="gcra"),
        # the counter's windows are aligned to Redis time, so the first partial
        # window and the even-spread estimate move the total by up to half a window
        pytest.param(Algorithm.SLIDING_WINDOW, 1000, 50, id="sliding"),
    ],
)
def test_real_time_ten_seconds_at_twice_100_per_second_admits_the_rate(
    redis_server: RedisServer, algorithm: Algorithm, expected: int, tolerance: int
) -> None:
    store = RedisLimiterStore(redis_server.url, timeout_s=2.0)
    limit = RateLimit("real", 100, 1.0, burst=5, algorithm=algorithm)

    async def offer() -> int:
        admitted, began = 0, time.monotonic()
        for n in range(2000):
            await asyncio.sleep(max(0.0, began + n / 200 - time.monotonic()))
            admitted += (await store.decide(limit, "client")).allowed
        await store.aclose()
        return admitted

    assert abs(asyncio.run(offer()) - expected) <= tolerance
