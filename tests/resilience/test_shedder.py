"""The admission chain: memory guard, then static limit, then adaptive limit; counters; threads."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry

from sloguard.resilience._adaptive import AdaptiveConcurrencyLimiter, AIMDLimit
from sloguard.resilience._cgroup import MemoryReading
from sloguard.resilience._clock import ManualClock
from sloguard.resilience._concurrency import ConcurrencyLimiter
from sloguard.resilience._memory_guard import MemoryGuard, MemoryPolicy
from sloguard.resilience._priority import Priority, ShedDecision, ShedReason
from sloguard.resilience._shedder import LoadShedder, ShedCollector, ShedToken
from sloguard.resilience._types import Outcome


class FixedReader:
    kind = "fixed"

    def __init__(self, usage: int, limit: int = 1_000) -> None:
        self.usage, self.limit = usage, limit

    def describe(self) -> str:
        return "fixed"

    def read(self) -> MemoryReading:
        return MemoryReading(self.usage, self.limit)


def admitted(result: ShedToken | ShedDecision) -> ShedToken:
    assert isinstance(result, ShedToken), result
    return result


def refused(result: ShedToken | ShedDecision) -> ShedDecision:
    assert isinstance(result, ShedDecision), result
    return result


def test_an_empty_chain_admits_everything_and_counts_it() -> None:
    shedder = LoadShedder()
    admitted(shedder.admit("/a", Priority.LOW)).release()
    stats = shedder.stats()
    assert stats.admitted[Priority.LOW] == 1
    assert stats.in_flight == 0


def test_memory_pressure_refuses_first_with_shed_201() -> None:
    memory = MemoryGuard(FixedReader(950), MemoryPolicy(), clock=ManualClock())
    shedder = LoadShedder(memory=memory, concurrency=ConcurrencyLimiter(10))
    assert refused(shedder.admit("/a", Priority.NORMAL)).code == "SHED_201"
    admitted(shedder.admit("/a", Priority.HIGH))
    assert shedder.concurrency is not None
    assert shedder.concurrency.in_flight == 1


def test_static_limit_refuses_before_the_adaptive_one_with_shed_101() -> None:
    adaptive = AdaptiveConcurrencyLimiter(AIMDLimit(initial_limit=100))
    shedder = LoadShedder(concurrency=ConcurrencyLimiter(2), adaptive=adaptive)
    admitted(shedder.admit(priority=Priority.CRITICAL))
    admitted(shedder.admit(priority=Priority.CRITICAL))
    assert refused(shedder.admit(priority=Priority.CRITICAL)).code == "SHED_101"
    assert adaptive.in_flight == 2


def test_an_adaptive_refusal_gives_back_the_static_place() -> None:
    static = ConcurrencyLimiter(100, route_limits={"/a": 50})
    adaptive = AdaptiveConcurrencyLimiter(AIMDLimit(initial_limit=4, min_limit=1))
    shedder = LoadShedder(concurrency=static, adaptive=adaptive)
    for _ in range(4):
        admitted(shedder.admit("/a", Priority.CRITICAL))
    assert refused(shedder.admit("/a", Priority.CRITICAL)).code == "SHED_102"
    assert (static.in_flight, static.snapshot().routes["/a"]) == (4, (50, 4))


def test_releasing_a_token_frees_every_stage_once() -> None:
    static = ConcurrencyLimiter(10, route_limits={"/a": 5})
    adaptive = AdaptiveConcurrencyLimiter(AIMDLimit(initial_limit=10))
    shedder = LoadShedder(concurrency=static, adaptive=adaptive)
    token = admitted(shedder.admit("/a"))
    token.release()
    token.release(Outcome.FAILURE)
    assert (static.in_flight, adaptive.in_flight, shedder.in_flight) == (0, 0, 0)
    assert static.snapshot().routes["/a"] == (5, 0)
    assert adaptive.limit == 10


def test_release_feeds_the_adaptive_limit_the_measured_latency() -> None:
    clock = ManualClock()
    adaptive = AdaptiveConcurrencyLimiter(AIMDLimit(initial_limit=10, timeout_s=1.0), clock=clock)
    shedder = LoadShedder(adaptive=adaptive, clock=clock)
    token = admitted(shedder.admit())
    clock.advance(2.0)
    token.release()
    assert adaptive.limit == 9


def test_a_with_block_releases_on_an_exception_without_a_sample() -> None:
    adaptive = AdaptiveConcurrencyLimiter(AIMDLimit(initial_limit=10, timeout_s=1.0))
    shedder = LoadShedder(adaptive=adaptive)
    with pytest.raises(ValueError), admitted(shedder.admit("/a")):
        raise ValueError("handler failed")
    assert (shedder.in_flight, adaptive.in_flight, adaptive.limit) == (0, 0, 10)


def test_shed_counts_are_kept_by_reason_and_priority() -> None:
    memory = MemoryGuard(FixedReader(950), MemoryPolicy(), clock=ManualClock())
    shedder = LoadShedder(memory=memory, concurrency=ConcurrencyLimiter(2))
    for priority in (Priority.LOW, Priority.LOW, Priority.CRITICAL, Priority.CRITICAL):
        shedder.admit(priority=priority)
    refused(shedder.admit(priority=Priority.CRITICAL))
    stats = shedder.stats()
    assert stats.shed[(ShedReason.MEMORY, Priority.LOW)] == 2
    assert stats.shed[(ShedReason.CONCURRENCY, Priority.CRITICAL)] == 1
    assert stats.admitted[Priority.CRITICAL] == 2
    assert sum(stats.shed.values()) == 3


def test_collector_exports_counts_and_levels_to_a_registry() -> None:
    memory = MemoryGuard(FixedReader(500), MemoryPolicy(), clock=ManualClock())
    adaptive = AdaptiveConcurrencyLimiter(AIMDLimit(initial_limit=1, min_limit=1))
    shedder = LoadShedder(memory=memory, adaptive=adaptive)
    registry = CollectorRegistry()
    registry.register(ShedCollector(shedder))
    admitted(shedder.admit(priority=Priority.LOW))
    refused(shedder.admit(priority=Priority.LOW))
    value = registry.get_sample_value
    assert value("sloguard_shed_admitted_total", {"priority": "low"}) == 1
    assert value("sloguard_shed_rejected_total", {"code": "SHED_102", "priority": "low"}) == 1
    assert value("sloguard_shed_in_flight") == 1
    assert value("sloguard_shed_adaptive_limit") == 1
    assert value("sloguard_shed_memory_usage_ratio") == 0.5
    assert value("sloguard_shed_memory_shedding") == 0


@pytest.fixture
def fast_switching() -> Iterator[None]:
    """Switch threads every microsecond so races have every chance to show."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(interval)


def test_in_flight_and_counts_are_exact_across_threads(fast_switching: None) -> None:
    static = ConcurrencyLimiter(6, route_limits={"/a": 3})
    adaptive = AdaptiveConcurrencyLimiter(AIMDLimit(initial_limit=5, min_limit=2))
    shedder = LoadShedder(concurrency=static, adaptive=adaptive)

    def worker(n: int) -> None:
        for i in range(1_500):
            result = shedder.admit("/a" if i % 2 else "/b", Priority(i % 4))
            if isinstance(result, ShedToken):
                result.release(Outcome.FAILURE if (i + n) % 50 == 0 else Outcome.SUCCESS, 0.01)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stats = shedder.stats()
    assert (stats.in_flight, static.in_flight, adaptive.in_flight) == (0, 0, 0)
    assert static.snapshot().routes["/a"] == (3, 0)
    assert sum(stats.admitted.values()) + sum(stats.shed.values()) == 8 * 1_500
