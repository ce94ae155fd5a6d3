"""Exact counts when threads and tasks share one breaker on its lock-free success path."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from prometheus_client import CollectorRegistry

from sloguard.resilience._breaker import CircuitBreaker
from sloguard.resilience._breaker_metrics import BreakerMetrics
from sloguard.resilience._local import LocalBreaker
from sloguard.resilience._types import BreakerPolicy, BreakerState

THREADS = 8
CALLS = 5_000


@pytest.fixture(autouse=True)
def switch_threads_often() -> Iterator[None]:
    """Hand the GIL over every 10 us, so a non-atomic count would lose updates here."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:
        yield
    finally:
        sys.setswitchinterval(interval)


def lock_free_breaker(**fields: object) -> tuple[CircuitBreaker, LocalBreaker]:
    policy = BreakerPolicy(**{"consecutive_failures": 10**9, **fields})  # type: ignore[arg-type]
    backend = LocalBreaker("shared", policy)
    assert backend.core.closed_success is not None
    return CircuitBreaker("shared", backend=backend), backend


def in_threads(work: Callable[[int], object], threads: int = THREADS) -> None:
    start = threading.Barrier(threads)

    def run(index: int) -> None:
        start.wait()
        work(index)

    with ThreadPoolExecutor(threads) as pool:
        for future in [pool.submit(run, index) for index in range(threads)]:
            future.result()


def test_threads_through_the_decorator_count_every_success_without_the_lock() -> None:
    breaker, backend = lock_free_breaker()
    call = breaker(lambda: None)
    in_threads(lambda _: [call() for _ in range(CALLS)])
    assert backend.snapshot().successes_total == THREADS * CALLS
    # Every one of them was a lock-free tick: none went through the locked ``record``.
    assert backend.core.successes_total == 0


def test_scraped_success_total_is_exact_after_threads() -> None:
    breaker, _ = lock_free_breaker()
    registry = CollectorRegistry()
    BreakerMetrics(registry).watch(breaker)
    call = breaker(lambda: None)
    in_threads(lambda _: [call() for _ in range(CALLS)])
    labels = {"breaker": "shared", "outcome": "success"}
    assert registry.get_sample_value("sloguard_breaker_calls_total", labels) == THREADS * CALLS


def test_successes_and_failures_from_threads_are_both_exact() -> None:
    breaker, backend = lock_free_breaker()

    @breaker
    def call(fail: bool) -> None:
        if fail:
            raise ConnectionError

    def work(_: int) -> None:
        for index in range(CALLS):
            with contextlib.suppress(ConnectionError):
                call(index % 5 == 0)

    in_threads(work)
    snapshot = backend.snapshot()
    assert (snapshot.successes_total, snapshot.failures_total) == (
        THREADS * CALLS * 4 // 5,
        THREADS * CALLS // 5,
    )


def test_tasks_on_several_threads_through_the_async_decorator_count_every_success() -> None:
    breaker, backend = lock_free_breaker()

    @breaker
    async def call() -> None:
        await asyncio.sleep(0)

    async def tasks() -> None:
        await asyncio.gather(*(call() for _ in range(CALLS // 10)))

    in_threads(lambda _: [asyncio.run(tasks()) for _ in range(10)], threads=4)
    assert backend.snapshot().successes_total == 4 * CALLS
    assert backend.core.successes_total == 0


def test_a_failure_streak_split_by_a_success_from_another_thread_does_not_trip() -> None:
    breaker, backend = lock_free_breaker(consecutive_failures=3)
    fail = breaker(lambda: 1 / 0)
    for _ in range(2):
        with contextlib.suppress(ZeroDivisionError):
            fail()
    in_threads(lambda _: breaker(lambda: None)(), threads=2)
    with contextlib.suppress(ZeroDivisionError):
        fail()
    assert (backend.state, backend.snapshot().consecutive_failures) == (BreakerState.CLOSED, 1)
