"""The Redis-shared breaker while its Redis dies, hangs and comes back: no call fails
because of Redis, decisions fall back to the local state, and state re-syncs."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest
import redis

from sloguard.resilience._breaker import BreakerOpenError, CircuitBreaker
from sloguard.resilience._breaker_lua import state_keys
from sloguard.resilience._redis_breaker import RedisBreakerBackend
from sloguard.resilience._types import BreakerPolicy, BreakerState, Outcome
from tests.harness.servers import RedisServer

PREFIX = "test:faults"
OPEN, CLOSED = BreakerState.OPEN, BreakerState.CLOSED


def eventually(condition: Callable[[], bool], timeout: float = 4.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.005)


def shared_state(url: str, name: str = "db") -> str | None:
    with redis.Redis.from_url(url) as client:
        state = client.hget(state_keys(PREFIX, name)[0], "st")
    return state.decode() if state is not None else None


@pytest.fixture
def server(tmp_path) -> Iterator[RedisServer]:
    with RedisServer(tmp_path) as running:
        yield running


@pytest.fixture
def backend(server) -> Iterator[RedisBreakerBackend]:
    policy = BreakerPolicy(consecutive_failures=None, failure_count=5, open_s=30.0)
    with RedisBreakerBackend("db", policy, url=server.url, prefix=PREFIX) as made:
        eventually(lambda: made.connected)
        yield made


class Load:
    """Threads calling through a CircuitBreaker, counting what went wrong."""

    def __init__(self, breaker: CircuitBreaker, threads: int = 3) -> None:
        self.breaker, self.calls, self.rejected = breaker, 0, 0
        self.errors: list[BaseException] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run) for _ in range(threads)]

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.breaker.call(lambda: None)
                self.calls += 1
            except BreakerOpenError:
                self.rejected += 1
            except BaseException as exc:
                self.errors.append(exc)

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()


def test_no_call_fails_while_redis_dies_and_a_degraded_trip_is_pushed_back(server, backend) -> None:
    breaker = CircuitBreaker("db", backend=backend)
    with Load(breaker) as load:
        server.kill()
        eventually(lambda: not backend.connected)
        during = load.calls
        for _ in range(5):
            with pytest.raises(ZeroDivisionError):
                breaker.call(lambda: 1 / 0)
        assert backend.state is OPEN
        server.restart()
        eventually(lambda: backend.connected)
    assert load.errors == []
    assert during > 0
    assert load.rejected > 0
    assert shared_state(server.url) == "open"


def test_a_hung_redis_delays_a_half_open_admit_by_at_most_the_timeout(server) -> None:
    policy = BreakerPolicy(consecutive_failures=1, open_s=0.05)
    with RedisBreakerBackend("db", policy, url=server.url, prefix=PREFIX) as backend:
        eventually(lambda: backend.connected)
        backend.record(backend.admit(), Outcome.FAILURE, 0.001)
        eventually(lambda: backend.state is OPEN)
        server.pause()
        try:
            time.sleep(0.06)  # the 50 ms open period, in Redis' clock and ours
            started = time.monotonic()
            admission = backend.admit()
            waited = time.monotonic() - started
        finally:
            server.resume()
    assert admission.allowed
    assert admission.probe
    assert waited < 0.05 + 0.03


def test_outcomes_never_wait_on_a_hung_redis(server, backend) -> None:
    server.pause()
    try:
        started = time.monotonic()
        for _ in range(1_000):
            backend.record(backend.admit(), Outcome.SUCCESS, 0.001)
        elapsed = time.monotonic() - started
    finally:
        server.resume()
    assert elapsed < 0.05


def test_a_backend_made_while_redis_is_down_decides_locally_then_links_up(server) -> None:
    policy = BreakerPolicy(consecutive_failures=2, open_s=30.0)
    server.stop()
    with RedisBreakerBackend("db", policy, url=server.url, prefix=PREFIX) as backend:
        for _ in range(2):
            backend.record(backend.admit(), Outcome.FAILURE, 0.001)
        assert backend.state is OPEN
        assert not backend.connected
        server.restart()
        eventually(lambda: backend.connected)
        assert shared_state(server.url) == "open"


def test_after_redis_lost_its_data_the_instances_follow_the_new_state(server, backend) -> None:
    peer = RedisBreakerBackend("db", backend.policy, url=server.url, prefix=PREFIX)
    try:
        eventually(lambda: peer.connected)
        backend.force_open()
        eventually(lambda: peer.state is OPEN)
        server.kill()
        server.restart()  # no persistence: the shared breaker is closed again, episode 0
        eventually(lambda: peer.state is CLOSED and backend.state is CLOSED)
        peer.force_open()  # episode 1 again: a new generation, not a stale event
        eventually(lambda: backend.state is OPEN)
    finally:
        peer.close()
