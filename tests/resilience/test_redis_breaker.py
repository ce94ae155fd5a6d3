"""The Redis-shared breaker backend against a real Redis: shared trips, the cluster-wide
probe quota, the hot path without round trips, restarts of the backend."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator

import pytest
import redis

from sloguard.resilience._breaker import CircuitBreaker
from sloguard.resilience._breaker_lua import SYNC, policy_argv, state_keys
from sloguard.resilience._redis_breaker import RedisBreakerBackend
from sloguard.resilience._types import BreakerPolicy, BreakerState, Outcome, Transition

PREFIX = "test:shared"
OPEN, HALF_OPEN, CLOSED = BreakerState.OPEN, BreakerState.HALF_OPEN, BreakerState.CLOSED


def eventually(condition: Callable[[], bool], timeout: float = 3.0) -> None:
    """Wait for something another thread or process does (never for a timer of ours)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.002)


@pytest.fixture
def backends(redis_server) -> Iterator[Callable[..., RedisBreakerBackend]]:
    made: list[RedisBreakerBackend] = []

    def make(name: str = "db", policy: BreakerPolicy | None = None, **options: object):
        options.setdefault("timeout_s", 1.0)
        backend = RedisBreakerBackend(name, policy, url=redis_server.url, prefix=PREFIX, **options)
        made.append(backend)
        eventually(lambda: backend.connected)
        return backend

    yield make
    for backend in made:
        backend.close()


def fail(backend: RedisBreakerBackend, times: int = 1) -> None:
    for _ in range(times):
        backend.record(backend.admit(), Outcome.FAILURE, 0.001)


def open_elsewhere(url: str, policy: BreakerPolicy, name: str = "db", open_ms: int = 0) -> None:
    """What another instance's trip does: open the shared breaker (already due if 0 ms)."""
    argv = policy_argv(
        policy, jitter=1.0, ttl_s=60, channel=PREFIX + ":events", name=name, lease_s=30,
        origin="elsewhere",
    )  # fmt: skip
    with redis.Redis.from_url(url) as client:
        keys = state_keys(PREFIX, name)
        client.eval(SYNC.source, 2, *keys, *argv, -1, 0, 0, 0, 0, 0, open_ms, "failure_count", 0)


def test_a_trip_in_one_instance_is_seen_by_another(backends) -> None:
    policy = BreakerPolicy(consecutive_failures=3, open_s=30.0)
    a, b = backends(policy=policy), backends(policy=policy)
    seen: list[Transition] = []
    b.add_listener(seen.append)
    fail(a, 3)
    eventually(lambda: b.state is OPEN)
    assert (seen[0].source, seen[0].reason, seen[0].new) == ("remote", "remote", OPEN)
    assert not b.admit().allowed


def test_the_instance_whose_outcomes_tripped_it_reports_a_local_transition(backends) -> None:
    a = backends(policy=BreakerPolicy(consecutive_failures=2))
    seen: list[Transition] = []
    a.add_listener(seen.append)
    fail(a, 2)
    eventually(lambda: a.state is OPEN)
    assert (seen[0].source, seen[0].reason) == ("local", "consecutive_failures")


def test_outcomes_of_two_instances_fill_one_window(backends) -> None:
    policy = BreakerPolicy(consecutive_failures=None, failure_count=4, min_calls=100)
    a, b = backends(policy=policy), backends(policy=policy)
    fail(a, 2)
    fail(b, 2)
    eventually(lambda: a.state is OPEN and b.state is OPEN)


def test_the_closed_hot_path_makes_no_round_trip_per_call(backends, redis_server) -> None:
    backend = backends(policy=BreakerPolicy(consecutive_failures=5))
    with redis.Redis.from_url(redis_server.url) as client:
        before = client.info("stats")["total_commands_processed"]
        for _ in range(2_000):
            backend.record(backend.admit(), Outcome.SUCCESS, 0.001)
        after = client.info("stats")["total_commands_processed"]
    assert after - before < 50


