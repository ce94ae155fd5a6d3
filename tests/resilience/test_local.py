"""The in-memory backend: locking, listeners, exact counts under threads and tasks."""

from __future__ import annotations

import asyncio
import logging
import random
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from sloguard.resilience._clock import ManualClock
from sloguard.resilience._local import LocalBreaker
from sloguard.resilience._types import (
    BreakerBackend,
    BreakerPolicy,
    BreakerState,
    Outcome,
    Transition,
)

THREADS = 16


def local(clock: ManualClock, **fields: object) -> LocalBreaker:
    policy = BreakerPolicy(**fields)  # type: ignore[arg-type]
    return LocalBreaker("dep", policy, clock=clock, rng=random.Random(1))


def half_open(breaker: LocalBreaker, clock: ManualClock) -> None:
    for _ in range(breaker.policy.consecutive_failures or 1):
        breaker.record(breaker.admit(), Outcome.FAILURE, 0.0)
    clock.advance(breaker.policy.max_open_s * 2)
    assert breaker.state is BreakerState.OPEN


def test_local_breaker_is_a_breaker_backend() -> None:
    assert isinstance(LocalBreaker("dep"), BreakerBackend)


def test_transitions_reach_listeners_stamped_with_wall_time() -> None:
    clock, seen = ManualClock(), []
    breaker = local(clock, consecutive_failures=1)
    breaker.add_listener(seen.append)
    breaker.record(breaker.admit(), Outcome.FAILURE, 0.0)
    assert [(t.old, t.new, t.reason, t.at) for t in seen] == [
        (BreakerState.CLOSED, BreakerState.OPEN, "consecutive_failures", clock.wall())
    ]


def test_listeners_run_after_the_lock_is_released() -> None:
    clock, states = ManualClock(), []
    breaker = local(clock, consecutive_failures=1)
    breaker.add_listener(lambda t: states.append(breaker.snapshot().state))
    breaker.record(breaker.admit(), Outcome.FAILURE, 0.0)
    assert states == [BreakerState.OPEN]


def test_a_failing_listener_is_logged_and_the_next_one_still_runs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock, seen = ManualClock(), []
    breaker = local(clock, consecutive_failures=1)

    def broken(transition: Transition) -> None:
        raise RuntimeError("listener bug")

    breaker.add_listener(broken)
    breaker.add_listener(seen.append)
    with caplog.at_level(logging.ERROR, logger="sloguard.resilience"):
        breaker.record(breaker.admit(), Outcome.FAILURE, 0.0)
    assert len(seen) == 1
    assert "listener" in caplog.records[0].getMessage()
    assert caplog.records[0].exc_info is not None


def test_open_elapses_on_the_clock_into_half_open() -> None:
    clock = ManualClock()
    breaker = local(clock, consecutive_failures=1, open_s=10.0)
    breaker.record(breaker.admit(), Outcome.FAILURE, 0.0)
    clock.advance(9.0)
    assert breaker.admit().retry_after_s == pytest.approx(1.0)
    clock.advance(1.0)
    assert breaker.admit().probe
    assert breaker.state is BreakerState.HALF_OPEN


def test_exact_counts_under_threads() -> None:
    breaker = LocalBreaker("dep", BreakerPolicy(failure_ratio=0.9, min_calls=10**9))
    calls_each = 2_000

    def work() -> None:
        for index in range(calls_each):
            outcome = Outcome.FAILURE if index % 4 == 0 else Outcome.SUCCESS
            breaker.record(breaker.admit(), outcome, 0.0)

    with ThreadPoolExecutor(THREADS) as pool:
        for future in [pool.submit(work) for _ in range(THREADS)]:
            future.result()
    snapshot = breaker.snapshot()
    assert (snapshot.calls, snapshot.failures) == (THREADS * calls_each, THREADS * calls_each // 4)
    assert snapshot.successes_total == THREADS * calls_each * 3 // 4


@pytest.mark.parametrize("probes", [1, 5])
def test_half_open_admits_exactly_n_probes_across_threads(probes: int) -> None:
    clock = ManualClock()
    breaker = local(clock, consecutive_failures=1, half_open_probes=probes)
    half_open(breaker, clock)
    start = threading.Barrier(THREADS)

    def work() -> int:
        start.wait()
        return sum(breaker.admit().allowed for _ in range(500))

    with ThreadPoolExecutor(THREADS) as pool:
        admitted = sum(pool.map(lambda _: work(), range(THREADS)))
    assert admitted == probes
    assert breaker.snapshot().rejected_total == THREADS * 500 - probes


@pytest.mark.parametrize("probes", [1, 3])
def test_half_open_admits_exactly_n_probes_across_1000_tasks(probes: int) -> None:
    clock = ManualClock()
    breaker = local(clock, consecutive_failures=1, half_open_probes=probes)
    half_open(breaker, clock)

    async def one() -> bool:
        await asyncio.sleep(0)
        return (await breaker.admit_async()).allowed

    async def main() -> list[bool]:
        return await asyncio.gather(*(one() for _ in range(1_000)))

    assert sum(asyncio.run(main())) == probes


def test_force_open_and_reset_notify_listeners() -> None:
    clock, seen = ManualClock(), []
    breaker = local(clock)
    breaker.add_listener(seen.append)
    breaker.force_open()
    breaker.force_open()
    breaker.reset()
    assert [(t.new, t.reason) for t in seen] == [
        (BreakerState.OPEN, "forced"),
        (BreakerState.CLOSED, "reset"),
    ]


def test_without_a_window_strategy_a_success_reads_no_clock() -> None:
    class CountingClock(ManualClock):
        reads = 0

        def monotonic(self) -> float:
            CountingClock.reads += 1
            return super().monotonic()

    breaker = LocalBreaker("dep", BreakerPolicy(consecutive_failures=3), clock=CountingClock())
    for _ in range(10):
        breaker.record(breaker.admit(), Outcome.SUCCESS, 0.0)
    assert CountingClock.reads == 0


def test_a_closed_success_skips_the_lock_and_a_stale_one_takes_it() -> None:
    clock = ManualClock()
    breaker = local(clock, consecutive_failures=1)
    stale = breaker.admit()
    breaker.record(breaker.admit(), Outcome.FAILURE, 0.0)
    breaker.record(stale, Outcome.SUCCESS, 0.0)
    breaker.reset()
    breaker.record(breaker.admit(), Outcome.SUCCESS, 0.0)
    # the core's attribute holds only what went through the locked ``record``
    assert (breaker.core.successes_total, breaker.snapshot().successes_total) == (1, 2)
    assert breaker.state is BreakerState.CLOSED
