"""The Redis-shared breaker's lock-free closed-state successes: a CircuitBreaker skips the
backend for them, yet Redis gets every one, in order with the failures around them."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Iterator

import pytest
import redis

from sloguard.resilience._breaker import CircuitBreaker
from sloguard.resilience._breaker_lua import SYNC, policy_argv, state_keys
from sloguard.resilience._redis_breaker import RedisBreakerBackend
from sloguard.resilience._types import BreakerPolicy, BreakerState
from tests.harness.processes import free_port

PREFIX = "test:fast"
POLICY = BreakerPolicy(consecutive_failures=3, open_s=30.0)
OPEN, CLOSED = BreakerState.OPEN, BreakerState.CLOSED


def eventually(condition: Callable[[], bool], timeout: float = 4.0) -> None:
    """Wait for something the agent thread does (never for a timer of ours)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.002)


def shared(url: str, field: str, name: str = "db") -> int:
    """A field of the shared state (``calls``: every call in the shared window)."""
    state, window = state_keys(PREFIX, name)
    with redis.Redis.from_url(url) as client:
        if field == "calls":
            counts = client.hgetall(window)
            return sum(int(v) for k, v in counts.items() if k.startswith(b"c:"))
        return int(client.hget(state, field) or 0)


def fail_elsewhere(url: str, failures: int, name: str = "db") -> None:
    """What another instance's pushed batch of failures does to the shared streak."""
    argv = policy_argv(
        POLICY, jitter=1.0, ttl_s=60, channel=PREFIX + ":events", name=name, lease_s=30,
        origin="elsewhere",
    )  # fmt: skip
    fields = (-1, failures, failures, 0, 0, failures, -1, "", 0)
    with redis.Redis.from_url(url) as client:
        client.eval(SYNC.source, 2, *state_keys(PREFIX, name), *argv, *fields)


@pytest.fixture
def backends(redis_server) -> Iterator[Callable[..., RedisBreakerBackend]]:
    made: list[RedisBreakerBackend] = []

    def make(**options: object) -> RedisBreakerBackend:
        backend = RedisBreakerBackend("db", POLICY, url=redis_server.url, prefix=PREFIX, **options)
        made.append(backend)
        eventually(lambda: backend.connected)
        return backend

    yield make
    for backend in made:
        backend.close()


def refuse(*args: object) -> None:
    raise AssertionError("a closed-state success reached the backend")


async def one() -> int:
    return 1


async def one_in_a_block(breaker: CircuitBreaker) -> int:
    async with breaker:
        return 1


def one_in_a_sync_block(breaker: CircuitBreaker) -> int:
    with breaker:
        return 1


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda breaker: breaker(lambda: 1)(), id="decorator"),
        pytest.param(lambda breaker: breaker.call(lambda: 1), id="call"),
        pytest.param(one_in_a_sync_block, id="with"),
        pytest.param(lambda breaker: asyncio.run(breaker(one)()), id="async decorator"),
        pytest.param(lambda breaker: asyncio.run(breaker.call_async(one)), id="call_async"),
        pytest.param(lambda breaker: asyncio.run(one_in_a_block(breaker)), id="async with"),
    ],
)
def test_closed_successes_reach_neither_admit_nor_record(backends, call) -> None:
    backend = backends()
    backend.admit = backend.admit_async = backend.record = refuse  # type: ignore[method-assign]
    breaker = CircuitBreaker("db", backend=backend)
    assert [call(breaker) for _ in range(100)] == [1] * 100
    assert backend.snapshot().successes_total == 100


def test_threads_calling_a_shared_breaker_put_every_success_in_redis(
    backends, redis_server
) -> None:
    backend = backends(poll_interval_s=0.1)  # an idle agent looks again this soon
    work = CircuitBreaker("db", backend=backend)(lambda: None)
    threads = [threading.Thread(target=lambda: [work() for _ in range(5_000)]) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert backend.snapshot().successes_total == 20_000
    eventually(lambda: shared(redis_server.url, "calls") == 20_000)


@pytest.mark.parametrize(
    ("failed_elsewhere", "calls", "streak"),
    [
        pytest.param(0, "FFSF", 1, id="a success between failures breaks the streak"),
        pytest.param(2, "SF", 1, id="a success first ends the streak counted elsewhere"),
        pytest.param(1, "F", 2, id="failures alone extend the streak counted elsewhere"),
    ],
)
def test_one_batch_moves_the_shared_streak_as_its_calls_happened(
    backends, redis_server, failed_elsewhere, calls, streak
) -> None:
    fail_elsewhere(redis_server.url, failed_elsewhere)
    # no push of its own for 0.4 s after the first failure: the calls below are one batch
    breaker = CircuitBreaker("db", backend=backends(sync_interval_s=2.0, poll_interval_s=5.0))
    for call in calls:
        with pytest.raises(ZeroDivisionError) if call == "F" else contextlib.nullcontext():
            breaker.call(lambda call=call: 1 / (call == "S"))
    eventually(lambda: shared(redis_server.url, "calls") == failed_elsewhere + len(calls))
    assert (shared(redis_server.url, "cf"), breaker.state) == (streak, CLOSED)


@pytest.mark.parametrize(
    ("calls", "state"),
    [
        pytest.param("FFSFF", CLOSED, id="a success between failures breaks the streak"),
        pytest.param("SFFF", OPEN, id="three failures after a success trip it"),
    ],
)
def test_without_redis_lock_free_successes_still_break_the_local_streak(calls, state) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens: this process decides alone
    with RedisBreakerBackend("db", POLICY, url=url, prefix=PREFIX, timeout_s=0.01) as backend:
        breaker = CircuitBreaker("db", backend=backend)
        for call in calls:
            with pytest.raises(ZeroDivisionError) if call == "F" else contextlib.nullcontext():
                breaker.call(lambda call=call: 1 / (call == "S"))
        assert (backend.state, backend.connected) == (state, False)
        assert backend.snapshot().successes_total == calls.count("S")