@pytest.mark.parametrize("probes", [1, 5])
def test_a_thousand_tasks_in_two_instances_get_exactly_n_probes(
    backends, redis_server, probes
) -> None:
    policy = BreakerPolicy(half_open_probes=probes, half_open_successes=probes)
    a, b = backends(policy=policy), backends(policy=policy)
    open_elsewhere(redis_server.url, policy)
    eventually(lambda: a.state is OPEN and b.state is OPEN)

    async def storm() -> list:
        return await asyncio.gather(*(x.admit_async() for _ in range(500) for x in (a, b)))

    admissions = asyncio.run(storm())
    assert sum(adm.probe for adm in admissions) == probes
    assert sum(adm.allowed for adm in admissions) == probes


def test_threads_admitting_synchronously_get_exactly_n_probes(backends, redis_server) -> None:
    policy = BreakerPolicy(half_open_probes=3, half_open_successes=3)
    a, b = backends(policy=policy), backends(policy=policy)
    open_elsewhere(redis_server.url, policy)
    eventually(lambda: a.state is OPEN and b.state is OPEN)
    admissions = []
    threads = [
        threading.Thread(target=lambda x=x: admissions.append(x.admit())) for x in [a, b] * 50
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(adm.probe for adm in admissions) == 3


def test_probe_successes_close_the_breaker_everywhere(backends, redis_server) -> None:
    policy = BreakerPolicy(half_open_probes=2, half_open_successes=2)
    a, b = backends(policy=policy), backends(policy=policy)
    open_elsewhere(redis_server.url, policy)
    eventually(lambda: a.state is OPEN and b.state is OPEN)
    first, second = a.admit(), b.admit()
    a.record(first, Outcome.SUCCESS, 0.001)
    b.record(second, Outcome.SUCCESS, 0.001)
    eventually(lambda: a.state is CLOSED and b.state is CLOSED)


def test_a_probe_failure_reopens_the_breaker_everywhere(backends, redis_server) -> None:
    policy = BreakerPolicy(open_s=10.0, backoff=2.0, max_open_s=60.0)
    a, b = backends(policy=policy), backends(policy=policy)
    open_elsewhere(redis_server.url, policy)
    eventually(lambda: a.state is OPEN and b.state is OPEN)
    probe = a.admit()
    a.record(probe, Outcome.FAILURE, 0.001)
    eventually(lambda: b.state is OPEN and b.core.episode == probe.episode + 1)
    assert 19.0 < b.admit().retry_after_s <= 20.0


def test_an_open_breaker_survives_a_restart_of_the_backend(backends) -> None:
    policy = BreakerPolicy(consecutive_failures=1, open_s=60.0)
    first = backends(policy=policy)
    fail(first)
    eventually(lambda: first.state is OPEN)
    first.close()
    again = backends(policy=policy)
    assert again.state is OPEN
    assert 59.0 < again.admit().retry_after_s <= 60.0


def test_force_open_and_reset_are_shared(backends) -> None:
    a, b = backends(), backends()
    a.force_open()
    eventually(lambda: b.state is OPEN)
    assert b.admit().retry_after_s == b.policy.max_open_s
    b.reset()
    eventually(lambda: a.state is CLOSED)


def test_shared_state_expires_only_when_unused(backends, redis_server) -> None:
    backends(state_ttl_s=30.0)
    with redis.Redis.from_url(redis_server.url) as client:
        eventually(lambda: client.exists(state_keys(PREFIX, "db")[0]) == 1)
        assert 0 < client.pttl(state_keys(PREFIX, "db")[0]) <= 30_000


def test_scripts_flushed_from_redis_are_loaded_again(backends, redis_server) -> None:
    policy = BreakerPolicy(consecutive_failures=2)
    backend = backends(policy=policy)
    redis_server.command("SCRIPT", "FLUSH")
    fail(backend, 2)
    eventually(lambda: backend.state is OPEN)
    assert backend.connected


def test_circuit_breaker_works_over_the_shared_backend(backends) -> None:
    policy = BreakerPolicy(consecutive_failures=2)
    breaker = CircuitBreaker("db", backend=backends(policy=policy))
    for _ in range(2):
        with pytest.raises(ZeroDivisionError):
            breaker.call(lambda: 1 / 0)
    eventually(lambda: breaker.state is OPEN)
    with pytest.raises(Exception, match="open"):
        breaker.call(lambda: 1)


def test_bad_options_are_named(redis_server) -> None:
    with pytest.raises(ValueError, match="'timeout_s'"):
        RedisBreakerBackend("db", url=redis_server.url, timeout_s=0)
