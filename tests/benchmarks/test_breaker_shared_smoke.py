"""The shared-breaker benchmark still runs, and its Redis breaker is really shared.

Speed is not asserted here (``make bench`` measures it); behaviour is: both
breakers of the hot path count every call of a sync and an async round, the
Redis one stays linked to Redis (its state is there, closed) rather than
deciding alone, and the quick run sees every trip in the watching process.
"""

from __future__ import annotations

import io
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from rich.console import Console

from benchmarks import breaker_shared
from sloguard.resilience._breaker import CircuitBreaker
from sloguard.resilience._local import LocalBreaker
from sloguard.resilience._redis_breaker import RedisBreakerBackend
from sloguard.resilience._types import BreakerPolicy, Outcome
from tests.harness.servers import RedisServer

CALLS = 200
POLICY = BreakerPolicy(consecutive_failures=5)


@pytest.fixture
def shared(redis_server: RedisServer) -> Iterator[RedisBreakerBackend]:
    backend = RedisBreakerBackend("hot", POLICY, url=redis_server.url, prefix=breaker_shared.PREFIX)
    try:
        yield _linked(backend)
    finally:
        backend.close()


@pytest.fixture(scope="module")
def hot_path() -> Iterator[dict[str, Any]]:
    """The quick hot path, on a Redis of its own as ``run`` starts one."""
    with tempfile.TemporaryDirectory() as workdir, RedisServer(Path(workdir)) as server:
        yield breaker_shared._hot_path(server.url, True, lambda _: None)


def _linked(backend: RedisBreakerBackend) -> RedisBreakerBackend:
    deadline = time.monotonic() + 3.0
    while not backend.connected:  # the agent thread links it, as the benchmark waits for
        assert time.monotonic() < deadline, "the redis breaker did not link in 3 s"
        time.sleep(0.002)
    return backend


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_the_in_memory_breaker_counts_every_call_of_a_round(mode: str) -> None:
    backend = LocalBreaker("hot", POLICY)
    timed = breaker_shared._sync_round if mode == "sync" else breaker_shared._async_round
    assert timed(CircuitBreaker("hot", backend=backend), CALLS) > 0
    assert backend.snapshot().successes_total == CALLS


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_the_redis_breaker_counts_every_call_of_a_round_while_linked(
    shared: RedisBreakerBackend, redis_server: RedisServer, mode: str
) -> None:
    timed = breaker_shared._sync_round if mode == "sync" else breaker_shared._async_round
    assert timed(CircuitBreaker("hot", backend=shared), CALLS) > 0
    assert shared.snapshot().successes_total == CALLS
    assert shared.connected
    with redis.Redis.from_url(redis_server.url) as client:
        assert client.hget(f"{breaker_shared.PREFIX}:{{hot}}", "st") == b"closed"


@pytest.mark.servers
def test_the_quick_hot_path_stays_linked_and_times_both_breakers_in_both_modes(
    hot_path: dict[str, Any],
) -> None:
    assert hot_path["connected"] is True
    assert (hot_path["calls_per_round"], hot_path["rounds"]) == (20_000, 3)
    for mode in ("sync", "async"):
        ratio = hot_path[f"redis_{mode}_ns"] / hot_path[f"local_{mode}_ns"]
        assert hot_path[f"ratio_{mode}"] == round(ratio, 2)


def test_a_trip_here_is_seen_by_the_watching_process(redis_server: RedisServer) -> None:
    policy = BreakerPolicy(consecutive_failures=3, open_s=30.0)
    command = [sys.executable, "-c", breaker_shared.WATCHER, redis_server.url, "trip-smoke"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as watcher:
        assert watcher.stdout is not None
        assert watcher.stdout.readline().strip() == "ready"
        url, prefix = redis_server.url, breaker_shared.PREFIX
        with _linked(RedisBreakerBackend("trip-smoke", policy, url=url, prefix=prefix)) as here:
            for _ in range(3):
                here.record(here.admit(), Outcome.FAILURE, 0.001)
            tripped = time.monotonic()
            seen, _ = watcher.communicate(timeout=10)
    assert 0 < float(seen) - tripped < 5.0


@pytest.mark.servers
def test_tables_print_both_modes_and_the_trip_delays(hot_path: dict[str, Any]) -> None:
    result = {**hot_path, "trips": 1, "seen_median_ms": 2.5, "seen_p95_ms": 9.0}
    result |= {"seen_max_ms": 9.0, "goal_met": True}
    out = io.StringIO()
    Console(file=out, width=250).print(*breaker_shared.tables(result))
    text = out.getvalue()
    assert all(f"{hot_path[f'ratio_{mode}']:.2f}x" in text for mode in ("sync", "async"))
    assert ("2.50" in text, "met" in text, "missed" in text) == (True, True, False)
