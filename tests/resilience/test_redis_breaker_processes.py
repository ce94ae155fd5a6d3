"""Two real processes sharing one Redis breaker, and a forked child getting its own agent."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

from sloguard.resilience._breaker import CircuitBreaker
from sloguard.resilience._breaker_lua import state_keys
from sloguard.resilience._redis_breaker import RedisBreakerBackend
from sloguard.resilience._types import BreakerPolicy, BreakerState, Outcome

PREFIX = "test:processes"
POLICY = "BreakerPolicy(consecutive_failures=3, open_s=30.0)"
#: the documented bound for a remote trip to be seen: sync_interval_s / 5 for the failure
#: to reach Redis, plus round trips and pub/sub; generous for a loaded 2-core machine
BOUND_S = 0.1

WATCHER = f"""
import sys, time
from sloguard.resilience._redis_breaker import RedisBreakerBackend
from sloguard.resilience._types import BreakerPolicy, BreakerState
backend = RedisBreakerBackend("db", {POLICY}, url=sys.argv[1], prefix="{PREFIX}")
while not backend.connected:
    time.sleep(0.001)
print("ready", flush=True)
while backend.state is not BreakerState.OPEN:
    time.sleep(0.0002)
print(time.monotonic(), flush=True)
"""


def test_a_trip_in_one_process_is_seen_by_another_within_the_bound(redis_server) -> None:
    watcher = subprocess.Popen(
        [sys.executable, "-c", WATCHER, redis_server.url],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2] / "src")},
    )
    try:
        assert watcher.stdout is not None
        assert watcher.stdout.readline().strip() == "ready"
        policy = BreakerPolicy(consecutive_failures=3, open_s=30.0)
        with RedisBreakerBackend("db", policy, url=redis_server.url, prefix=PREFIX) as backend:
            while not backend.connected:
                time.sleep(0.001)
            for _ in range(3):
                backend.record(backend.admit(), Outcome.FAILURE, 0.001)
            tripped_at = time.monotonic()
            seen_at = float(watcher.stdout.readline())
    finally:
        watcher.kill()
        watcher.communicate()
    assert 0 < seen_at - tripped_at < BOUND_S


@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_forked_child_shares_the_breaker_through_its_own_agent(redis_server) -> None:
    policy = BreakerPolicy(consecutive_failures=2, open_s=30.0)
    with RedisBreakerBackend("db", policy, url=redis_server.url, prefix=PREFIX) as backend:
        while not backend.connected:
            time.sleep(0.001)
        pid = os.fork()
        if pid == 0:  # the child: trip it, wait until Redis has it, leave
            for _ in range(2):
                backend.record(backend.admit(), Outcome.FAILURE, 0.001)
            deadline = time.monotonic() + 3
            while not backend.connected and time.monotonic() < deadline:
                time.sleep(0.002)
            os._exit(0 if backend.connected and backend.state is BreakerState.OPEN else 1)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        deadline = time.monotonic() + 3
        while backend.state is not BreakerState.OPEN and time.monotonic() < deadline:
            time.sleep(0.002)
        assert backend.state is BreakerState.OPEN


def _shared_calls(url: str, name: str) -> int:
    with redis.Redis.from_url(url) as client:
        counts = client.hgetall(state_keys(PREFIX, name)[1])
    return sum(int(v) for k, v in counts.items() if k.startswith(b"c:"))


@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_forked_child_whose_calls_all_succeed_links_and_shares_them(redis_server) -> None:
    policy = BreakerPolicy(consecutive_failures=3)
    with RedisBreakerBackend("ok", policy, url=redis_server.url, prefix=PREFIX) as backend:
        work = CircuitBreaker("ok", backend=backend)(lambda: None)
        while not backend.connected:
            time.sleep(0.001)
        pid = os.fork()
        if pid == 0:  # the child: lock-free successes only, which must still link it
            for _ in range(100):
                work()
            deadline = time.monotonic() + 3
            while _shared_calls(redis_server.url, "ok") < 100 and time.monotonic() < deadline:
                time.sleep(0.002)
            os._exit(0 if _shared_calls(redis_server.url, "ok") == 100 else 1)
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
